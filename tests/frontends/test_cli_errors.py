"""Broken recipes: one clear ``Error:`` line naming the file and the key, upstream's status."""

from __future__ import annotations

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
