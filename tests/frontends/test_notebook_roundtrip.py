"""Recipe → notebook → recipe over every fixture recipe and example of the project.

For each recipe (in a writable copy of its directory, the cwd being that directory,
as the fixture oracle prescribes):

* the notebook's session (the real one: recipe cell, then each ``%%microstep`` cell)
  gives the recipe's plan and checkpoint ids;
* exporting the notebook over the recipe (in place) leaves every file byte for byte
  as it was, so the ids are the same and existing checkpoints stay valid;
* exporting it elsewhere gives the same plan, and the same ids once the paths that
  moved (copied data files, ``$${kameleon_recipe_dir}``) are accounted for;
* the recipe exported elsewhere, opened again as a notebook, gives the same
  microstep cells (sources and metadata), and exporting that gives the same files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kameleon_nb.frontends.notebook.files import (
    export_notebook,
    read_notebook,
    recipe_notebook,
)
from tests.frontends.notebook_helpers import (
    copy_tree,
    microstep_cells,
    moved_ids,
    moves_of,
    plan_of,
    recipe_texts,
    session_plan,
    snapshot,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _cases() -> list[pytest.param]:
    cases = []
    for expected in sorted((DATA / "expected").glob("*.json")):
        spec = json.loads(expected.read_text())
        case = (DATA / "recipes" / expected.stem, spec["recipe"], spec.get("cli_globals") or {})
        cases.append(pytest.param(case, id=expected.stem))
    for example in sorted((ROOT / "examples").glob("*/*.yaml")):
        case = (example.parent, example.name, {})
        cases.append(pytest.param(case, id=f"example-{example.stem}"))
    cases.append(pytest.param((DATA / "compat" / "recipes" / "tiny", "tiny.yaml", {}), id="tiny"))
    return cases


CASES = _cases()


@pytest.fixture
def case(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source, recipe, cli_globals = request.param
    work = copy_tree(source, tmp_path / "work")
    monkeypatch.chdir(work)
    return work, recipe, cli_globals, tmp_path


def _notebook(work: Path, recipe: str, cli_globals: dict[str, str]) -> Path:
    notebook = work / f"{Path(recipe).stem}.ipynb"
    recipe_notebook(str(work / recipe), str(notebook), cli_globals=cli_globals)
    return notebook


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_the_notebook_builds_what_the_recipe_builds(case):
    work, recipe, cli_globals, tmp_path = case
    build = tmp_path / "build"
    notebook = _notebook(work, recipe, cli_globals)
    expected = plan_of(work / recipe, work, build, cli_globals)
    cells = read_notebook(str(notebook))
    assert session_plan(cells, cwd=work, build=build, cli_globals=cli_globals) == expected


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_exporting_in_place_changes_no_byte(case):
    work, recipe, cli_globals, tmp_path = case
    build = tmp_path / "build"
    before_files = snapshot(work)
    before = plan_of(work / recipe, work, build, cli_globals)
    notebook = _notebook(work, recipe, cli_globals)
    report = export_notebook(str(notebook), str((work / recipe).parent))
    assert report.written == ()
    assert report.copied == ()
    assert snapshot(work) == before_files
    assert plan_of(work / recipe, work, build, cli_globals) == before


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_exporting_elsewhere_keeps_the_plan_and_the_ids(case):
    work, recipe, cli_globals, tmp_path = case
    build = tmp_path / "build"
    out = tmp_path / "elsewhere" / "exported"
    notebook = _notebook(work, recipe, cli_globals)
    report = export_notebook(str(notebook), str(out))
    exported = out / report.export.recipe
    before = plan_of(work / recipe, work, build, cli_globals)
    after = plan_of(exported, work, build, cli_globals)
    assert [slug for slug, _ in after] == [slug for slug, _ in before]
    # ids change only where a moved path is in a command: copied data files and
    # $${kameleon_recipe_dir} (the rule the README states)
    moves = moves_of(report.export, (work / recipe).parent)
    texts = recipe_texts(work / recipe, work, build, cli_globals)
    assert [i for _, i in before] == moved_ids(texts, {})
    assert [i for _, i in after] == moved_ids(texts, moves)


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_notebook_recipe_notebook_gives_the_same_cells(case):
    work, recipe, cli_globals, tmp_path = case
    notebook = _notebook(work, recipe, cli_globals)
    cells = read_notebook(str(notebook))
    # in place: the very same notebook
    export_notebook(str(notebook), str((work / recipe).parent))
    again = work / "again.ipynb"
    recipe_notebook(str(work / recipe), str(again), cli_globals=cli_globals)
    assert [(c.kind, c.source, c.metadata) for c in read_notebook(str(again))] == [
        (c.kind, c.source, c.metadata) for c in cells
    ]
    # elsewhere: the same microstep cells; exporting that notebook gives the same files
    out = tmp_path / "out"
    report = export_notebook(str(notebook), str(out))
    moved = out / "moved.ipynb"
    recipe_notebook(str(out / report.export.recipe), str(moved), cli_globals=cli_globals)
    assert microstep_cells(read_notebook(str(moved))) == microstep_cells(cells)
    files = snapshot(out)
    second = export_notebook(str(moved), str(out))
    assert second.written == ()
    assert second.copied == ()
    assert snapshot(out) == files


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_the_notebook_is_valid_nbformat(case):
    nbformat = pytest.importorskip("nbformat")
    work, recipe, cli_globals, _ = case
    notebook = _notebook(work, recipe, cli_globals)
    nbformat.validate(nbformat.read(str(notebook), as_version=4))
    assert os.path.getsize(notebook) > 0
