"""kameleon_nb against upstream 2.11.0 on the differential fuzzer's minimised cases.

Each directory of ``tests/data/fuzz/`` is one difference class found by
``benchmarks/fuzz_differential.py``: a small recipe tree and ``expected.json``, upstream's
answers in every mode (the shape of ``tests/data/corpus/``), recorded with the tree at the
absolute path stored under ``"tree"`` (ids and printed paths depend on it). The tree is
copied there, each mode runs in-process from its root, and the answers are compared as
``compare.py`` compares the real collections.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import compare

FUZZ = Path(__file__).resolve().parent.parent / "data" / "fuzz"

# Upstream crashes on these (exit 154, "Unfortunately, a fatal error has occurred"): a
# deliberate difference. kameleon_nb either builds what the recipe plainly means (0) or
# stops with one clear error line (6), never a traceback. With ``-c`` (mode lc), a recipe
# without a checkpoint mechanism stops first, as upstream would (7).
DELIBERATE: dict[str, int] = {
    "alias-arg-not-string": 0,  # a number as an alias argument is its text
    "alias-command-true": 0,  # an alias command ``exec_local: true`` with arguments
    "alias-nested-list-args": 0,  # bare names inside a nested alias call
    "base-section-not-list": 0,  # a child's non-list section is an empty one
    "checkpoint-hook-not-list": 6,  # a mechanism hook that is not a list of commands
    "context-list": 0,  # a context given as a list of one-key mappings is flattened
    "context-string": 6,  # a context that is not a mapping
    "duplicate-selection-with-hook": 0,  # a microstep selected twice that declares a hook
    "step-entry-two-keys": 6,  # a section entry with two keys
    "steps-dotsteps-include": 0,  # steps/ and .steps/ both present, with global.include
}


def _params() -> Iterator[Any]:
    for expected in sorted(FUZZ.glob("*/expected.json")):
        record = json.loads(expected.read_text(encoding="utf-8"))
        for mode in record["modes"]:
            yield pytest.param(expected.parent, mode, id=f"{expected.parent.name}[{mode}]")


def _install(source: Path, tree: Path) -> None:
    """The case's files (not expected.json) at its recorded path, once per content.

    Concurrent test runs share the copy: it is replaced only when the case changed,
    and then atomically (written aside, then renamed).
    """
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name != "expected.json")
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    stamp = digest.hexdigest()
    tree.parent.mkdir(parents=True, exist_ok=True)
    with open(tree.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = tree / ".kameleon-nb-installed"
        if marker.is_file() and marker.read_text() == stamp:
            return
        scratch = Path(tempfile.mkdtemp(dir=tree.parent, prefix=f".{tree.name}-"))
        for path in files:
            target = scratch / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (scratch / marker.name).write_text(stamp)
        if tree.exists() or tree.is_symlink():
            shutil.rmtree(tree)
        scratch.rename(tree)


def test_deliberate_names_exist() -> None:
    assert set(DELIBERATE) <= {e.parent.name for e in FUZZ.glob("*/expected.json")}


@pytest.mark.parametrize(("case_dir", "mode"), list(_params()))
def test_fuzz_case(case_dir: Path, mode: str) -> None:
    record = json.loads((case_dir / "expected.json").read_text(encoding="utf-8"))
    case = compare.Case.of("fuzz", record, mode)
    _install(case_dir, case.tree)
    code, stdout = compare.run(case)
    if case_dir.name in DELIBERATE and case.rc == 154:
        expected = DELIBERATE[case_dir.name]
        if (
            mode == "lc"
            and expected == 0
            and "checkpoint:" not in (case.tree / record["recipe"]).read_text()
        ):
            expected = 7
        assert code == expected, stdout
        assert "Traceback" not in stdout
        assert len([line for line in stdout.splitlines() if line.startswith("Error: ")]) == (
            1 if code else 0
        ), stdout
        return
    diff = compare.difference(case, code, stdout)
    assert diff is None, diff
