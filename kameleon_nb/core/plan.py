"""What a build will do with each microstep, and why, in upstream's words.

The planner never touches the world: the builder asks the checkpoint mechanism
which ids exist and passes them in. Each decision carries the message Kameleon
2.11.0 prints for it, so the console, the magics and the widgets render one object.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from kameleon_nb.core import messages
from kameleon_nb.core.model import CheckpointPolicy, Microstep, ResolvedRecipe, StepId
from kameleon_nb.core.retention import DEFAULT_KEEP
from kameleon_nb.errors import BuildError

__all__ = [
    "Action",
    "BuildOptions",
    "BuildPlan",
    "PlannedStep",
    "checkpoint_rows",
    "existing_rows",
    "find_row",
    "plan_build",
    "plan_microstep",
]


class Action(enum.Enum):
    """What happens to a microstep."""

    RUN = "run"
    SKIP = "skip"
    CHECKPOINT_AHEAD = "checkpoint_ahead"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """The checkpoint-related options of a build.

    Attributes:
        checkpointing: ``-c``; also implied by ``from_checkpoint``.
        from_checkpoint: ``-F`` value (id, slug or ``last``), if any.
        begin: ``-B`` value, if any.
        end: ``-E`` value, if any.
        first_only: ``--microstep-checkpoints first``.
        keep_stale: ``--keep-stale``: how many earlier builds' stale checkpoints a
            successful build keeps (:data:`~kameleon_nb.core.retention.KEEP_ALL`: all).
        keep_stale_given: whether the user chose ``keep_stale`` (then a mechanism that
            cannot delete a checkpoint is reported, not silently ignored).
        until: ``--until``: stop after this step (id or slug), as if the recipe ended
            there (no later step, no clean step).
    """

    checkpointing: bool = False
    from_checkpoint: str | None = None
    begin: str | None = None
    end: str | None = None
    first_only: bool = False
    keep_stale: int = DEFAULT_KEEP
    keep_stale_given: bool = False
    until: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One microstep of the plan.

    Attributes:
        microstep: the microstep.
        action: run it, skip it, or leave it to the restored checkpoint.
        reason: the line upstream prints for that action.
        checkpoint_reason: for a microstep that runs with checkpointing on: ``None``
            when a checkpoint is to be created after it, else why not (the text after
            ``Do not create a checkpoint for this microstep:``). Always ``None``
            without checkpointing.
        checkpointing: whether checkpointing is on for the build.
    """

    microstep: Microstep
    action: Action
    reason: str
    checkpoint_reason: str | None
    checkpointing: bool


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """The whole build: the checkpoint to restore first, then every microstep."""

    recipe: ResolvedRecipe
    restore: Microstep | None
    steps: tuple[PlannedStep, ...]
    options: BuildOptions
    stop_after: Microstep | None = None  # --until

    def step_for(self, microstep: Microstep) -> PlannedStep:
        """The planned step of a microstep."""
        return self.steps[microstep.order - 1]


def checkpoint_rows(recipe: ResolvedRecipe) -> list[Microstep]:
    """Every microstep, in order: upstream's "all checkpoints" table."""
    return list(recipe.microsteps())


def existing_rows(recipe: ResolvedRecipe, existing: frozenset[StepId]) -> list[Microstep]:
    """The rows whose checkpoint exists, in recipe order (stale ids are ignored)."""
    return [m for m in recipe.microsteps() if m.step_id in existing]


class _Row(Protocol):
    """Anything that stands for a checkpoint: a microstep, a checkpoint table row."""

    @property
    def step_id(self) -> str: ...

    @property
    def slug(self) -> str: ...


_R = TypeVar("_R", bound=_Row)


def find_row(rows: Sequence[_R], value: str, *, last: bool, stale: Sequence[_R] = ()) -> _R | None:
    """The first (or last) row whose id or slug is ``value``.

    This is how every option and command names a checkpoint (``-F``, ``-B``, ``-E``,
    ``--until``, restore, delete, diff). ``stale`` rows (checkpoints the recipe no
    longer has) are matched by id only, after ``rows``: their slugs may now name
    another step.
    """
    matches = [m for m in rows if value in (m.step_id, m.slug)] or [
        m for m in stale if m.step_id == value
    ]
    if not matches:
        return None
    return matches[-1] if last else matches[0]


def _restore_point(
    recipe: ResolvedRecipe, existing: frozenset[StepId], options: BuildOptions
) -> Microstep | None:
    if not options.checkpointing:
        return None
    rows = existing_rows(recipe, existing)
    wanted = options.from_checkpoint
    if wanted is None or wanted == "last":
        return rows[-1] if rows else None
    found = find_row(rows, wanted, last=True)
    if found is None:
        raise BuildError(messages.unknown_checkpoint(wanted))
    return found


def _window_reason(
    microstep: Microstep, begin: Microstep | None, end: Microstep | None
) -> str | None:
    before = begin is not None and microstep.order < begin.order
    after = end is not None and microstep.order > end.order
    if not (before or after):
        return None
    if begin is not None and end is not None:
        return messages.only_between(begin.slug, end.slug)
    if begin is not None:
        return messages.only_after(begin.slug)
    assert end is not None
    return messages.not_after(end.slug)


def plan_build(
    recipe: ResolvedRecipe, existing: frozenset[StepId], options: BuildOptions
) -> BuildPlan:
    """Decide, for every microstep, what the build does and why.

    Args:
        recipe: the resolved recipe.
        existing: ids of the checkpoints the mechanism lists.
        options: checkpoint options of the build.

    Returns:
        The plan.

    Raises:
        BuildError: ``-F``, ``-B`` or ``-E`` names no known checkpoint.
    """
    restore = _restore_point(recipe, existing, options)
    rows = checkpoint_rows(recipe)
    begin = end = None
    if options.checkpointing and options.begin is not None:
        begin = find_row(rows, options.begin, last=False)
        if begin is None:
            raise BuildError(messages.unknown_checkpoint(options.begin, with_dryrun=True))
    if options.checkpointing and options.end is not None:
        end = find_row(rows, options.end, last=True)
        if end is None:
            raise BuildError(messages.unknown_checkpoint(options.end, with_dryrun=True))
    stop_after = None
    if options.until is not None:
        stop_after = find_row(rows, options.until, last=True)
        if stop_after is None:
            raise BuildError(
                f"Unknown step '{options.until}' for --until: give a microstep's id or "
                "section/macrostep/microstep (kameleon build -d -l, or %kameleon plan, lists them)"
            )
        if restore is not None and stop_after.order < restore.order:
            raise BuildError(
                f"--until {options.until}: that step comes before the checkpoint the build "
                f"restarts from ({restore.slug}); restore an earlier one with -F"
            )
    steps = []
    for microstep in rows:
        steps.append(_plan_step(microstep, restore, begin, end, options.checkpointing))
    return BuildPlan(
        recipe=recipe,
        restore=restore,
        steps=tuple(steps),
        options=options,
        stop_after=stop_after,
    )


def plan_microstep(microstep: Microstep, checkpointing: bool) -> PlannedStep:
    """The decision for one microstep run on its own (a notebook cell), no restore point."""
    return _plan_step(microstep, None, None, None, checkpointing)


def _plan_step(
    microstep: Microstep,
    restore: Microstep | None,
    begin: Microstep | None,
    end: Microstep | None,
    checkpointing: bool,
) -> PlannedStep:
    policy = microstep.on_checkpoint
    if not checkpointing:
        if policy is CheckpointPolicy.ONLY:
            return PlannedStep(microstep, Action.SKIP, messages.SKIP_NOT_ACTIVATED, None, False)
        return PlannedStep(microstep, Action.RUN, messages.RUNNING, None, False)
    if policy is CheckpointPolicy.SKIP:
        return PlannedStep(microstep, Action.SKIP, messages.SKIP_ACTIVATED, None, True)
    ahead = restore is not None and microstep.order <= restore.order
    if ahead and policy is not CheckpointPolicy.REDO:
        return PlannedStep(
            microstep, Action.CHECKPOINT_AHEAD, messages.CHECKPOINT_AHEAD, None, True
        )
    if policy is CheckpointPolicy.REDO:
        why: str | None = messages.ALWAYS_REDO
    elif policy is CheckpointPolicy.DISABLED:
        why = messages.DISABLED_IN_STEP
    else:
        why = _window_reason(microstep, begin, end)
    return PlannedStep(microstep, Action.RUN, messages.RUNNING, why, True)
