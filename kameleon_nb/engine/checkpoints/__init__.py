"""Checkpoint mechanisms: the protocol the builder talks to, and the recipe-hooks one."""

from __future__ import annotations

from typing import Protocol

from kameleon_nb.core.model import StepId

__all__ = ["CheckpointBackend"]


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
