"""``%kameleon dag``: the graph of ``kameleon dag`` shown inline as SVG."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from kameleon_nb.frontends.cell_errors import CellError

pytestmark = [pytest.mark.jupyter]

RECIPE = """\
---
setup:
  - greet:
    - say_hello:
      - exec_local: echo hello
    - say_bye:
      - exec_local: echo bye
"""


def run(ip, source):
    with capture_output() as captured:
        result = ip.run_cell(source)
    return result, captured


@pytest.mark.skipif(not Path("/usr/bin/dot").exists(), reason="needs GraphViz's dot")
def test_dag_of_a_file_is_an_inline_svg_of_its_microsteps(ipython, tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(RECIPE, encoding="utf-8")
    result, captured = run(ipython, "%kameleon dag hello.yaml")
    assert result.error_in_exec is None
    svg = captured.outputs[0].data["image/svg+xml"]
    assert "<svg" in svg
    for label in ("hello.yaml", "say_hello", "say_bye", "END"):
        assert f">{label}</text>" in svg


@pytest.mark.skipif(not Path("/usr/bin/dot").exists(), reason="needs GraphViz's dot")
def test_dag_without_a_recipe_draws_the_loaded_one(ipython, tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(RECIPE, encoding="utf-8")
    run(ipython, "%kameleon load hello.yaml")
    result, captured = run(ipython, "%kameleon dag --recipes-only")
    assert result.error_in_exec is None
    svg = captured.outputs[-1].data["image/svg+xml"]
    assert ">hello.yaml</text>" in svg
    assert "say_hello" not in svg


def test_dag_with_nothing_to_draw_says_what_to_do(ipython) -> None:
    result, _ = run(ipython, "%kameleon dag")
    assert isinstance(result.error_in_exec, CellError)
    assert "%kameleon load RECIPE" in str(result.error_in_exec)


def test_dag_without_dot_is_one_line(ipython, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "hello.yaml").write_text(RECIPE, encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    result, _ = run(ipython, "%kameleon dag hello.yaml")
    assert isinstance(result.error_in_exec, CellError)
    message = str(result.error_in_exec)
    assert message.startswith("GraphViz's 'dot' is not installed")
    assert "\n" not in message
