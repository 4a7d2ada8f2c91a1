"""Fixture recipes with hand-computed expectations (an oracle written from the spec).

Each ``tests/data/expected/<case>.json`` names a recipe under
``tests/data/recipes/<case>/`` and gives its resolved microsteps (slug, policy,
commands as values), its name, description and optionally its dry-run lines.
``tests/data/broken/<case>.json`` gives the exit status and message of a bad recipe.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kameleon_nb.core.model import Command
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.frontends.render import dryrun_lines

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = sorted((DATA / "expected").glob("*.json"))
BROKEN = sorted((DATA / "broken").glob("*.json"))


def as_json(command: Command) -> object:
    if isinstance(command.value, tuple):
        return {command.key: [as_json(c) for c in command.value]}
    if command.value is None and command.text == command.key:
        return {command.key: None}
    return {command.key: command.value}


def _copy_case(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target, symlinks=True)
    return target


def _fill(value: object, recipe_dir: Path) -> object:
    text = json.dumps(value).replace("<RECIPE_DIR>", str(recipe_dir))
    return json.loads(text)


@pytest.mark.parametrize("expected_file", EXPECTED, ids=[p.stem for p in EXPECTED])
def test_fixture_recipe_resolves_as_specified(expected_file: Path, tmp_path: Path, monkeypatch):
    expected = json.loads(expected_file.read_text())
    case_dir = _copy_case(DATA / "recipes" / expected_file.stem, tmp_path)
    monkeypatch.chdir(case_dir)
    expected = _fill(expected, case_dir)
    recipe = open_recipe(
        expected["recipe"],
        cli_globals=expected.get("cli_globals") or {},
        checkpointing=bool(expected.get("checkpointing")),
        cwd=str(case_dir),
    )
    assert recipe.name == expected["name"]
    if "description" in expected:
        assert recipe.description == expected["description"]
    got = [
        {
            "slug": m.slug,
            "on_checkpoint": m.on_checkpoint.value,
            "commands": [as_json(c) for c in m.commands],
        }
        for m in recipe.microsteps()
    ]
    want = [
        {"slug": m["slug"], "on_checkpoint": m["on_checkpoint"], "commands": m["commands"]}
        for m in expected["microsteps"]
    ]
    assert [g["slug"] for g in got] == [w["slug"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, g["slug"]
    if "dryrun" in expected:
        assert dryrun_lines(recipe, cwd=str(case_dir)) == expected["dryrun"]


@pytest.mark.parametrize("broken_file", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_fixture_fails_clearly(broken_file: Path, tmp_path: Path, monkeypatch, kameleon):
    expected = json.loads(broken_file.read_text())
    case_dir = _copy_case(DATA / "broken" / broken_file.stem, tmp_path)
    monkeypatch.chdir(case_dir)
    code, out = kameleon("build", "-d", expected["recipe"])
    assert code == expected["exit_code"], out
    assert out.count("\n") == 1, out
    assert out.startswith("Error: ")
    for fragment in expected["message_contains"]:
        assert fragment.replace("<RECIPE_DIR>", str(case_dir)) in out
