"""The budgets of ``core.limits`` and the file checks of ``core.loader`` (issue 12)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from kameleon_nb.core import command_texts, limits
from kameleon_nb.core.loader import StepsDirs, load_recipe, parse_yaml, read_text
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
