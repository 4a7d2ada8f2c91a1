"""Which stale checkpoints a finished build removes (``--keep-stale``).

A checkpoint is *stale* when the recipe no longer has its id: a step before it was
edited, a variable it depends on changed. Upstream keeps every stale checkpoint for
ever, so a recipe under development fills its disk one edit at a time. kameleon_nb
keeps the stale checkpoints of the last ``keep`` successful builds (default 1, so
editing a step and then reverting the edit costs nothing) and removes older ones.

Builds are numbered (generations); each successful checkpointed build records, for
every checkpoint valid in it, that it was *used* by this generation. A stale
checkpoint is removed when it was last used ``keep`` or more generations ago.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kameleon_nb.core.model import StepId

__all__ = [
    "DEFAULT_KEEP",
    "KEEP_ALL",
    "KEEP_STALE_UNSUPPORTED",
    "Retention",
    "removed_stale",
    "retain",
]

#: ``--keep-stale all``: never remove a stale checkpoint (upstream's behaviour).
KEEP_ALL = -1

#: The stale checkpoints of the previous successful build stay.
DEFAULT_KEEP = 1


#: ``--keep-stale`` with a mechanism that has no ``delete`` hook.
KEEP_STALE_UNSUPPORTED = (
    "Warning: --keep-stale is not supported by this checkpoint mechanism (it has no "
    "'delete' hook): every stale checkpoint is kept"
)


def removed_stale(count: int) -> str:
    """The line after a build that removed stale checkpoints."""
    return (
        f"Removed {count} stale checkpoint(s) of older versions of the recipe "
        "(--keep-stale N keeps those of the last N versions, --keep-stale all every one)"
    )


@dataclass(frozen=True, slots=True)
class Retention:
    """The outcome of one build: the new usage table and the checkpoints to remove."""

    generation: int
    used: dict[StepId, int]
    remove: tuple[StepId, ...]


def retain(
    existing: Iterable[StepId],
    valid: Iterable[StepId],
    used: Mapping[StepId, int],
    generation: int,
    keep: int,
    *,
    new_version: bool = True,
) -> Retention:
    """Record a successful build and list the stale ids to remove.

    Args:
        existing: ids the mechanism lists now.
        valid: ids of the recipe just built (those of ``existing`` are valid).
        used: the last generation that used each id (from earlier builds).
        generation: the number of the last recipe version built (0: none).
        keep: how many earlier versions' stale checkpoints stay; :data:`KEEP_ALL`: all.
        new_version: whether the recipe differs from generation ``generation``'s (then
            this build is ``generation + 1``, else it is ``generation`` again).

    An id with no usage yet (made by a failed build, or before kameleon_nb recorded
    usage) counts as used by the previous version, so it gets the same grace.
    """
    current = generation + 1 if new_version else generation
    existing = set(existing)
    valid_ids = existing.intersection(valid)
    table = {i: used.get(i, current - 1) for i in existing}
    table.update(dict.fromkeys(valid_ids, current))
    stale = sorted(existing - valid_ids)
    if keep == KEEP_ALL:
        remove: tuple[StepId, ...] = ()
    else:
        remove = tuple(i for i in stale if table[i] <= current - 1 - keep)
    for step_id in remove:
        del table[step_id]
    return Retention(generation=current, used=table, remove=remove)
