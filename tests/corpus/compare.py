"""kameleon_nb against upstream 2.11.0's recorded answers on the real recipe collections.

The collections (``tests/data/corpus/{K,D}.tar.gz``) are extracted at the absolute paths
the golden files were recorded with (ids and printed paths depend on them); each entry
point is then run through the CLI in-process, from the tree's root, with the argv stored
in its golden file.

Run as a script for the per-mode counts and the first differences::

    python tests/corpus/compare.py [--show N] [--mode d|l|lc|info] [RECIPE-SUBSTRING]
        [--answers ../shared/compat/corpus --archives ../shared/corpus]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "corpus"
COLLECTIONS = ("K", "D")
MODES = ("d", "l", "lc", "info")


@dataclass(frozen=True)
class Case:
    collection: str
    recipe: str
    tree: Path
    mode: str
    argv: tuple[str, ...]
    rc: int
    stdout: str

    @property
    def name(self) -> str:
        return f"{self.collection}/{self.recipe}[{self.mode}]"

    @classmethod
    def of(cls, collection: str, record: dict[str, Any], mode: str) -> Case:
        """One mode of a recorded answer (the JSON shape of ``tests/data/corpus/``)."""
        answer = record["modes"][mode]
        return cls(
            collection=collection,
            recipe=record["recipe"],
            tree=Path(record["tree"]),
            mode=mode,
            argv=tuple(answer["argv"][1:]),
            rc=answer["rc"],
            stdout=answer["stdout"],
        )


def extract(collection: str, tree: Path, archives: Path = DATA) -> None:
    """Extract a collection at ``tree`` once; concurrent test runs share one copy."""
    tree.parent.mkdir(parents=True, exist_ok=True)
    archive = archives / f"{collection}.tar.gz"
    # the content, not the file's time: checkouts of the same archive share one copy
    stamp = hashlib.sha256(archive.read_bytes()).hexdigest()
    with open(tree.parent / f".{collection}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = tree / ".kameleon-nb-extracted"
        if marker.is_file() and marker.read_text() == stamp:
            return
        scratch = Path(tempfile.mkdtemp(dir=tree.parent, prefix=f".{collection}-"))
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="tar")
        (scratch / marker.name).write_text(stamp)
        if tree.exists() or tree.is_symlink():
            shutil.rmtree(tree)
        scratch.rename(tree)


def cases(answers: Path = DATA) -> Iterator[Case]:
    for collection in COLLECTIONS:
        for golden in sorted((answers / collection).rglob("*.json")):
            record = json.loads(golden.read_text(encoding="utf-8"))
            for mode in MODES:
                yield Case.of(collection, record, mode)


def run(case: Case) -> tuple[int, str]:
    """Run kameleon_nb's CLI in-process from the tree's root; (exit status, stdout)."""
    from kameleon_nb.frontends.cli import main

    out = io.StringIO()
    old = os.getcwd()
    os.chdir(case.tree)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(case.argv))
    finally:
        os.chdir(old)
    return code, out.getvalue()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def difference(case: Case, code: int, stdout: str) -> str | None:
    """None when kameleon_nb answers as upstream did, else what differs."""
    if code != case.rc:
        return f"exit {code}, upstream {case.rc}\n{stdout[-1500:]}"
    ours, theirs = _lines(stdout), _lines(case.stdout)
    if case.rc != 0:
        error = next((line for line in theirs if line.startswith("Error: ")), None)
        if error is not None:
            mine = [line for line in ours if line.startswith("Error: ")]
            if len(mine) != 1 or not mine[0].startswith(error):
                return f"error line {mine!r}, upstream {error!r}"
            ours = [line for line in ours if not line.startswith("Error: ")]
            theirs = [line for line in theirs if not line.startswith("Error: ")]
    if ours == theirs:
        return None
    for index, (mine, upstream) in enumerate(zip(ours, theirs, strict=False)):
        if mine != upstream:
            return f"line {index + 1}:\n  ours:     {mine!r}\n  upstream: {upstream!r}"
    return f"{len(ours)} lines, upstream {len(theirs)}: {(ours + theirs)[min(len(ours), len(theirs))]!r}"


def prepare(answers: Path = DATA, archives: Path = DATA) -> list[Case]:
    every = list(cases(answers))
    for tree, collection in {(c.tree, c.collection) for c in every}:
        extract(collection, tree, archives)
    return every


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=5, help="differences to print")
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument(
        "--answers",
        type=Path,
        default=DATA,
        help="dir of K/ and D/ answers (../shared/compat/corpus)",
    )
    parser.add_argument(
        "--archives", type=Path, default=DATA, help="dir of K.tar.gz, D.tar.gz (../shared/corpus)"
    )
    parser.add_argument("match", nargs="?", default="")
    args = parser.parse_args()
    counts: dict[tuple[str, str], list[int]] = {}
    shown = 0
    for case in prepare(args.answers, args.archives):
        if (args.mode and case.mode != args.mode) or args.match not in case.recipe:
            continue
        code, stdout = run(case)
        diff = difference(case, code, stdout)
        total = counts.setdefault((case.collection, case.mode), [0, 0])
        total[1] += 1
        if diff is None:
            total[0] += 1
        elif shown < args.show:
            shown += 1
            print(f"--- {case.name}: {diff}", file=sys.stderr)
    for (collection, mode), (same, total_count) in sorted(counts.items()):
        print(f"{collection} {mode:>4}: {same}/{total_count} recipes identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
