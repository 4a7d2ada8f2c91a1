"""Broken recipes: one clear ``Error:`` line naming the file and the key, upstream's status."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

CASES = {
    "malformed-yaml": (
        {"r.yaml": "setup:\n  - a: [\n"},
        17,
        ["r.yaml): did not find", "at line 3 column 1"],
    ),
    "missing-step": ({"r.yaml": "setup:\n  - nothere\n"}, 6, ["Step nothere not found"]),
    "unknown-variable": (
        {"r.yaml": "setup:\n  - s:\n    - m:\n      - exec_local: echo $${nope}\n"},
        6,
        ["r.yaml", "variable $${nope} not found in local or global"],
    ),
    "alias-arity": (
        {
            "r.yaml": "aliases:\n  al:\n    - exec_local: echo @1 @2\n"
            "setup:\n  - s:\n    - m:\n      - al: x\n"
        },
        6,
        ["r.yaml", "al takes exactly 2 arguments (1 given)"],
    ),
    "alias-no-arguments": (
        {
            "r.yaml": "aliases:\n  al:\n    - exec_local: echo hi\n"
            "setup:\n  - s:\n    - m:\n      - al: [x, y]\n"
        },
        6,
        ["al takes no arguments (2 given)"],
    ),
    "extend-cycle": (
        {"a.yaml": "extend: b\n", "b.yaml": "extend: a.yaml\n"},
        6,
        ["Cyclic 'extend'", "a.yaml -> ", "b.yaml -> ", "a.yaml"],
    ),
    "self-referencing-variable": (
        {"r.yaml": "global:\n  a: x-$${a}-y\nsetup:\n  - s:\n    - m:\n      - exec_local: echo\n"},
        6,
        ["r.yaml", "variable cycle $${a} -> $${a}"],
    ),
    "binary-file": (
        {"r.yaml": b"\x7fELF\x02\x01\x01\x00\xff\xfe"},
        17,
        ["r.yaml", "not a text file"],
    ),
    "not-a-mapping": ({"r.yaml": "- a\n- b\n"}, 6, ["Invalid yaml", "r.yaml"]),
    "malformed-section-entry": (
        {"r.yaml": "setup:\n  - 12\n"},
        6,
        ["Malformed yaml recipe in section: setup"],
    ),
    "missing-parent": ({"r.yaml": "extend: nowhere/parent\n"}, 16, ["nowhere/parent.yaml"]),
    "step-file-not-a-list": (
        {"r.yaml": "setup:\n  - s\n", "steps/setup/s.yaml": "a: 1\n"},
        6,
        ["The macrostep", "steps/setup/s.yaml is not valid"],
    ),
    "unknown-microstep-selection": (
        {
            "r.yaml": "setup:\n  - s:\n    - nope\n",
            "steps/setup/s.yaml": "- m:\n  - exec_local: echo\n",
        },
        6,
        ["Can't find microstep 'nope' in macrostep file", "steps/setup/s.yaml"],
    ),
    "missing-aliases-file": (
        {"r.yaml": "aliases: nope.yaml\nsetup: []\n"},
        6,
        ["Aliases file for recipe", "r.yaml", "does not exists"],
    ),
    "hook-not-a-list": (
        {"r.yaml": "setup:\n  - s:\n    - m:\n      - on_setup_clean: echo\n"},
        6,
        ["Invalid on_setup_clean arguments", "'m'", "r.yaml"],
    ),
    "hook-unknown-section": (
        {"r.yaml": "setup:\n  - s:\n    - m:\n      - on_deploy_clean:\n        - exec_local: x\n"},
        6,
        ["Invalid command: 'on_deploy_clean'"],
    ),
    "syntax-error-after-substitution": (
        {
            "r.yaml": 'global:\n  v: "a: b"\nsetup:\n  - s:\n    - m:\n      - exec_local: echo $${v}\n'
        },
        17,  # upstream 2.11.0: the embedded microstep is also a step variable, resolved first
        ["(<unknown>): mapping values are not allowed in this context at line 3 column 21"],
    ),
    "missing-data-file": (
        {"r.yaml": "setup:\n  - s:\n    - m:\n      - exec_local: cat $${kameleon_data_dir}/x\n"},
        6,
        ["Cannot find data '/x' used in", "r.yaml"],
    ),
}


@pytest.mark.parametrize(("files", "code", "fragments"), list(CASES.values()), ids=list(CASES))
def test_broken_recipe_gives_one_clear_line(
    tmp_path: Path, monkeypatch, kameleon, files, code, fragments
):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    recipe = next(iter(files))
    monkeypatch.chdir(tmp_path)
    status, out = kameleon("build", "-d", recipe)
    assert status == code, out
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in out


def test_a_context_with_an_empty_cmd_loads_as_upstream(kameleon, tmp_path, monkeypatch):
    # upstream 2.11.0 only requires the key (tests/data/fuzz/context-null-cmd)
    (tmp_path / "r.yaml").write_text("global:\n  in_context:\n    cmd:\nsetup: []\n")
    monkeypatch.chdir(tmp_path)
    status, out = kameleon("build", "-d", "r.yaml")
    assert status == 0, out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--timeout", "0"], "'0' is not a positive number of seconds"),
        (["--timeout", "-5"], "'-5' is not a positive number of seconds"),
        (["--timeout", "nan"], "'nan' is not a positive number of seconds"),
        (["-g", ":"], "a global variable needs a name"),
        (["-g", ":x"], "a global variable needs a name"),
    ],
)
def test_options_that_cannot_work_are_refused(kameleon, tmp_path, monkeypatch, argv, says):
    (tmp_path / "r.yaml").write_text("setup: []\n")
    monkeypatch.chdir(tmp_path)
    status, out = kameleon("build", "-d", *argv, "r.yaml")
    assert status == 15, out
    (error,) = [line for line in out.splitlines() if line.startswith("Error: ")]
    assert says in error


# ------------------------------------------------------------------ hostile input
# Issue 12: expansion bombs, files that are no files, paths that are not UTF-8. Each
# runs the real CLI in a subprocess with 1 GB of address space and must stop with
# one ``Error:`` line naming the file, fast (measured: 0.15 to 0.3 s each).

_STEP = "setup:\n  - s:\n    - m:\n"


def _alias_bomb() -> str:  # under 1 KB: eight levels of ten calls, 10^8 commands
    lines = ["aliases:", "  a0:", "    - exec_local: echo " + "x" * 40]
    for level in range(1, 9):
        lines += [f"  a{level}:"] + [f"    - a{level - 1}"] * 10
    return "\n".join([*lines, _STEP + "      - a8"]) + "\n"


def _doubling_aliases() -> str:  # 2^39 commands
    lines = ["aliases:", "  a0:", "    - exec_local: echo x"]
    for level in range(1, 40):
        lines += [f"  a{level}:", f"    - a{level - 1}", f"    - a{level - 1}"]
    return "\n".join([*lines, _STEP + "      - a39"]) + "\n"


def _doubling_variables() -> str:  # 2^39 x 16 characters
    lines = ["global:", "  v0: xxxxxxxxxxxxxxxx"]
    lines += [f"  v{n}: $${{v{n - 1}}}$${{v{n - 1}}}" for n in range(1, 40)]
    return "\n".join([*lines, _STEP + "      - exec_local: echo $${v39}"]) + "\n"


def _billion_laughs() -> str:  # 9^9 nodes once the aliases are followed
    lines = ['  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "global:\n" + "\n".join(lines) + "\n" + _STEP + "      - exec_local: echo $${i}\n"


def _run_limited(argv: list[str], cwd: Path | bytes) -> tuple[int, str, float]:
    """The CLI in a subprocess with 1 GB of address space: (status, stdout, seconds)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", *argv],
        cwd=cwd,
        preexec_fn=limit,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.decode("utf-8", "replace"), time.monotonic() - start


def _one_error_line(out: str) -> str:
    lines = [line for line in out.splitlines() if not line.startswith("CLI Global")]
    assert len(lines) == 1, out
    assert lines[0].startswith("Error: "), out
    assert "Traceback" not in out, out
    assert "fatal error" not in out, out
    return lines[0]


@pytest.mark.parametrize(
    ("recipe", "says"),
    [
        (_alias_bomb(), "aliases expand more than 10,000 times in one text"),
        (_doubling_aliases(), "aliases expand more than 10,000 times in one text"),
        (_doubling_variables(), "variables expand more than 10,000 times in one text"),
        (_billion_laughs(), "YAML aliases (*name) expand to more than 100,000 nodes"),
        (
            "global:\n  v0: "
            + "x" * 100_000
            + "\n  v1: "
            + "$${v0}" * 30
            + "\n"
            + _STEP
            + "      - exec_local: echo $${v1}\n",
            "variables expand to a text of more than 2 MiB",
        ),
        ("global:\n  a: &a [1, *a]\n" + _STEP + "      - exec_local: echo $${a}\n", "recursive"),
        (
            "global:\n  a: " + "[" * 900 + "]" * 900 + "\n" + _STEP + "      - exec_local: $${a}\n",
            "nested too deeply",
        ),
    ],
    ids=[
        "alias-bomb",
        "doubling-aliases",
        "doubling-variables",
        "billion-laughs",
        "huge-text",
        "recursive-anchor",
        "deep-nesting",
    ],
)
def test_expansion_bombs_stop_at_once(tmp_path: Path, recipe: str, says: str) -> None:
    (tmp_path / "r.yaml").write_text(recipe)
    status, out, seconds = _run_limited(["build", "-d", "r.yaml"], tmp_path)
    assert status == 6, out
    line = _one_error_line(out)
    assert f"{tmp_path}/r.yaml" in line, line
    assert says in line, line
    assert seconds < 5, seconds


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _directory(path: Path) -> None:
    path.mkdir()


def _huge(path: Path) -> None:
    with open(path, "wb") as stream:  # sparse: 17 MiB on paper, nothing on disk
        stream.truncate(17 * 2**20)


@pytest.mark.parametrize(
    ("make", "where", "says"),
    [
        (_zero, "steps/setup/s.yaml", "a character device, not a regular file"),
        (_fifo, "steps/setup/s.yaml", "a named pipe, not a regular file"),
        (_fifo, "r.yaml", "a named pipe, not a regular file"),
        (_directory, "steps/setup/s.yaml", "a directory, not a regular file"),
        (_huge, "steps/setup/s.yaml", "too large (17,825,792 bytes"),
        (_huge, "r.yaml", "too large (17,825,792 bytes"),
        (_zero, "steps/aliases/z.yaml", "a character device"),
        (_fifo, "p.yaml", "a named pipe"),
    ],
    ids=[
        "dev-zero-step",
        "fifo-step",
        "fifo-recipe",
        "directory-step",
        "huge-step",
        "huge-recipe",
        "dev-zero-aliases",
        "fifo-parent",
    ],
)
def test_files_that_cannot_be_recipe_files_are_refused_unread(
    tmp_path: Path, make, where: str, says: str
) -> None:
    (tmp_path / "steps" / "setup").mkdir(parents=True)
    (tmp_path / "steps" / "aliases").mkdir()
    recipe = "setup:\n  - s\n"
    if where.startswith("steps/aliases"):
        recipe = "aliases: z.yaml\nsetup: []\n"
    elif where == "p.yaml":
        recipe = "extend: p\nsetup: []\n"
    if where != "r.yaml":
        (tmp_path / "r.yaml").write_text(recipe)
    make(tmp_path / where)
    status, out, seconds = _run_limited(["build", "-d", "r.yaml"], tmp_path)
    assert status == 16, out
    line = _one_error_line(out)
    assert f"{tmp_path}/{where}" in line, line
    assert says in line, line
    assert seconds < 5, seconds


def test_a_recipe_path_that_is_not_utf8_is_named_escaped(tmp_path: Path) -> None:
    (tmp_path / "r\udcff.yaml").write_text("setup: []\n")
    status, out, _ = _run_limited(["build", "-d", "r\udcff.yaml"], tmp_path)
    assert status == 16, out
    line = _one_error_line(out)
    assert f"{tmp_path}/r\\xff.yaml: the file name is not valid UTF-8" in line, line
    assert "rename it" in line


def test_a_working_directory_that_is_not_utf8_is_named_escaped(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(_STEP + "      - exec_local: echo $${kameleon_cwd}\n")
    odd = tmp_path / "d\udcff"
    odd.mkdir()
    status, out, _ = _run_limited(["build", "-d", "../r.yaml"], odd)
    assert status == 16, out
    line = _one_error_line(out)
    assert f"{tmp_path}/d\\xff/build/r: the build directory is not valid UTF-8" in line, line
    assert "-b/--build-path" in line


def test_a_global_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("extend: $${b}\nsetup: []\n")
    status, out, _ = _run_limited(["build", "-d", "r.yaml", "-g", "b:p\udcff"], tmp_path)
    assert status == 15, out
    assert "-g 'b:p\\xff' is not valid UTF-8" in _one_error_line(out)


@pytest.mark.parametrize(
    ("files", "code", "upstream", "names"),
    [
        (  # upstream: "Malformed yaml recipe in section: setup", no file
            {"r.yaml": "extend: p\nsetup:\n  - '@base'\n", "p.yaml": "setup:\n  - s: x\n"},
            6,
            "Malformed yaml recipe in section: setup",
            "p.yaml",
        ),
        (  # upstream: "(<unknown>): did not find expected key ...", no file
            {"r.yaml": "global:\n  list: [a]\n  twice: $${list}$${list}\n"},
            17,
            "(<unknown>): ",
            "in the globals of {tmp}/r.yaml, after variable substitution",
        ),
        (  # upstream: "The env file script 'e.sh' does not exists ... []", no file
            {"r.yaml": "env: e.sh\nsetup: []\n"},
            6,
            "The env file script 'e.sh' does not exists in any of these directories: []",
            "(env of {tmp}/r.yaml)",
        ),
        (  # upstream: "Checkpoint is unavailable for this recipe", no file
            {"r.yaml": "setup: []\n"},
            7,
            "Checkpoint is unavailable for this recipe",
            "{tmp}/r.yaml has no 'checkpoint:' mechanism",
        ),
    ],
    ids=[
        "malformed-section-in-parent",
        "yaml-after-substitution",
        "env-missing",
        "checkpoint-unavailable",
    ],
)
def test_errors_upstream_leaves_unnamed_name_a_file(
    tmp_path: Path, monkeypatch, kameleon, files, code, upstream, names
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    status, out = kameleon("build", "-d", *(["-c"] if code == 7 else []), "r.yaml")
    assert status == code, out
    line = _one_error_line(out)
    assert line.startswith(f"Error: {upstream}"), line  # upstream's text first, as recorded
    assert names.format(tmp=tmp_path) in line, line


def _tty(path: Path) -> None:
    path.symlink_to("/dev/tty")


def _loop(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself: ELOOP


@pytest.mark.parametrize("command", [["build", "-d", "-l"], ["info"]], ids=["build", "info"])
@pytest.mark.parametrize(
    ("make", "where", "says"),
    [
        (_zero, "p.yaml", "a character device, not a regular file"),
        (_tty, "p.yaml", "a character device, not a regular file"),
        (_loop, "p.yaml", "cannot read it (Too many levels of symbolic links)"),
        (_zero, "r.yaml", "a character device, not a regular file"),
        (_tty, "r.yaml", "a character device, not a regular file"),
        (_loop, "r.yaml", "cannot read it (Too many levels of symbolic links)"),
    ],
    ids=[
        "dev-zero-extend",
        "tty-extend",
        "loop-extend",
        "dev-zero-recipe",
        "tty-recipe",
        "loop-recipe",
    ],
)
def test_special_recipe_and_extend_targets_are_refused_unread(
    tmp_path: Path, command: list[str], make, where: str, says: str
) -> None:
    # fault campaign (issue 12): special:devzero/tty/loop + hostile:special-extend/-recipe
    if where != "r.yaml":
        (tmp_path / "r.yaml").write_text("extend: p\nsetup: []\n")
    make(tmp_path / where)
    status, out, seconds = _run_limited([*command, "r.yaml"], tmp_path)
    assert status == 16, out
    line = _one_error_line(out)
    assert f"{tmp_path}/{where}: {says}" in line, line
    assert seconds < 5, seconds


@pytest.mark.parametrize("command", [["build", "-d", "-l"], ["info"]], ids=["build", "info"])
@pytest.mark.parametrize("name", ["dir\udcff\udcfe", "dir\udcc3(", "dirbad\udc80name"])
def test_a_recipe_directory_that_is_not_utf8_is_named_escaped(
    tmp_path: Path, command: list[str], name: str
) -> None:
    # fault campaign (issue 12): hostile:dirname, "'utf-8' codec can't encode character"
    odd = tmp_path / name / "x86_64"
    odd.mkdir(parents=True)
    (odd / "r.yaml").write_text("extend: p\nsetup: []\n")
    (odd / "p.yaml").write_text(_STEP + "      - exec_local: echo $${nope}\n")
    status, out, seconds = _run_limited([*command, f"{name}/x86_64/r.yaml"], tmp_path)
    assert status == 16, out
    line = _one_error_line(out)
    shown = name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
    assert f"{tmp_path}/{shown}/x86_64/r.yaml: the file name is not valid UTF-8" in line, line
    assert seconds < 5, seconds


@pytest.mark.parametrize("command", [["build", "-d", "-l"], ["info"]], ids=["build", "info"])
@pytest.mark.parametrize(
    ("value", "line_no"),
    [
        ("x" * (8 * 2**20), 2),  # Psych's scanner regexps would take over 1 GB on it
        ("1" * (3 * 2**20), 2),
        ("'" + "y" * (3 * 2**20) + "'", 2),
    ],
    ids=["plain", "digits", "quoted"],
)
def test_a_huge_yaml_value_is_refused_at_once(
    tmp_path: Path, command: list[str], value: str, line_no: int
) -> None:
    # fault campaign (issue 12): hostile:huge-value, over 1 GiB then a fatal error
    (tmp_path / "r.yaml").write_text("global:\n  huge: " + value + "\n" + _STEP)
    status, out, seconds = _run_limited([*command, "r.yaml"], tmp_path)
    assert status == 6, out
    line = _one_error_line(out)
    assert f"{tmp_path}/r.yaml: a YAML value of " in line, line
    assert f"characters at line {line_no} is larger than 2 MiB" in line, line
    assert seconds < 5, seconds


def test_a_yaml_value_just_under_the_limit_loads(tmp_path: Path) -> None:
    big = "x" * 2**20  # large, but under the 2 MiB of one text once the globals are dumped
    (tmp_path / "r.yaml").write_text(
        "global:\n  big: " + big + "\n" + _STEP + "      - exec_local: echo hi\n"
    )
    status, out, seconds = _run_limited(["build", "-d", "-l", "r.yaml"], tmp_path)
    assert status == 0, out[-500:]
    assert seconds < 10, seconds


# The fault campaign's big inputs (issue 12): a step file that fits the 16 MiB file
# budget used to take 1.5 GB (a fatal error under 1 GiB); the YAML nodes a recipe's
# files hold are now a budget of their own (1,000,000), refused as they are read.


def _microsteps(count: int) -> str:
    return "".join(f"- m{k}:\n  - exec_local: echo {k}\n" for k in range(count))


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("steps/setup/s.yaml", _microsteps(430_000)),  # 15.8 MiB, 2.6 million nodes
        ("r.yaml", "global:\n  x: [" + "a," * 4_000_000 + "a]\n" + "setup:\n  - s\n"),
    ],
    ids=["16-mib-step-file", "dense-recipe"],
)
def test_a_file_with_millions_of_yaml_nodes_is_refused(
    tmp_path: Path, where: str, text: str
) -> None:
    (tmp_path / "steps" / "setup").mkdir(parents=True)
    (tmp_path / "steps" / "setup" / "s.yaml").write_text(_microsteps(1))
    (tmp_path / "r.yaml").write_text("setup:\n  - s\n")
    (tmp_path / where).write_text(text)
    for command in (["build", "-d", "-l"], ["info"]):
        status, out, _ = _run_limited([*command, "r.yaml"], tmp_path)
        assert status == 6, out[-1000:]
        line = _one_error_line(out)
        assert line.startswith(f"Error: {tmp_path}/{where}: the files of this recipe"), line
        assert "more than 1,000,000 YAML nodes" in line, line


def test_a_step_file_of_many_microsteps_gives_upstreams_ids(tmp_path: Path) -> None:
    (tmp_path / "steps" / "setup").mkdir(parents=True)
    (tmp_path / "steps" / "setup" / "many.yaml").write_text(_microsteps(20_000))
    (tmp_path / "r.yaml").write_text("setup:\n  - many\n")
    status, out, _ = _run_limited(["build", "-d", "-l", "r.yaml"], tmp_path)
    assert status == 0, out[-1000:]
    rows = [line for line in out.splitlines() if " | setup/many/m" in line]
    assert len(rows) == 20_000
    salt = ""
    for k, row in enumerate(rows):  # upstream's chain: sha1(string_cmd + previous id)
        salt = hashlib.sha1(f"exec_local: echo {k}{salt}".encode()).hexdigest()[:12]
        slug = f"setup/many/m{k}"
        assert row == f"{salt} | {slug:<17}", row  # the table pads to the longest slug
