"""Every user-facing text that mirrors Kameleon 2.11.0, in one place."""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_AHEAD",
    "CHECKPOINT_UNAVAILABLE",
    "RUNNING",
    "SKIP_ACTIVATED",
    "SKIP_NOT_ACTIVATED",
    "creating_checkpoint",
    "no_checkpoint",
    "unknown_checkpoint",
]

RUNNING = "--> Running the step..."
CHECKPOINT_AHEAD = "--> Checkpoint ahead, do nothing"
SKIP_ACTIVATED = "--> Skip microstep as requested when checkpointing is activated"
SKIP_NOT_ACTIVATED = "--> Skip microstep as requested when checkpointing is not activated"
CHECKPOINT_UNAVAILABLE = "Checkpoint is unavailable for this recipe"

ALREADY_ONCE = "macrostep already checkpointed once"
ALWAYS_REDO = "always redo microstep"
DISABLED_IN_STEP = "disabled in the microstep definition"
DISABLED_IN_BACKEND = "disabled in backend"


def no_checkpoint(why: str) -> str:
    """The line explaining why a microstep that ran gets no checkpoint."""
    return f"--> Do not create a checkpoint for this microstep: {why}"


def only_after(begin: str) -> str:
    """Reason for a microstep before the ``-B`` window."""
    return f"only after step '{begin}'"


def not_after(end: str) -> str:
    """Reason for a microstep after the ``-E`` window."""
    return f"not after step '{end}'"


def only_between(begin: str, end: str) -> str:
    """Reason for a microstep outside a ``-B``/``-E`` window."""
    return f"only between steps '{begin}' and '{end}'"


def creating_checkpoint(slug: str, step_id: str) -> str:
    """The line announcing a checkpoint."""
    return f"--> Creating checkpoint: '{slug}' ({step_id})"


def unknown_checkpoint(value: str, *, with_dryrun: bool = False) -> str:
    """Error for a ``-F``/``-B``/``-E`` value that matches no checkpoint."""
    options = "dryrun and list checkpoints options" if with_dryrun else "list checkpoints option"
    return f"Unknown checkpoint '{value}'. You may use the {options} to find a valid checkpoint."
