"""The budgets of ``core.limits`` and the file checks of ``core.loader`` (issue 12)."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from kameleon_nb.core import command_texts, limits
from kameleon_nb.core.loader import StepsDirs, load_recipe, parse_yaml, read_text
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.resolve import ResolveOptions, resolve_recipe
from kameleon_nb.core.variables import substitute
from kameleon_nb.errors import ExpansionLimitError, MissingFileError, UnreadableFileError


def test_a_doubling_variable_stops_at_the_per_text_budget() -> None:
    values = {"v0": "x" * 16, **{f"v{n}": f"$${{v{n - 1}}}$${{v{n - 1}}}" for n in range(1, 40)}}
    start = time.monotonic()
    with pytest.raises(ExpansionLimitError, match=r"r\.yaml: variables expand more than 10,000"):
        substitute("$${v39}", values.get, source="r.yaml")
    assert time.monotonic() - start < 5


def test_one_budget_follows_a_recipe_across_its_texts(monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_EXPANSIONS", 1_000)
    budget = limits.Budget()
    for _ in range(250):
        substitute("$${a} $${a} $${a} $${a}", {"a": ""}.get, source="r.yaml", budget=budget)
    with pytest.raises(ExpansionLimitError, match="more than 1,000 times in all"):
        substitute("$${a}", {"a": ""}.get, source="r.yaml", budget=budget)


def test_a_text_is_refused_before_it_is_built() -> None:
    big = "x" * (limits.MAX_TEXT_CHARS // 2 + 1)
    with pytest.raises(ExpansionLimitError, match="a text of more than 2 MiB"):
        substitute("$${a}$${a}", {"a": big}.get, source="r.yaml")


def test_alias_arguments_cannot_multiply_a_text_past_the_cap() -> None:
    aliases: dict[str, list[object]] = {"a0": [{"exec_local": "@1" * 50}]}
    for level in range(1, 6):
        aliases[f"a{level}"] = [{f"a{level - 1}": "@1" * 50}]
    with pytest.raises(ExpansionLimitError, match="aliases expand to a text of more than"):
        command_texts.expand_aliases("a5: " + "y" * 100, aliases, keep=False, source="r.yaml")


def test_shared_yaml_nodes_are_counted_once_per_use() -> None:
    laughs = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    text = "a: " + laughs[0] + "\n"
    for previous, name in zip("abcd", "bcde", strict=True):
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    assert isinstance(parse_yaml(text, source="ok.yaml"), dict)  # 9^5: 66,430 nodes
    with pytest.raises(ExpansionLimitError, match=r"bomb\.yaml: YAML aliases"):
        parse_yaml(text + "f: [*e, *e]\n", source="bomb.yaml")


def test_an_anchor_inside_itself_is_refused() -> None:
    with pytest.raises(ExpansionLimitError, match="refers to a node that contains it"):
        parse_yaml("a: &a {b: [1, *a]}\n", source="r.yaml")


def test_real_anchors_load_as_before() -> None:
    data = parse_yaml("base: &b {cmd: bash}\nin: *b\nout: *b\n", source="r.yaml")
    assert data == {"base": {"cmd": "bash"}, "in": {"cmd": "bash"}, "out": {"cmd": "bash"}}


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "r.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _catch(outcome, str(fifo)), daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock it before failing
        with open(fifo, "w"):
            pass
        pytest.fail("reading a named pipe blocked")
    assert isinstance(outcome[0], UnreadableFileError)
    assert f"{fifo}: a named pipe, not a regular file" in str(outcome[0])


def _catch(outcome: list[BaseException], path: str) -> None:
    try:
        read_text(path)
    except BaseException as err:
        outcome.append(err)


def test_a_missing_file_keeps_upstreams_message(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="No such file or directory @ rb_sysopen - "):
        read_text(str(tmp_path / "nowhere.yaml"))


def test_a_step_lookup_skips_an_odd_candidate_when_a_file_follows(tmp_path: Path) -> None:
    (tmp_path / "steps" / "setup" / "s.yaml").mkdir(parents=True)  # a directory first
    (tmp_path / "steps" / "s.yaml").write_text("- m:\n  - exec_local: echo\n")
    dirs = StepsDirs([str(tmp_path / "steps")])
    assert dirs.find_step("setup", "s", []) == str(tmp_path / "steps" / "s.yaml")
    (tmp_path / "steps" / "s.yaml").unlink()
    with pytest.raises(UnreadableFileError, match=r"setup/s\.yaml: a directory"):
        dirs.find_step("setup", "s", [])


def test_a_parent_that_is_not_utf8_names_the_child(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("extend: $${b}\nsetup: []\n")
    with pytest.raises(UnreadableFileError) as caught:
        load_recipe("r.yaml", cli_globals={"b": "p\udcff"}, cwd=str(tmp_path))
    message = limits.shown_path(str(caught.value))
    assert f"{tmp_path}/p\\xff.yaml: the parent recipe (extended by {tmp_path}/r.yaml)" in message


def test_shown_path_escapes_only_undecodable_bytes() -> None:
    assert limits.shown_path("/tmp/é/\udcff\udce9.yaml") == "/tmp/é/\\xff\\xe9.yaml"


# --- YAML nodes read for one recipe (fault campaign, issue 12: a 15.8 MiB step file,
# under the file budget, took 1.5 GB, past the campaign's 1 GiB, and ended in a fatal
# error; a small step file listed many times grows without any file being large)


def _steps(count: int) -> str:  # six YAML nodes a microstep
    return "".join(f"- m{k}:\n  - exec_local: echo {k}\n" for k in range(count))


def _resolve(path: str, cwd: Path) -> ResolvedRecipe:
    loaded = load_recipe(path, cwd=str(cwd))
    return resolve_recipe(loaded, ResolveOptions(build_path=str(cwd / "build")), cwd=str(cwd))


def test_a_step_file_read_twice_counts_twice(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_NODES_READ", 1_000)
    (tmp_path / "steps" / "setup").mkdir(parents=True)
    (tmp_path / "steps" / "setup" / "s.yaml").write_text(_steps(100))  # 600 nodes
    (tmp_path / "once.yaml").write_text("setup:\n  - s\n")
    (tmp_path / "twice.yaml").write_text("setup:\n  - s\n  - s\n")
    assert len(list(_resolve("once.yaml", tmp_path).microsteps())) == 100
    with pytest.raises(ExpansionLimitError) as caught:
        _resolve("twice.yaml", tmp_path)
    assert str(caught.value).startswith(
        f"{tmp_path}/steps/setup/s.yaml: the files of this recipe, up to this one, hold more "
        "than 1,000 YAML nodes"
    )


def test_the_nodes_of_parents_count_for_the_recipe(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_NODES_READ", 1_000)
    (tmp_path / "p.yaml").write_text("global:\n  list: [" + ", ".join(["x"] * 600) + "]\n")
    (tmp_path / "r.yaml").write_text(
        "extend: p\nglobal:\n  own: [" + ", ".join(["y"] * 600) + "]\n"
    )
    with pytest.raises(ExpansionLimitError, match=r"p\.yaml: the files of this recipe"):
        load_recipe("r.yaml", cwd=str(tmp_path))
    assert load_recipe("p.yaml", cwd=str(tmp_path)).nodes_read == 605  # 600 + 5


@pytest.mark.parametrize("tag", ["", "!!seq "], ids=["plain", "tagged"])
def test_a_dense_document_is_refused_before_it_is_built(monkeypatch, tag: str) -> None:
    # 2 MB of "x, " is 700,000 nodes: refused at 10,001, with memory for 10,000 only
    # (the tagged one goes through PyYAML's composer, which counts them too)
    monkeypatch.setattr(limits, "MAX_NODES_READ", 10_000)
    text = "list: " + tag + "[" + "x, " * 700_000 + "x]\n"
    tracemalloc.start()
    try:
        with pytest.raises(ExpansionLimitError, match=r"r\.yaml: .* more than 10,000 YAML nodes"):
            parse_yaml(text, source="r.yaml", budget=limits.Budget())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak  # PyYAML's graph of the 700,000 nodes: over 300 MB


def test_a_long_extend_chain_searches_each_directory_once_a_link(
    tmp_path: Path, monkeypatch
) -> None:
    # fault campaign (issue 12): hostile:extend-deep, 400 parents three directories
    # down took more than 10 s: the steps dirs of the whole chain were looked for again
    # at each link (~2 million stat calls)
    directory = tmp_path / "a" / "b" / "c"
    directory.mkdir(parents=True)
    for k in range(200):
        parent = f"extend: chain{k + 1}\n" if k + 1 < 200 else ""
        (directory / f"chain{k}.yaml").write_text(parent + f"global:\n  c{k}: {k}\n")
    calls: list[str] = []
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: calls.append(p) or real_isdir(p))
    loaded = load_recipe("a/b/c/chain0.yaml", cwd=str(tmp_path))
    assert len(loaded.chain) == 200
    assert len(calls) < 20 * 200, len(calls)  # 8 a link (4 levels x steps, .steps)
    assert loaded.global_vars["c199"] == 199
    dirs = StepsDirs.for_chain(loaded.chain, str(tmp_path))
    assert dirs.dirs == StepsDirs.for_chain(loaded.chain[:1], str(tmp_path)).dirs
