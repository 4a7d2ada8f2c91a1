"""Notebook widgets (core ipywidgets only): the checkpoint table and the build progress.

Both are fed by the session: the table asks it for checkpoints and acts through it
(restore, delete), the progress view receives its build events. Button clicks are
handled in the kernel between cells (ipykernel queues them while a cell runs); while
the session is busy every button is disabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import ipywidgets as w

from kameleon_nb.engine.events import (
    BuildFinished,
    BuildStarted,
    CheckpointRestored,
    CommandOutput,
    Failure,
    MicrostepFinished,
    MicrostepStarted,
)
from kameleon_nb.engine.session import CheckpointInfo, Session, SessionChanged
from kameleon_nb.errors import KameleonError
from kameleon_nb.frontends.display import text_table

__all__ = ["BuildProgress", "CheckpointTable", "human_size"]

_COLUMNS = ("id", "step", "created", "size", "state", "tree")

#: the characters of a step's output a static snapshot keeps
_SNAPSHOT_CHARS = 4000


def human_size(size: int | None) -> str:
    """``1.2 MB``-style size; ``-`` when unknown.

    >>> human_size(0), human_size(1536), human_size(None)
    ('0 B', '1.5 KB', '-')
    """
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def _created(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


class CheckpointTable(w.VBox):  # type: ignore[misc]
    """The checkpoints (id, step, created, size, valid or stale, where the tree is).

    Displayed, it is two outputs (:meth:`_ipython_display_`): the title and rows, one
    static HTML table (and its text) updated through its display id while the table is
    live, so a saved notebook shows them wherever it is opened, even where no widget
    can be drawn (no kernel); then the controls, a fixed handful of widget models (a
    choice of checkpoint, Refresh, Restore, Changes, Delete with its confirmation, a
    status line), so rebuilds never pile models up. Restore acts on one click; Delete
    asks first. The table refreshes itself when the session creates or removes
    checkpoints, until it is frozen (see :meth:`freeze`: the magics do it when a later
    cell changes the session, and a newer table of the session supersedes it): then
    both outputs keep what they showed, as static HTML and text.
    """

    #: the live table of each session (a newer one freezes the older one)
    _live: ClassVar[dict[int, CheckpointTable]] = {}

    def __init__(self, session: Session, **kwargs: Any) -> None:
        self.session = session
        self.rows: list[CheckpointInfo] = []
        self.head: str | None = None
        self.handle: Any = None  # the display of the controls (to freeze them)
        self.rows_handle: Any = None  # the display of the title and rows
        self._status_text = ""
        self._log: list[str] | None = None
        self._pending_delete: str | None = None
        #: the title and the rows as HTML (what the rows' display shows)
        self.title_html = ""
        self.rows_html = ""
        self.refresh_button = w.Button(
            description="Refresh",
            icon="refresh",
            tooltip="List again",
            layout=w.Layout(width="auto"),
        )
        self.choice = w.Dropdown(description="Checkpoint", layout=w.Layout(width="auto"))
        self.restore_button = w.Button(description="Restore", tooltip="Restore the chosen one")
        self.changes_button = w.Button(
            description="Changes", tooltip="What the chosen one's step changed (%kameleon diff)"
        )
        self.delete_button = w.Button(description="Delete", tooltip="Delete the chosen one")
        self.confirm_button = w.Button(description="Yes, delete", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.status = w.HTML()
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.restore_button.on_click(lambda _b: self._chosen(self.restore))
        self.changes_button.on_click(lambda _b: self._chosen(self.show_changes))
        self.delete_button.on_click(lambda _b: self._chosen(self.ask_delete))
        self.confirm_button.on_click(lambda _b: self.confirm_delete())
        self.cancel_button.on_click(lambda _b: self.cancel_delete())
        self.restore_button.add_class("kameleon-restore")
        self.delete_button.add_class("kameleon-delete")
        self.confirm = w.HBox([self.confirm_button, self.cancel_button])
        self.confirm.layout.display = "none"
        self.controls = w.HBox(
            [
                self.refresh_button,
                self.choice,
                self.restore_button,
                self.changes_button,
                self.delete_button,
                self.confirm,
            ]
        )
        super().__init__([self.controls, self.status], **kwargs)
        self.add_class("kameleon-checkpoint-controls")
        earlier = self._live.get(id(session))
        if earlier is not None and earlier is not self:
            earlier.freeze()
        self._live[id(session)] = self
        self._unsubscribe = session.subscribe(self._on_session)
        self.refresh()

    # ------------------------------------------------------------------ actions
    def refresh(self) -> None:
        """List the checkpoints again and redraw."""
        try:
            rows = self.session.checkpoints()
        except KameleonError as err:
            self._say(f"Cannot list checkpoints: {err}", error=True)
            return
        self.rows = rows
        self.head = self.session.head
        self._render()

    def restore(self, step_id: str) -> None:
        """Restore a checkpoint (what Restore does with the chosen one)."""
        self._log = []  # the output of the mechanism's apply hook, shown under the table
        try:
            info = self.session.restore(step_id)
        except KameleonError as err:
            self._say(f"Restore failed: {err}", error=True)
            return
        finally:
            log, self._log = self._log, None
        self.refresh()
        stale = "" if info.valid else " (a checkpoint the recipe no longer has)"
        self._say(
            f"Restored checkpoint {info.step_id} ({info.slug}){stale}: the files and the "
            "context shells' variables are back at that step.",
            detail="".join(log or []),
        )

    def show_changes(self, step_id: str) -> None:
        """Show what the step of a checkpoint changed (what Changes does with the chosen one)."""
        from kameleon_nb.frontends.diff_view import DiffView  # noqa: PLC0415

        try:
            view = DiffView(self.session.diff(step_id))
        except KameleonError as err:
            self._say(f"Changes: {err}", error=True)
            return
        self.status.value = view._repr_html_()
        self._status_text = repr(view)

    def ask_delete(self, step_id: str) -> None:
        """Delete, first click: ask to confirm (nothing is removed yet)."""
        row = next((r for r in self.rows if r.step_id == step_id), None)
        if row is None:
            return
        self._pending_delete = step_id
        self.confirm.layout.display = ""
        self._say(f"Delete checkpoint {step_id} ({row.slug})? It cannot be undone.")

    def confirm_delete(self) -> None:
        """Delete, confirmed."""
        step_id, self._pending_delete = self._pending_delete, None
        self.confirm.layout.display = "none"
        if step_id is None:
            return
        try:
            info = self.session.delete(step_id)
        except KameleonError as err:
            self._say(f"Delete failed: {err}", error=True)
            return
        self.refresh()
        self._say(f"Deleted checkpoint {info.step_id} ({info.slug}).")

    def cancel_delete(self) -> None:
        """Delete, cancelled."""
        self._pending_delete = None
        self.confirm.layout.display = "none"
        self._say("Nothing deleted.")

    def delete(self, step_id: str) -> None:
        """Delete a checkpoint at once (both clicks: :meth:`ask_delete`, :meth:`confirm_delete`)."""
        self.ask_delete(step_id)
        self.confirm_delete()

    def choose(self, step_id: str) -> None:
        """Choose a row (what picking it in the list does)."""
        self.choice.value = step_id

    def _chosen(self, action: Callable[[str], None]) -> None:
        if self.choice.value:
            action(str(self.choice.value))

    # ------------------------------------------------------------------ forms
    def _ipython_display_(self) -> None:
        """Show the title and rows (a display of their own), then the controls."""
        from IPython.display import display  # noqa: PLC0415

        self.rows_handle = display(self.rows_view(), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self.handle = display(self._repr_mimebundle_(), raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:  # the forms shown where no widget can be drawn
            bundle.update(self._status_forms())
        return bundle

    def rows_view(self, *, live: bool = True) -> dict[str, str]:
        """The title and rows, as static HTML and text (their display's content)."""
        kind = "kameleon-checkpoints" if live else "kameleon-checkpoints-snapshot"
        return {
            "text/html": f"<div class='{kind}'>{self.title_html}{self.rows_html}</div>",
            "text/plain": repr(self),
        }

    def _status_forms(self) -> dict[str, str]:
        html = f"<div class='kameleon-checkpoints-status'>{self.status.value}</div>"
        return {"text/html": html if self.status.value else "", "text/plain": self._status_text}

    def __repr__(self) -> str:
        """The table as text (what a frontend without widgets shows)."""
        header = ("id", "step", "created", "size", "state", "tree")
        rows = [(*_cells(r), "here" if r.step_id == self.head else "") for r in self.rows]
        title = f"Checkpoints of '{self.session.recipe.name}': {len(rows)}"
        return title + ("\n" + text_table(header, rows) if rows else "")

    def freeze(self) -> None:
        """Keep what the table shows as static HTML; stop listening; free the widgets.

        A newer table of the session supersedes this one: the cell keeps the rows it
        showed then (a notebook's text talks about those), and a saved notebook shows
        them without a kernel.
        """
        if self.rows_handle is not None:
            self.rows_handle.update(self.rows_view(live=False), raw=True)
        if self.handle is not None:
            self.handle.update(self._status_forms(), raw=True)
        self.close()

    def close(self) -> None:
        """Stop listening to the session, then close the widget and its parts."""
        self._unsubscribe()
        if self._live.get(id(self.session)) is self:
            del self._live[id(self.session)]
        _close_tree(*self.children)
        for part in (self.layout, getattr(self, "style", None)):
            if isinstance(part, w.Widget):
                part.close()
        super().close()

    # ------------------------------------------------------------------ drawing
    def _say(self, text: str, *, error: bool = False, detail: str = "") -> None:
        self._status_text = f"{text}\n{detail.strip()[-2000:]}" if detail.strip() else text
        colour = "#b00" if error else "#060"
        body = f"<span style='color:{colour}'>{_escape(text)}</span>"
        if detail.strip():
            body += f"<pre style='margin:2px 0'>{_escape(detail.strip()[-2000:])}</pre>"
        self.status.value = body

    def _render(self) -> None:
        name = self.session.recipe.name
        count = len(self.rows)
        self.title_html = (
            f"<b>Checkpoints of '{_escape(name)}'</b>: {count} "
            f"({sum(r.valid for r in self.rows)} valid)"
        )
        if not self.rows:
            self.rows_html = "<i>No checkpoint yet.</i>"
        else:
            body = "".join(_html_row(r, here=r.step_id == self.head) for r in self.rows)
            head = "".join(f"<th style='text-align:left'>{c}</th>" for c in _COLUMNS)
            self.rows_html = (
                "<table class='kameleon-nb kameleon-checkpoint-rows'>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            )
        kept = self.choice.value
        self.choice.options = [(f"{r.slug} ({r.step_id})", r.step_id) for r in self.rows]
        ids = [r.step_id for r in self.rows]
        self.choice.value = kept if kept in ids else (ids[-1] if ids else None)
        self._set_busy(self.session.busy)
        if self.rows_handle is not None:
            self.rows_handle.update(self.rows_view(), raw=True)

    def _set_busy(self, busy: bool) -> None:
        nothing = not self.rows
        self.refresh_button.disabled = busy
        self.restore_button.disabled = busy or nothing
        self.changes_button.disabled = busy or nothing
        self.delete_button.disabled = busy or nothing or not self.session.can_delete
        self.delete_button.tooltip = (
            "Delete the chosen one (asks first)"
            if self.session.can_delete
            else "This mechanism has no 'delete' hook"
        )
        self.confirm_button.disabled = busy

    def _on_session(self, event: object) -> None:
        if isinstance(event, SessionChanged):
            if not event.busy and event.checkpoints_changed:
                self.refresh()
            else:
                self._set_busy(event.busy)
                if not event.busy and self.head != self.session.head:
                    self.head = self.session.head
                    self._render()
        elif isinstance(event, CommandOutput) and self._log is not None:
            self._log.append(event.text)


def _cells(row: CheckpointInfo) -> tuple[str, str, str, str, str]:
    state = "valid" if row.valid else "stale"
    return row.step_id, row.slug, _created(row.created), human_size(row.size), state


def _html_row(row: CheckpointInfo, *, here: bool) -> str:
    step_id, slug, created, size, state = _cells(row)
    marker = "◀ the tree is here" if here else ""
    style = " style='font-weight:bold'" if here else ""
    cells = (
        f"<code>{step_id}</code>",
        _escape(slug),
        created,
        size,
        f"<span class='kameleon-{state}'>{state}</span>",
        marker,
    )
    # left-aligned as their headers (JupyterLab right-aligns table cells)
    line = "".join(f"<td style='text-align:left'>{c}</td>" for c in cells)
    return f"<tr{style}>{line}</tr>"


def _close_tree(*widgets: w.Widget) -> None:
    """Close widgets, their children, and the layout and style models each one holds.

    ``Widget.close`` leaves a widget's ``layout`` and ``style`` (models of their own) in
    the kernel: without this, every closed view would leak two or three models.
    """
    for widget in widgets:
        for child in getattr(widget, "children", ()):
            _close_tree(child)
        for part in ("layout", "style"):
            model = getattr(widget, part, None)
            if isinstance(model, w.Widget):
                model.close()
        widget.close()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class BuildProgress(w.VBox):  # type: ignore[misc]
    """A progress bar, the current step and the elapsed time, and each step's output.

    Call it with build events (it is a session listener). Each microstep that runs
    gets a collapsed panel with its output (the last ``keep`` characters).
    """

    def __init__(self, *, keep: int = 20_000, **kwargs: Any) -> None:
        self.bar = w.IntProgress(value=0, min=0, max=1, description="0/0")
        self.current = w.Label("waiting")
        self.elapsed = w.Label("")
        self.steps = w.Accordion()
        self.done = 0
        self.total = 0
        self.failed: str | None = None
        self._keep = keep
        self._started = time.monotonic()
        self._outputs: dict[str, w.Output] = {}
        self._texts: dict[str, str] = {}
        self._titles: list[str] = []
        self._slug = ""
        self._dirty = False
        self._flushed = 0.0
        super().__init__([w.HBox([self.bar, self.current, self.elapsed]), self.steps], **kwargs)
        self.add_class("kameleon-progress")

    def __repr__(self) -> str:
        """One line of text (what a frontend without widgets shows)."""
        return f"Build progress: {self.done}/{self.total} microsteps, {self.current.value}"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
            bundle["text/html"] = self.snapshot_html()
        return bundle

    def snapshot(self) -> dict[str, str]:
        """The progress without widgets: static HTML and its one line of plain text."""
        return {"text/html": self.snapshot_html(), "text/plain": repr(self)}

    def snapshot_html(self) -> str:
        """The progress as static HTML: the last line, then each step's output, folded."""
        self._flush()
        colour = {"success": "#060", "danger": "#b00"}.get(self.bar.bar_style, "#333")
        lines = [
            f"<div class='kameleon-progress-snapshot'><b style='color:{colour}'>"
            f"{_escape(self.bar.description)} microsteps: {_escape(self.current.value)}</b> "
            f"<i>({_escape(self.elapsed.value)})</i>"
        ]
        for title, slug in zip(self._titles, self._outputs, strict=True):
            text = self._texts[slug]
            shown = text if len(text) <= _SNAPSHOT_CHARS else "…" + text[-_SNAPSHOT_CHARS:]
            opened = " open" if slug == self.failed else ""
            lines.append(
                f"<details{opened}><summary>{_escape(title)}</summary>"
                f"<pre style='margin:2px 0'>{_escape(shown)}</pre></details>"
            )
        return "".join(lines) + "</div>"

    def close(self) -> None:
        """Close the widget and every part of it (its models go away)."""
        _close_tree(*self.children)
        for part in (self.layout, getattr(self, "style", None)):
            if isinstance(part, w.Widget):
                part.close()
        super().close()

    def __call__(self, event: object) -> None:
        """Take one build event (the progress view is a session listener)."""
        if isinstance(event, BuildStarted):
            self.total = event.total
            self.bar.max = max(1, event.total)
            self._started = time.monotonic()
        elif isinstance(event, CheckpointRestored):
            self._slug = f"restore {event.step_id}"
        elif isinstance(event, MicrostepStarted):
            self._flush()
            if self._slug.startswith("restore "):
                self._title(self._slug, f"✔ {self._slug}")
            self._slug = event.slug
            self.current.value = f"Step {event.order}/{event.total}: {event.slug}"
        elif isinstance(event, CommandOutput):
            self._append(event.text)
        elif isinstance(event, MicrostepFinished):
            self.done += 1
            self.bar.value = self.done
            if event.ran:
                self._title(event.slug, f"✔ {event.slug} ({event.seconds:.1f} s)")
        elif isinstance(event, Failure):
            slug = event.slug or self._slug
            self.failed = slug
            if slug not in self._outputs:
                self._slug = slug
                self._append(event.tail or "(no output)\n")
                self._flush()
            self._title(slug, f"✘ {slug}")
            self.steps.selected_index = list(self._outputs).index(slug)
        elif isinstance(event, BuildFinished):
            self._flush()
            self.bar.bar_style = "success" if event.success else "danger"
            if event.success:
                self.current.value = "done"
            else:
                self.current.value = (
                    f"failed at {self.failed}" if self.failed else "failed before any step ran"
                )
        else:
            return
        self.bar.description = f"{self.done}/{self.total}"
        self.elapsed.value = f"{time.monotonic() - self._started:.1f} s"

    def _append(self, text: str) -> None:
        slug = self._slug or "build"
        if slug not in self._outputs:
            self._outputs[slug] = w.Output()
            self._texts[slug] = ""
            self._titles.append(f"… {slug}")
            self.steps.children = (*self.steps.children, self._outputs[slug])
            self.steps.titles = tuple(self._titles)
        self._texts[slug] = (self._texts[slug] + text)[-self._keep :]
        self._dirty = True
        if time.monotonic() - self._flushed > 0.1:
            self._flush()

    def _flush(self) -> None:
        if not self._dirty:
            return
        for slug, output in self._outputs.items():
            text = self._texts[slug]
            if output.outputs and output.outputs[0].get("text") == text:
                continue
            output.outputs = ({"output_type": "stream", "name": "stdout", "text": text},)
        self._dirty = False
        self._flushed = time.monotonic()

    def _title(self, slug: str, title: str) -> None:
        if slug in self._outputs:
            self._titles[list(self._outputs).index(slug)] = title
            self.steps.titles = tuple(self._titles)
