"""Command output on its way to the caller: published in batches, with a bounded tail."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["Collector", "Output", "OutputCallback", "last_output"]

OutputCallback = Callable[[str], None]
"""Receives chunks of command output (stdout and stderr merged, ``\\n`` line ends)."""

_PUBLISH_INTERVAL: Final = 0.1
_PUBLISH_SIZE: Final = 65536
_TAIL_LINES: Final = 20
_TAIL_CHARS: Final = 16384
_INIT_OUTPUT_LIMIT: Final = 1 << 20


class Output:
    """Publish output in batches and keep a bounded tail of it."""

    def __init__(self, callback: OutputCallback | None) -> None:
        self._callback = callback
        self._parts: list[str] = []
        self._size = 0
        self._last = time.monotonic()
        self._tail = ""

    def add(self, text: str) -> None:
        """Take a piece of output; publish the batch once it is 64 KiB."""
        if len(text) >= _TAIL_CHARS:
            self._tail = text[-_TAIL_CHARS:]
        else:
            self._tail = (self._tail + text)[-_TAIL_CHARS:]
        if self._callback is not None:
            self._parts.append(text)
            self._size += len(text)
            if self._size >= _PUBLISH_SIZE:
                self.flush()

    def tick(self, now: float) -> None:
        """Publish the batch if the last publication is 100 ms old."""
        if self._parts and now - self._last >= _PUBLISH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Publish what is held now."""
        self._last = time.monotonic()
        if not self._parts or self._callback is None:
            return
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        self._callback(text)

    def tail(self) -> str:
        """The last lines of the output (at most 20 and 16 KiB)."""
        return "\n".join(self._tail.split("\n")[-_TAIL_LINES - 1 :]).strip("\n")


class Collector:
    """An output callback that keeps everything (bounded), for internal commands."""

    def __init__(self, limit: int = _INIT_OUTPUT_LIMIT) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit

    def __call__(self, text: str) -> None:
        """Keep ``text``, dropping the oldest pieces past the limit."""
        self._parts.append(text)
        self._size += len(text)
        while self._size > self._limit and len(self._parts) > 1:
            self._size -= len(self._parts.pop(0))

    @property
    def text(self) -> str:
        """Everything kept."""
        return "".join(self._parts)


def last_output(tail: str) -> str:
    """The end of an error message that shows a command's last output (if any)."""
    return f" Last output:\n{tail}" if tail else ""
