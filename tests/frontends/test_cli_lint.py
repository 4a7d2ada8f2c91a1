"""``kameleon lint``, ``kameleon schema`` and ``kameleon build --strict`` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

TYPO = "setup:\n  - s:\n    - m:\n      - exce_in: touch made\n"
CLEAN = "setup:\n  - s:\n    - m:\n      - exec_local: touch made\n"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_lint_clean_recipe_exits_0(scratch, kameleon):
    (scratch / "r.yaml").write_text(CLEAN)
    assert kameleon("lint", "r.yaml") == (0, "1 recipe checked: no findings\n")


def test_lint_findings_exit_1_one_line_each_then_a_summary(scratch, kameleon):
    (scratch / "r.yaml").write_text(TYPO + "setpu: []\n")
    code, out = kameleon("lint", "r.yaml")
    assert code == 1
    assert out.splitlines() == [
        "r.yaml:4:9: exce_in: unknown command: Kameleon warns 'Unknown command' and runs "
        "nothing (did you mean 'exec_in'?)",
        "r.yaml:5:1: setpu: unknown recipe key: Kameleon ignores it and everything under it "
        "(did you mean 'setup'?)",
        "1 recipe checked: 2 findings in 1 file",
    ]


def test_lint_without_yaml_extension_and_with_globals(scratch, kameleon):
    (scratch / "r.yaml").write_text("setup:\n  - s:\n    - m:\n      - exec_local: echo $${who}\n")
    code, out = kameleon("lint", "r", "-g", "who:me")
    assert (code, out) == (0, "1 recipe checked: no findings\n")
    code, out = kameleon("lint", "r")
    assert code == 1
    assert out.startswith("r.yaml:4:26: who: undefined variable")


def test_lint_missing_recipe_is_the_usual_error(scratch, kameleon):
    code, out = kameleon("lint", "absent.yaml")
    assert code == 16
    assert out.startswith("Error: No such file or directory")
    assert "Traceback" not in out


def test_lint_needs_a_recipe(scratch, kameleon):
    code, out = kameleon("lint")
    assert code == 15
    assert 'Usage: "kameleon lint RECIPE_PATH...' in out


@pytest.mark.parametrize("kind", ["recipe", "steps", "aliases", "checkpoint"])
def test_schema_prints_each_schema(kameleon, kind):
    code, out = kameleon("schema", kind)
    assert code == 0
    data = json.loads(out)
    Draft202012Validator.check_schema(data)
    assert data["$id"] == f"urn:kameleon-nb:schema:{kind}"


def test_schema_defaults_to_the_recipe_and_refuses_unknown_kinds(kameleon):
    code, out = kameleon("schema")
    assert code == 0
    assert json.loads(out)["title"] == "Kameleon recipe"
    code, out = kameleon("schema", "recipes")
    assert code == 15
    assert "invalid choice" in out


def test_the_printed_schema_is_the_shipped_file(kameleon):
    from kameleon_nb.engine.lint import SCHEMA_DIR

    _, out = kameleon("schema", "steps")
    assert out == (Path(SCHEMA_DIR) / "steps.schema.json").read_text()


def test_build_strict_refuses_a_typo_without_starting_anything(scratch, kameleon, monkeypatch):
    from kameleon_nb.frontends import console

    def no_build(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("build --strict started a build despite findings")

    monkeypatch.setattr(console, "run_build", no_build)
    (scratch / "r.yaml").write_text(TYPO)
    code, out = kameleon("build", "--strict", "--script", "r.yaml")
    assert code == 6
    lines = out.splitlines()
    assert lines[0].startswith("r.yaml:4:9: exce_in: unknown command")
    assert lines[-1] == (
        "Error: kameleon build --strict: 1 finding in 1 file for r.yaml; fix them (see "
        "'kameleon lint r.yaml'), or build without --strict"
    )
    assert sorted(p.name for p in scratch.iterdir()) == ["r.yaml"]  # no build dir, no file


def test_build_strict_dry_run_of_a_clean_recipe(scratch, kameleon):
    (scratch / "r.yaml").write_text(CLEAN)
    code, out = kameleon("build", "--strict", "-d", "r.yaml")
    assert code == 0
    assert "--> 1 m" in out


@pytest.mark.shell
def test_build_strict_builds_a_clean_recipe(scratch, kameleon):
    (scratch / "r.yaml").write_text(CLEAN)
    code, out = kameleon("build", "--strict", "--script", "r.yaml")
    assert code == 0, out
    assert "Successfully built 'r.yaml'" in out
    assert (scratch / "build" / "r" / "made").is_file()


def test_build_without_strict_keeps_upstreams_behaviour(scratch, kameleon):
    (scratch / "r.yaml").write_text(TYPO)
    code, out = kameleon("build", "-d", "r.yaml")
    assert code == 0
    assert "exce_in" not in out
