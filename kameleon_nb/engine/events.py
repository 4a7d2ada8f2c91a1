"""What a build tells its front ends: frozen events, one model for every sink.

The builder never prints. The console turns events into upstream's lines, the
notebook widgets update from them, ``--log-json`` writes them one per line, and
tests collect them in a list.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

__all__ = [
    "BuildEvent",
    "BuildFinished",
    "BuildStarted",
    "CheckpointCreated",
    "CheckpointRestored",
    "CommandOutput",
    "ContextStarted",
    "EventSink",
    "Failure",
    "JsonLinesSink",
    "Level",
    "MacrostepFinished",
    "Message",
    "MicrostepFinished",
    "MicrostepStarted",
]


class Level(enum.Enum):
    """How a message is shown (colour on a terminal, filtered by ``--verbose``)."""

    INFO = "info"
    MSG = "msg"  # ``--> ...`` decision lines
    WARNING = "warning"
    ERROR = "error"
    VERBOSE = "verbose"


@dataclass(frozen=True, slots=True)
class BuildStarted:
    """A build (or clean) begins in ``kameleon_cwd``."""

    recipe_path: str
    kameleon_cwd: str
    total: int
    clean: bool = False


@dataclass(frozen=True, slots=True)
class ContextStarted:
    """A context shell was started (``The <ctx>_context has been initialized``).

    ``restarted`` marks a restart a checkpoint mechanism asked for (the context comes
    back with its variables); the console shows those only with ``--verbose``.
    """

    context: str
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointRestored:
    """The build restarts from a checkpoint (``Restoring last build from step``)."""

    slug: str
    step_id: str


@dataclass(frozen=True, slots=True)
class MicrostepStarted:
    """``Step <order>: <name>``, then the decision ``reason``.

    ``slug`` is the microstep's row in the checkpoint table (``%1``, ``%2``... when a
    slug repeats); ``name`` is ``section/macrostep/microstep`` as the ``Step`` line
    shows it, without that suffix.
    """

    order: int
    slug: str
    step_id: str
    reason: str
    total: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class MicrostepFinished:
    """A microstep is done: it ran (``ran``) or was skipped / covered by a checkpoint."""

    order: int
    slug: str
    step_id: str
    ran: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class CommandOutput:
    """A chunk of a command's output in one context (may hold partial lines)."""

    context: str
    text: str


@dataclass(frozen=True, slots=True)
class CheckpointCreated:
    """``--> Creating checkpoint: '<slug>' (<id>)``."""

    slug: str
    step_id: str


@dataclass(frozen=True, slots=True)
class MacrostepFinished:
    """``Step <name> took: <n> secs`` (checkpoint creation time excluded)."""

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class BuildFinished:
    """The build ended; ``success`` False when it failed or was aborted."""

    recipe_path: str
    seconds: float
    success: bool


@dataclass(frozen=True, slots=True)
class Message:
    """Any other line of upstream's output, with its level."""

    text: str
    level: Level = Level.INFO


@dataclass(frozen=True, slots=True)
class Failure:
    """A command failed: which, where, its status and its last lines of output."""

    command: str
    context: str
    exit_status: int | None
    tail: str
    slug: str
    interrupted: bool = False


BuildEvent = (
    BuildStarted
    | ContextStarted
    | CheckpointRestored
    | MicrostepStarted
    | MicrostepFinished
    | CommandOutput
    | CheckpointCreated
    | MacrostepFinished
    | BuildFinished
    | Message
    | Failure
)

EventSink = Callable[[BuildEvent], None]


class JsonLinesSink:
    """Writes every event as one JSON object per line (``--log-json FILE``)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: BuildEvent) -> None:
        """Write one event."""
        record: dict[str, object] = {"event": type(event).__name__}
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            record[field.name] = value.value if isinstance(value, enum.Enum) else value
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()
