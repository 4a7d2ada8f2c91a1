"""The JSON Schemas and ``kameleon lint`` on the real recipe collections.

Every recipe, step, aliases and checkpoint file of the collections validates against
its schema (editors must not flag what Kameleon builds), and ``kameleon lint`` on
every entry point reports exactly the findings listed in
``tests/data/corpus/lint-findings.txt``, each a real problem: a new finding there is
either a regression (a false positive) or a real problem to add with its reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kameleon_nb.core import lint
from kameleon_nb.core.lint import FileKind
from kameleon_nb.core.loader import parse_yaml, read_text
from kameleon_nb.engine.lint import lint_recipes, schema
from tests.corpus.compare import COLLECTIONS, DATA, cases, extract

CASES = list(cases())
EXPECTED = DATA / "lint-findings.txt"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The collections, extracted in a private directory (no id or path depends on it).

    The shared extraction (``/tmp/kameleon-corpus``) may be replaced while we read it
    by a run of another checkout, whose archives have other dates.
    """
    root = tmp_path_factory.mktemp("corpus")
    for collection in COLLECTIONS:
        extract(collection, root / collection)
    return {collection: root / collection for collection in COLLECTIONS}


def _kind(path: Path, data: object) -> FileKind | None:
    parts = set(path.parts)
    in_steps = "steps" in parts or ".steps" in parts
    if "aliases" in parts and in_steps:
        return FileKind.ALIASES if isinstance(data, dict) else None
    if "checkpoints" in parts and in_steps:
        return FileKind.CHECKPOINT if isinstance(data, dict) else None
    if isinstance(data, list) and in_steps:
        return FileKind.STEPS
    if isinstance(data, dict) and {"extend", "bootstrap", "setup", "export"} & set(data):
        return FileKind.RECIPE
    return None


def _files(tree: Path) -> Iterator[tuple[Path, FileKind, str]]:
    for root, _dirs, names in os.walk(tree):
        for name in sorted(names):
            path = Path(root) / name
            if name.endswith(".yaml") and "data" not in path.relative_to(tree).parts:
                text = read_text(str(path))
                kind = _kind(path, parse_yaml(text, source=str(path)))
                if kind is not None:
                    yield path, kind, text


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_every_file_of_the_collections_validates_against_its_schema(collection, trees):
    tree = trees[collection]
    counts: dict[FileKind, int] = {}
    problems: list[str] = []
    for path, kind, text in _files(tree):
        counts[kind] = counts.get(kind, 0) + 1
        document = lint.compose(text, str(path))
        problems.extend(str(f) for f in lint.schema_findings(document, schema(kind), kind))
    assert problems == []
    assert counts[FileKind.RECIPE] >= len({c.recipe for c in CASES if c.collection == collection})
    assert counts[FileKind.STEPS] > 10


@pytest.mark.slow
def test_lint_on_every_entry_point_reports_only_the_known_real_findings(trees):
    found: list[str] = []
    for collection, tree in trees.items():
        recipes = sorted({c.recipe for c in CASES if c.collection == collection})
        with contextlib.chdir(tree):
            report = lint_recipes(recipes)
        found.extend(f"{collection} {f.path}:{f.line}:{f.column}: {f.key}" for f in report.findings)
    expected = [
        line for line in EXPECTED.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert sorted(found) == sorted(expected)
