"""``kameleon diff`` on a ~200 MB Debian tree, for each mechanism that can run here.

For overlay, btrfs and rsync, a recipe copies the tree into ``$${rootfs}`` (step
``copy``), then makes a small change (step ``change``: append to etc/motd, rewrite
etc/hostname, add a 1 MB file, remove usr/share/doc/apt, chmod etc/issue), with a
checkpoint after each. Then, through the session as ``%kameleon diff`` runs it:

* ``diff change``: what the small change did. The overlay mechanism reads only the
  step's layer (the fast path); btrfs and rsync compare both trees path by path
  (rsync's unchanged files are hard links, one inode on both sides, so they are not
  read; btrfs snapshots are distinct inodes, so every file of the same size is read);
* the same pair compared path by path on overlay too (the fast path turned off);
* ``diff copy``: the whole tree against the empty tree;
* for reference, ``rsync -n -i --checksum`` between the two rsync snapshots (what an
  rsync-based fast path would cost: it reads every file on both sides).

Times are medians of 3, with the page cache warm (right after the build). The tree
is the one ``bench_checkpoints.py`` caches (``debootstrap --variant=minbase``).

Run: ``sudo python benchmarks/bench_diff.py`` (rsync alone runs without root).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checkpoints import CHANGE, debian_tree

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.checkpoint_diff import CheckpointRef, diff_checkpoints
from kameleon_nb.engine.session import Session

ROUNDS = 3


def median_seconds(action: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(ROUNDS):
        started = time.monotonic()
        result = action()
        times.append(time.monotonic() - started)
    return statistics.median(times), result


def recipe(mechanism: str, tree: Path) -> str:
    return (
        f"checkpoint: {mechanism}.yaml\n"
        "global:\n  rootfs: $${kameleon_cwd}/rootfs\n"
        "setup:\n  - steps:\n"
        "    - copy:\n"
        f'      - exec_local: mkdir -p "$${{rootfs}}" && cp -a {tree}/. "$${{rootfs}}/"\n'
        f'    - change:\n      - exec_local: cd "$${{rootfs}}" && {CHANGE}\n'
    )


def bench(mechanism: str, tree: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"bench-diff-{mechanism}-", dir="/var/tmp"))
    try:
        (work / "r.yaml").write_text(recipe(mechanism, tree))
        with Session.open("r.yaml", cwd=str(work), checkpointing=True) as session:
            session.build(BuildOptions(checkpointing=True))
            rows = {r.slug.rsplit("/", 1)[1]: r for r in session.checkpoints(sizes=False)}
            copy, change = rows["copy"], rows["change"]
            seconds, diff = median_seconds(lambda: session.diff("setup/steps/change"))
            print(
                f"{mechanism:8} diff change   {seconds * 1000:8.0f} ms  "
                f"{len(diff.changes):5} changes ({diff.method.value})"  # type: ignore[attr-defined]
            )
            if mechanism == "overlay":
                refs = (CheckpointRef(copy.step_id, copy.slug), CheckpointRef(change.step_id, ""))
                seconds, diff = median_seconds(
                    lambda: diff_checkpoints(session.builder, *refs, layer=False)
                )
                print(
                    f"{mechanism:8} same, walked  {seconds * 1000:8.0f} ms  "
                    f"{len(diff.changes):5} changes ({diff.method.value})"  # type: ignore[attr-defined]
                )
            seconds, diff = median_seconds(lambda: session.diff("setup/steps/copy"))
            print(
                f"{mechanism:8} diff copy     {seconds * 1000:8.0f} ms  "
                f"{len(diff.changes):5} changes ({diff.method.value})"  # type: ignore[attr-defined]
            )
            if mechanism == "rsync":
                store = work / "build" / "r" / "checkpoints" / "rsync"
                argv = ["rsync", "-n", "-i", "-aHX", "--numeric-ids", "--delete", "--checksum"]
                argv += [f"{store / copy.step_id}/", f"{store / change.step_id}/"]
                seconds, _ = median_seconds(
                    lambda: subprocess.run(argv, capture_output=True, check=True)
                )
                print(f"{mechanism:8} rsync -n -i   {seconds * 1000:8.0f} ms  (reference)")
    finally:  # the mechanisms' mounts lived in the build's namespace: nothing to unmount
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    root = os.geteuid() == 0
    tree = debian_tree()
    size = subprocess.run(["du", "-sh", str(tree)], capture_output=True, text=True, check=True)
    count = sum(len(d) + len(f) for _r, d, f in os.walk(tree))
    print(f"tree: {size.stdout.split()[0]}, {count} paths; medians of {ROUNDS}, warm cache")
    mechanisms = ["overlay", "btrfs", "rsync"] if root else ["rsync"]
    if shutil.which("mkfs.btrfs") is None and "btrfs" in mechanisms:
        mechanisms.remove("btrfs")
    for mechanism in mechanisms:
        bench(mechanism, tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
