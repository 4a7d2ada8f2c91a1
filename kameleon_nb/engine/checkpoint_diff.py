"""What changed between two checkpoints: ``kameleon diff`` and ``%kameleon diff``.

The mechanism shows each checkpoint's tree read-only (its ``tree`` hook: an rsync
copy, a btrfs snapshot, a read-only overlay mount of the checkpoint's layers), and
:mod:`kameleon_nb.engine.treediff` compares the two trees path by path. Where the
mechanism stores one step's changes apart (its ``changes`` hook: an overlay layer is
exactly what its step changed, whiteouts included), only the paths of that layer are
looked at. Either way the comparison runs inside the build's mount namespace, where
those mounts live, and gives the same changes.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kameleon_nb.core.model import StepId
from kameleon_nb.engine import processes, treediff
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.checkpoints import EMPTY_TREE
from kameleon_nb.engine.checkpoints.recipe_hooks import NO_TREE_HOOK
from kameleon_nb.engine.treediff import Change, Status
from kameleon_nb.errors import BuildError

__all__ = ["CheckpointDiff", "CheckpointRef", "DiffCounts", "DiffMethod", "diff_checkpoints"]

#: the comparison program, run by path with ``python -I -S`` (standard library only)
_WALKER = os.path.abspath(treediff.__file__)
_LAYER_NOT_READ = 3


class DiffMethod(enum.Enum):
    """How the changes were found."""

    LAYER = "layer"  # the paths of the new checkpoint's own overlay layer
    WALK = "walk"  # every path of both trees


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    """A checkpoint compared: its id and its microstep's slug."""

    step_id: StepId
    slug: str


@dataclass(frozen=True, slots=True)
class DiffCounts:
    """The summary of a diff: paths and bytes.

    Attributes:
        added: paths added.
        removed: paths removed.
        modified: paths modified.
        bytes_added: the size of the regular files added.
        bytes_removed: the size of the regular files removed.
        bytes_modified: how much the modified regular files grew (negative: shrank).
    """

    added: int
    removed: int
    modified: int
    bytes_added: int
    bytes_removed: int
    bytes_modified: int

    @property
    def net_bytes(self) -> int:
        """How much the regular files of the tree grew in all."""
        return self.bytes_added - self.bytes_removed + self.bytes_modified


def _size(entry: treediff.Entry | None) -> int:
    return entry.size if entry is not None and entry.size is not None else 0


@dataclass(frozen=True, slots=True)
class CheckpointDiff:
    """What changed from checkpoint ``old`` (None: the empty tree) to checkpoint ``new``.

    Attributes:
        old: the checkpoint compared from; None for the empty tree.
        new: the checkpoint compared to.
        changes: one per path that differs, sorted by path.
        method: how they were found.
        seconds: how long it took (the hooks and the comparison).
    """

    old: CheckpointRef | None
    new: CheckpointRef
    changes: tuple[Change, ...]
    method: DiffMethod
    seconds: float

    def counts(self) -> DiffCounts:
        """Paths added, removed, modified, and their bytes."""
        by = {status: [c for c in self.changes if c.status is status] for status in Status}
        return DiffCounts(
            added=len(by[Status.ADDED]),
            removed=len(by[Status.REMOVED]),
            modified=len(by[Status.MODIFIED]),
            bytes_added=sum(_size(c.new) for c in by[Status.ADDED]),
            bytes_removed=sum(_size(c.old) for c in by[Status.REMOVED]),
            bytes_modified=sum(_size(c.new) - _size(c.old) for c in by[Status.MODIFIED]),
        )

    def to_json(self) -> dict[str, object]:
        """The diff as one JSON object (``kameleon diff --json``)."""

        def ref(checkpoint: CheckpointRef | None) -> dict[str, str] | None:
            if checkpoint is None:
                return None
            return {"id": checkpoint.step_id, "step": checkpoint.slug}

        counts = self.counts()
        return {
            "from": ref(self.old),
            "to": ref(self.new),
            "method": self.method.value,
            "seconds": round(self.seconds, 4),
            "summary": {
                "added": counts.added,
                "removed": counts.removed,
                "modified": counts.modified,
                "bytes_added": counts.bytes_added,
                "bytes_removed": counts.bytes_removed,
                "bytes_modified": counts.bytes_modified,
            },
            "changes": [treediff.change_to_json(c) for c in self.changes],
        }


def _walk(builder: Builder, args: Sequence[str], timeout: float | None) -> list[Change] | None:
    """Run the comparison in the build's namespace; None if it could not read the layer.

    Raises:
        BuildError: it failed (a tree could not be read, it was interrupted).
    """
    argv = [*builder.namespace.launcher(), sys.executable, "-I", "-S", _WALKER, *args]
    try:
        done = processes.run(argv, cwd="/", timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BuildError(f"Cannot compare the checkpoints' trees: {err}") from err
    if done.returncode == _LAYER_NOT_READ:
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or json.loads(lines[-1]) != {"done": True}:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BuildError(
            "Cannot compare the checkpoints' trees: "
            + (detail[-1] if detail else f"the comparison exited with status {done.returncode}")
        )
    return [treediff.change_from_json(json.loads(line)) for line in lines[:-1]]


def diff_checkpoints(
    builder: Builder,
    old: CheckpointRef | None,
    new: CheckpointRef,
    *,
    timeout: float | None = None,
    layer: bool = True,
) -> CheckpointDiff:
    """What changed from checkpoint ``old`` (None: the empty tree) to ``new``.

    Uses the new checkpoint's own change set when the mechanism stores it apart and
    it was made right on ``old``'s tree (unless ``layer`` is False); otherwise
    compares both trees in full. Both give the same changes.

    Raises:
        BuildError: the mechanism cannot show a checkpoint's tree (no ``tree`` hook),
            a hook failed, or a tree could not be read.
    """
    started = time.monotonic()
    backend = builder.checkpoints
    if not backend.can_diff:
        raise BuildError(NO_TREE_HOOK)
    changes = backend.changes(new.step_id) if layer else None
    if changes is not None and changes.kind == "overlay":
        below = backend.changes(old.step_id) if old is not None else None
        if changes.parent == (below.layer if below is not None else EMPTY_TREE):
            base = backend.tree(old.step_id) if old is not None else "-"
            found = _walk(builder, ["overlay", changes.directory, base], timeout)
            if found is not None:
                seconds = time.monotonic() - started
                return CheckpointDiff(old, new, tuple(found), DiffMethod.LAYER, seconds)
    before = backend.tree(old.step_id) if old is not None else "-"
    after = backend.tree(new.step_id)
    found = _walk(builder, ["walk", before, after], timeout)
    assert found is not None  # only a layer can be "not read"
    return CheckpointDiff(old, new, tuple(found), DiffMethod.WALK, time.monotonic() - started)
