"""What changed between checkpoints, as text (``kameleon diff``) and HTML (``%kameleon diff``).

One line per path, sorted by path, then a summary line::

    From 3235dce67d3b (setup/configure_system/set_hostname) to 6d2b5f0e1f33 (setup/…/motd):
    added     /etc/issue      file 0644 0:0 12 bytes
    modified  /etc/motd       size 45 -> 46, content
    removed   /usr/share/doc  dir 0755 0:0
    1 added (+12 bytes), 1 removed, 1 modified (+1 byte); read from the overlay layer of 6d2…

No times and no absolute paths, so the notebook's text stays the same from run to run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from kameleon_nb.core.limits import shown_path
from kameleon_nb.engine.checkpoint_diff import CheckpointDiff, CheckpointRef, DiffMethod
from kameleon_nb.engine.session import Session
from kameleon_nb.engine.treediff import Change, Entry, Status
from kameleon_nb.frontends.display import html_table, text_table

__all__ = [
    "DiffView",
    "StepChanges",
    "StepChangesView",
    "diff_lines",
    "every_step",
    "summary_text",
]

#: rows a notebook display shows (the object keeps them all, and the CLI prints all)
SHOWN_ROWS = 200
_PATH_WIDTH = 48
_COLOURS = {Status.ADDED: "#1a7f37", Status.REMOVED: "#cf222e", Status.MODIFIED: "#9a6700"}


def _bytes(count: int, *, signed: bool = False) -> str:
    sign = "+" if signed and count > 0 else ""
    unit = "byte" if abs(count) == 1 else "bytes"
    return f"{sign}{count:,} {unit}"


def _ref(checkpoint: CheckpointRef | None) -> str:
    if checkpoint is None:
        return "the empty tree"
    return f"{checkpoint.step_id} ({checkpoint.slug})"


def header_text(diff: CheckpointDiff) -> str:
    """``From ID (slug) to ID (slug):``."""
    return f"From {_ref(diff.old)} to {_ref(diff.new)}:"


def summary_text(diff: CheckpointDiff) -> str:
    """Counts and bytes, and how the changes were found, in one line."""
    counts = diff.counts()
    if not diff.changes:
        words = "No change"
    else:
        parts = [f"{counts.added} added"]
        if counts.bytes_added:
            parts[-1] += f" ({_bytes(counts.bytes_added, signed=True)})"
        parts.append(f"{counts.removed} removed")
        if counts.bytes_removed:
            parts[-1] += f" ({_bytes(-counts.bytes_removed)})"
        parts.append(f"{counts.modified} modified")
        if counts.bytes_modified:
            parts[-1] += f" ({_bytes(counts.bytes_modified, signed=True)})"
        words = ", ".join(parts)
    if diff.method is DiffMethod.LAYER:
        how = f"read from the overlay layer of {diff.new.step_id}"
    else:
        how = "compared path by path"
    return f"{words}; {how}"


def describe(entry: Entry) -> str:
    """An entry in a few words: ``file 0644 0:0 12 bytes``, ``symlink -> busybox``."""
    if entry.kind == "symlink":
        return f"symlink -> {shown_path(entry.target or '')}"
    words = [entry.kind, f"{entry.mode:04o}", entry.owner]
    if entry.size is not None:
        words.append(_bytes(entry.size))
    if entry.device is not None:
        words.append(entry.device)
    return " ".join(words)


def _values(change: Change, what: str) -> tuple[str, str]:
    """The old and new value of one attribute that differs."""
    old, new = change.old, change.new
    assert old is not None
    assert new is not None
    if what == "type":
        return describe(old), describe(new)
    if what == "mode":
        return f"{old.mode:04o}", f"{new.mode:04o}"
    if what == "owner":
        return old.owner, new.owner
    if what == "size":
        return str(old.size), str(new.size)
    if what == "target":
        return shown_path(old.target or ""), shown_path(new.target or "")
    if what == "device":
        return str(old.device), str(new.device)
    return "", ""  # content: compared, not shown


def details(change: Change) -> str:
    """What differs (``mode 0644 -> 0600, content``), or the entry added or removed."""
    if change.status is Status.ADDED:
        assert change.new is not None
        return describe(change.new)
    if change.status is Status.REMOVED:
        assert change.old is not None
        return describe(change.old)
    parts = []
    for what in change.differs:
        before, after = _values(change, what)
        parts.append(f"{what} {before} -> {after}" if before or after else what)
    return ", ".join(parts)


def change_lines(changes: Sequence[Change]) -> list[str]:
    """One line per path: ``modified  /etc/motd  size 45 -> 46, content``."""
    width = min(max((len(shown_path(c.path)) for c in changes), default=0), _PATH_WIDTH)
    return [
        f"{c.status.value:<9} {shown_path(c.path).ljust(width)}  {details(c)}".rstrip()
        for c in changes
    ]


def diff_lines(diff: CheckpointDiff) -> list[str]:
    """The text of ``kameleon diff``: the header, one line per path, the summary."""
    return [header_text(diff), *change_lines(diff.changes), summary_text(diff)]


def _cells(change: Change) -> tuple[str, str, str]:
    """``(what differs, before, after)`` for the HTML table."""
    if change.status is Status.ADDED:
        assert change.new is not None
        return "", "", describe(change.new)
    if change.status is Status.REMOVED:
        assert change.old is not None
        return "", describe(change.old), ""
    values = [_values(change, what) for what in change.differs]
    before = ", ".join(v[0] for v in values if v[0])
    after = ", ".join(v[1] for v in values if v[1])
    return ", ".join(change.differs), before, after


def _more(hidden: int) -> str:
    return f"... and {hidden:,} more (all of them: the object's .changes, or kameleon diff --json)"


@dataclass(frozen=True, slots=True)
class DiffView:
    """``%kameleon diff``: the changes as an HTML table, or as ``kameleon diff`` prints them."""

    diff: CheckpointDiff
    limit: int = SHOWN_ROWS

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change (the display shows the first :attr:`limit`)."""
        return self.diff.changes

    def _repr_html_(self) -> str:
        shown = self.diff.changes[: self.limit]
        head = "".join(
            f"<th style='text-align:left'>{h}</th>"
            for h in ("change", "path", "what differs", "before", "after")
        )
        rows = []
        for change in shown:
            colour = _COLOURS[change.status]
            cells = [change.status.value, shown_path(change.path), *_cells(change)]
            tds = "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in cells[1:])
            rows.append(f"<tr><td style='text-align:left;color:{colour}'>{cells[0]}</td>{tds}</tr>")
        hidden = len(self.diff.changes) - len(shown)
        foot = f"<p>{html.escape(_more(hidden))}</p>" if hidden > 0 else ""
        table = (
            f"<table class='kameleon-nb'><thead><tr>{head}</tr></thead>{''.join(rows)}</table>"
            if shown
            else ""
        )
        return (
            f"<div class='kameleon-nb-diff'><b>{html.escape(header_text(self.diff))}</b>"
            f"{table}{foot}<p>{html.escape(summary_text(self.diff))}</p></div>"
        )

    def __repr__(self) -> str:
        lines = change_lines(self.diff.changes[: self.limit])
        hidden = len(self.diff.changes) - len(lines)
        more = [_more(hidden)] if hidden > 0 else []
        return "\n".join([header_text(self.diff), *lines, *more, summary_text(self.diff)])


@dataclass(frozen=True, slots=True)
class StepChanges:
    """What one step changed, for the overview of every step."""

    diff: CheckpointDiff

    _FIRST = 3  # paths named in the overview's row

    def row(self) -> tuple[str, ...]:
        """``(step, id, added, removed, modified, bytes, first paths)``."""
        counts = self.diff.counts()
        paths = [shown_path(c.path) for c in self.diff.changes[: self._FIRST]]
        if len(self.diff.changes) > self._FIRST:
            paths.append(f"(+{len(self.diff.changes) - self._FIRST} more)")
        return (
            self.diff.new.slug,
            self.diff.new.step_id,
            str(counts.added),
            str(counts.removed),
            str(counts.modified),
            _bytes(counts.net_bytes, signed=True),
            " ".join(paths),
        )


@dataclass(frozen=True, slots=True)
class StepChangesView:
    """``%kameleon diff`` without arguments: one row per step that has a valid checkpoint."""

    steps: tuple[StepChanges, ...]

    HEADER = ("step", "id", "added", "removed", "modified", "bytes", "paths")

    def rows(self) -> list[tuple[str, ...]]:
        """One row per step, in build order."""
        return [step.row() for step in self.steps]

    def _repr_html_(self) -> str:
        return html_table(self.HEADER, self.rows(), caption="What each step changed")

    def __repr__(self) -> str:
        return text_table(self.HEADER, self.rows())


def every_step(session: Session) -> StepChangesView:
    """What each step changed: a diff per valid checkpoint, in build order."""
    rows = [r for r in session.checkpoints(sizes=False) if r.valid]
    return StepChangesView(tuple(StepChanges(session.diff(r.step_id)) for r in rows))
