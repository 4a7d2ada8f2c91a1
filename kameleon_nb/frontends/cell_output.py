"""Command output in a notebook cell, bounded: a head, a live count, a tail, a log file.

A command that prints 50 MB must not make a 50 MB notebook. A cell shows the first
``head`` lines as they come; past them, one live line counts what is not shown and
names the log file that has everything; when the cell ends, its last ``tail`` lines
follow. Every byte also goes to ``<build dir>/.kameleon_nb/logs/<time>-<what>.log``.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time
from typing import IO, Any

__all__ = ["BoundedOutput"]

#: the lines a cell shows before it starts counting, and after
HEAD_LINES = 1000
TAIL_LINES = 1000


class BoundedOutput:
    """Writes output to the cell (bounded) and to a log file (whole).

    Use it as a context manager; feed it with :meth:`write`.
    """

    def __init__(
        self,
        log_dir: str,
        label: str,
        *,
        head: int = HEAD_LINES,
        tail: int = TAIL_LINES,
        stream: IO[str] | None = None,
    ) -> None:
        self._stream = stream or sys.stdout
        self._head = head
        self._tail: collections.deque[str] = collections.deque(maxlen=tail)
        self._lines = 0  # complete lines seen
        self._hidden = 0
        self._partial = ""
        self._counter: Any = None
        self._shown_at = 0.0
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[:60] or "output"
        self.log_path = os.path.join(log_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}.log")
        self._log: IO[str] | None = None
        self._log_dir = log_dir

    def __enter__(self) -> BoundedOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, text: str) -> None:
        """Take a chunk of output.

        The chunk's lines are handled together (a count and a few slices, not a step
        per line): a command printing millions of short lines costs little more than
        its log.
        """
        self._to_log(text)
        text = self._partial + text
        cut = text.rfind("\n") + 1
        complete, self._partial = text[:cut], text[cut:]
        count = complete.count("\n")
        if count and self._lines < self._head:
            shown = min(self._head - self._lines, count)
            end = _after_line(complete, shown)
            self._stream.write(complete[:end])
            self._lines += shown
            count -= shown
            complete = complete[end:]
        if count:
            self._more_lines(complete, count)
        if self._lines < self._head and self._partial:
            self._stream.write(self._partial)
            self._partial = ""

    def _more_lines(self, complete: str, count: int) -> None:
        """Lines past the head: keep the last ones, count those that drop out."""
        room = self._tail.maxlen or 0
        kept = min(count, room)
        start = len(complete) - 1
        for _ in range(kept):
            start = complete.rfind("\n", 0, start)
        lines = complete[start + 1 :].split("\n")
        lines.pop()  # after the last newline: nothing
        self._hidden += max(0, len(self._tail) + count - room)
        self._tail.extend(line + "\n" for line in lines)
        self._lines += count
        now = time.monotonic()
        if self._hidden and now - self._shown_at > 0.5:
            self._show_count()
            self._shown_at = now

    def _show_count(self) -> None:
        from IPython.display import display  # noqa: PLC0415 - only past the head

        text = f"… {self._note()}"
        if self._counter is None:
            self._stream.flush()
            self._counter = display({"text/plain": text}, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._counter.update({"text/plain": text}, raw=True)

    @property
    def logged(self) -> bool:
        """Whether anything went to the log file."""
        return self._log is not None

    def log(self, text: str) -> None:
        """Take output for the log file only (a build, whose panels show it)."""
        self._to_log(text)

    def _note(self) -> str:
        return f"{self._hidden:,} lines not shown here; all of the output is in {self.log_path}"

    def _to_log(self, text: str) -> None:
        if self._log is None:
            try:
                os.makedirs(self._log_dir, exist_ok=True)
                self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError:
                return
        self._log.write(text)

    def close(self) -> None:
        """Write the tail (and what was left of a line), close the log."""
        if self._hidden:
            self._show_count()
        if self._lines > self._head:
            self._stream.flush()
            if self._hidden:  # in the text itself too: what a saved notebook keeps
                self._stream.write(f"[{self._note()}]\n")
            self._stream.write("".join(self._tail))
        if self._partial:
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()
        if self._log is not None:
            self._log.close()
            self._log = None


def _after_line(text: str, number: int) -> int:
    """The index just after the ``number``-th newline of ``text`` (which has that many)."""
    index = -1
    for _ in range(number):
        index = text.find("\n", index + 1)
    return index + 1
