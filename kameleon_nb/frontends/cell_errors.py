"""The exceptions a notebook cell ends with: a short message, no Python traceback.

IPython shows an exception that has ``_render_traceback_`` as the lines it returns, so
a failed step reads as the step, the command and its last lines of output, under a
name that says what happened (``StepFailed``, ``KameleonError``) — not ``UsageError``,
which IPython keeps for a magic called the wrong way.
"""

from __future__ import annotations

__all__ = ["CellError", "StepFailed"]


class CellError(Exception):
    """Kameleon could not do what the cell asked (a recipe error, an unknown checkpoint...)."""

    prefix = "Error: "

    def _render_traceback_(self) -> list[str]:
        lines = str(self).splitlines() or [""]
        return [f"{self.prefix}{lines[0]}", *lines[1:]]


class StepFailed(CellError):
    """A command of a microstep failed; the contexts and their variables live on."""

    prefix = "✘ "
