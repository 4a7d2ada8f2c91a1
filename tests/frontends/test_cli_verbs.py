"""The workspace verbs against Kameleon 2.11.0's recorded answers (``tests/data/verbs/``).

Each scenario of ``verbs_scenarios.py`` (the README's first hour, then each verb with
its options and its errors) runs with kameleon_nb as a new user would type it: a
local git repository of the oar-team collection, an empty ``$HOME``, one process per
command. Exit status, stdout, stderr and the files left in the workspace must equal
upstream's, except at the steps a scenario marks as deliberate differences.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from kameleon_nb.engine.templates import DEFAULT_EXTEND_ERB, render_erb
from kameleon_nb.errors import RecipeError
from tests.frontends.verbs_scenarios import ANSWERS, SCENARIOS, Scenario, run

needs_tools = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("dot") is None,
    reason="needs git and GraphViz's dot (scripts/setup.sh installs them)",
)


@needs_tools
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_answers_as_upstream(scenario: Scenario, tmp_path: Path) -> None:
    want = json.loads((ANSWERS / f"{scenario.name}.json").read_text(encoding="utf-8"))
    got = run(scenario, tmp_path, [sys.executable, "-m", "kameleon_nb"])
    assert [s["argv"] for s in got["steps"]] == [s["argv"] for s in want["steps"]], (
        "the scenario changed since it was recorded: run benchmarks/record_verbs.py"
    )
    for step, expected, answer in zip(scenario.steps, want["steps"], got["steps"], strict=True):
        shown = " ".join(step.argv)
        assert "Traceback" not in answer["stdout"] + answer["stderr"], shown
        if step.differs:  # ours: a usage error where upstream crashes
            assert answer["status"] == 15, shown
            assert answer["stdout"].startswith("Error: "), shown
            continue
        assert (answer["status"], answer["stdout"]) == (expected["status"], expected["stdout"]), (
            shown
        )
        assert answer["stderr"] == expected["stderr"], shown
    assert got["files"] == want["files"]


def test_default_extend_erb_renders_upstreams_recipe() -> None:
    """Jinja2 with ERB's delimiters renders the default extend ERB to upstream's bytes."""
    want = json.loads((ANSWERS / "first_hour.json").read_text(encoding="utf-8"))

    class Template:
        def relative_path_from_recipe(self, recipe_path: str) -> str:
            assert recipe_path == "/w/my_debian.yaml"
            return "default/from_scratch/debian-bookworm.yaml"

    rendered = render_erb(
        DEFAULT_EXTEND_ERB.read_text(encoding="utf-8"),
        {"recipe_name": "my_debian.yaml", "recipe_path": "/w/my_debian.yaml", "tpl": Template()},
        source="extend.yaml.erb",
    )
    digest = hashlib.sha256(rendered.encode("utf-8")).hexdigest()
    assert digest == want["files"]["ws/my_debian.yaml"][1]


def test_an_erb_jinja_cannot_render_is_one_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"^custom\.erb line 1: cannot render"):
        render_erb("<% if %>", {}, source="custom.erb")


def _dag_recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "hello.yaml"
    recipe.write_text(
        "---\nsetup:\n  - greet:\n    - say_hello:\n      - exec_local: echo hi\n",
        encoding="utf-8",
    )
    return recipe


def test_dag_without_dot_is_one_error_line(
    kameleon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dag_recipe(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out = kameleon("dag", "hello.yaml", "--file", "g.svg")
    assert code == 1
    assert out.splitlines()[-1].startswith("Error: GraphViz's 'dot' is not installed")
    code, out = kameleon("dag", "hello.yaml", "--file", "g.dot", "--format", "none")
    assert code == 0  # the DOT text needs no dot
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph G {\n")


@pytest.mark.parametrize(
    "argv",
    [("help", "new"), ("new", "--help"), ("help", "repository", "add"), ("repository",)],
    ids=["help-new", "new--help", "help-repository-add", "repository-alone"],
)
def test_help_describes_the_verb(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    from kameleon_nb.frontends.cli import main

    try:
        code = main(list(argv))
    except SystemExit as done:  # argparse's own --help
        code = int(done.code or 0)
    assert code == 0
    assert capsys.readouterr().out.startswith("usage: kameleon ")


def test_help_of_an_unknown_command_is_a_usage_error(kameleon) -> None:
    code, out = kameleon("help", "nope")
    assert code == 15
    assert out == 'Error: ERROR: Could not find command "nope".\n'


def test_info_from_a_missing_cache_archive_says_so_as_upstream(kameleon, tmp_path: Path) -> None:
    code, out = kameleon("info", "--from-cache", str(tmp_path / "nope.tar.gz"))
    assert (code, out) == (
        10,
        f'Error: The specified cache file "{tmp_path}/nope.tar.gz" do not exists\n',
    )
