"""Rich displays of the notebook: plans, variables, cell results (HTML and plain text).

Each object has a ``_repr_html_`` for Jupyter and a plain-text ``__repr__`` that is
stable from run to run (no times, no absolute paths), so nbval can compare it.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.variables import ruby_str
from kameleon_nb.engine.builder import BuildResult
from kameleon_nb.engine.events import Failure
from kameleon_nb.engine.session import CellResult

__all__ = [
    "BuildSummary",
    "CellSummary",
    "PlanView",
    "VarsView",
    "failure_text",
    "html_table",
    "text_table",
]


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "") -> str:
    """A small HTML table, every cell escaped."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    title = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='kameleon-nb'>{title}<thead><tr>{head}</tr></thead>{body}</table>"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table in aligned plain text."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class PlanView:
    """The recipe's microsteps: order, section, macrostep, microstep, id, on_checkpoint."""

    recipe: ResolvedRecipe

    _HEADER = ("#", "section", "macrostep", "microstep", "id", "on_checkpoint")

    def rows(self) -> list[tuple[str, ...]]:
        """One row per microstep, in build order."""
        return [
            (
                str(m.order),
                m.section,
                m.macrostep,
                m.name,
                m.step_id,
                m.on_checkpoint.value,
            )
            for m in self.recipe.microsteps()
        ]

    def caption(self) -> str:
        """``recipe 'name': N microsteps``."""
        count = sum(1 for _ in self.recipe.microsteps())
        return f"recipe '{self.recipe.name}': {count} microsteps"

    def _repr_html_(self) -> str:
        return html_table(self._HEADER, self.rows(), caption=self.caption())

    def __repr__(self) -> str:
        return self.caption() + "\n" + text_table(self._HEADER, self.rows())


def _value(value: object) -> str:
    """A variable's value for a notebook table: YAML flow style for a mapping or a list.

    (``kameleon info`` prints Ruby's ``inspect``, as upstream does; a notebook reader
    writes recipes in YAML, so the table speaks YAML.)
    """
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    return ruby_str(value)


@dataclass(frozen=True, slots=True)
class VarsView:
    """The recipe's global variables, resolved."""

    recipe: ResolvedRecipe

    def rows(self) -> list[tuple[str, str]]:
        """``(name, value)``, sorted by name."""
        return [(k, _value(self.recipe.global_vars[k])) for k in sorted(self.recipe.global_vars)]

    def _repr_html_(self) -> str:
        return html_table(("variable", "value"), self.rows())

    def __repr__(self) -> str:
        return text_table(("variable", "value"), self.rows())


@dataclass(frozen=True, slots=True)
class CellSummary:
    """What a ``%%microstep`` cell did, in one line."""

    result: CellResult

    def text(self) -> str:
        """``setup/notebook/hello: ok (replaced), checkpoint 1a2b3c4d5e6f``."""
        result = self.result
        if result.microstep is None:
            return f"{result.slug}: defined (no commands of its own, only hooks)"
        parts = [f"{result.slug}: ok"]
        if result.replaced:
            parts[0] += " (replaced)"
        if result.checkpoint:
            parts.append(f"checkpoint {result.checkpoint}")
        if result.note:
            parts.append(result.note)
        return ", ".join(parts)

    def _repr_html_(self) -> str:
        seconds = f"{self.result.seconds:.2f} s"
        return (
            f"<span class='kameleon-nb-cell' title='{seconds}'>&#10004; "
            f"{html.escape(self.text())}</span>"
        )

    def __repr__(self) -> str:
        return self.text()


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What ``%kameleon build`` did: counts, restored checkpoint, created checkpoints."""

    name: str
    result: BuildResult
    log: str | None = None  # the file with all of the build's output

    def text(self) -> str:
        """``Build of 'x' done: 3 run, 2 from checkpoint, 1 skipped, 3 checkpoints created``."""
        result = self.result
        parts = [f"{len(result.ran)} run"]
        if result.checkpoint_ahead:
            parts.append(f"{len(result.checkpoint_ahead)} from checkpoint")
        if result.skipped:
            parts.append(f"{len(result.skipped)} skipped")
        parts.append(f"{len(result.created)} checkpoints created")
        line = f"Build of '{self.name}' done: " + ", ".join(parts)
        if result.restored:
            line += f" (restarted from checkpoint {result.restored})"
        return "\n".join([line, *result.cache])

    def _repr_html_(self) -> str:
        first, *cache = self.text().split("\n")
        more = "".join(f"<br>{html.escape(c)}" for c in cache)
        if self.log:  # not in the text form: nbval compares it, and the path varies
            more += f"<br><small>All of its output: <code>{html.escape(self.log)}</code></small>"
        return f"<b>{html.escape(first)}</b> <i>({self.result.seconds:.1f} s)</i>{more}"

    def __repr__(self) -> str:
        return self.text()


_KEYED = re.compile(r"^(exec_\w+|pipe|rescue|test|group):\s*(.*)$")


def _script_lines(text: str) -> list[str]:
    """The lines of a failed command's script, without its ``exec_xxx: |`` wrapper."""
    lines = text.strip("\n").splitlines()
    match = _KEYED.match(lines[0]) if lines else None
    if match is not None:
        first = match.group(2)
        if re.fullmatch(r"[|>][-+0-9]*", first):
            lines = textwrap.dedent("\n".join(lines[1:])).splitlines()
        else:
            lines = [first, *lines[1:]]
    return [line for line in lines if line.strip()]


def failure_text(failure: Failure, *, lines: int = 10) -> str:
    """A short report: step and context, what happened, the command, its last lines.

    ``setup/x/y failed in the out context: exit status 3`` first, then the command on
    a line of its own, so a reason (a timeout...) never runs into the command text.
    """
    command = _script_lines(failure.command)
    shown = command[0] if command else ""
    if len(command) > 1:
        shown += f" … (+{len(command) - 1} lines)"
    tail = failure.tail.rstrip("\n").splitlines()
    if failure.interrupted:
        status = "interrupted"
    elif failure.exit_status is None:  # it could not run or finish: the reason is the text
        status, tail = (tail[0] if tail else "it could not run"), tail[1:]
    else:
        status = f"exit status {failure.exit_status}"
    text = f"{failure.slug or 'a command'} failed in the {failure.context} context: {status}"
    text += f"\n  command: {shown}"
    if tail[-lines:]:
        text += "\nlast lines of output:\n" + "\n".join(f"  {line}" for line in tail[-lines:])
    return text
