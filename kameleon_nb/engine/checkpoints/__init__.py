"""Checkpoint mechanisms: the protocol the builder talks to, and the recipe-hooks one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kameleon_nb.core.model import StepId

__all__ = ["EMPTY_TREE", "CheckpointBackend", "LayerChanges"]

#: the ``parent`` of a change set applied to nothing (the first layer of a stack)
EMPTY_TREE = "-"


@dataclass(frozen=True, slots=True)
class LayerChanges:
    """What one checkpoint changed, as its mechanism stores it (the ``changes`` hook).

    Attributes:
        layer: names this change set (an overlay layer's number).
        parent: the ``layer`` of the tree it was made on (:data:`EMPTY_TREE`: none):
            the checkpoint's tree is that tree with these changes applied.
        kind: how the changes are stored: ``overlay`` (an overlayfs layer directory,
            whiteouts and opaque directories included).
        directory: where, as the build's context shells see it.
    """

    layer: str
    parent: str
    kind: str
    directory: str


class CheckpointBackend(Protocol):
    """Where checkpoints live: the recipe's ``checkpoint`` hooks, or a test double."""

    def enabled(self) -> bool:
        """Whether a checkpoint may be created now (the ``enabled?`` hook)."""
        ...

    def list(self) -> frozenset[StepId]:
        """Ids of the checkpoints that exist (stale ones included)."""
        ...

    def create(self, step_id: StepId) -> None:
        """Create the checkpoint ``step_id`` of the current state."""
        ...

    def restore(self, step_id: StepId) -> None:
        """Bring the build back to checkpoint ``step_id`` (the ``apply`` hook)."""
        ...

    def clear(self) -> None:
        """Remove every checkpoint."""
        ...

    @property
    def can_delete(self) -> bool:
        """Whether one checkpoint can be removed on its own (:meth:`delete`)."""
        ...

    def delete(self, step_id: StepId) -> None:
        """Remove the checkpoint ``step_id`` (the optional ``delete`` hook)."""
        ...

    def size(self, step_id: StepId) -> int | None:
        """Bytes on disk of checkpoint ``step_id`` (the optional ``size`` hook), if known."""
        ...

    @property
    def can_diff(self) -> bool:
        """Whether a checkpoint's tree can be read (:meth:`tree`): ``kameleon diff``."""
        ...

    def tree(self, step_id: StepId) -> str:
        """A directory showing checkpoint ``step_id``'s tree, read-only (the ``tree`` hook)."""
        ...

    def changes(self, step_id: StepId) -> LayerChanges | None:
        """What checkpoint ``step_id``'s step changed, if stored apart (``changes`` hook)."""
        ...
