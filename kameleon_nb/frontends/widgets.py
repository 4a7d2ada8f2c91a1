"""Notebook widgets (core ipywidgets only): the checkpoint table and the build progress.

Both are fed by the session: the table asks it for checkpoints and acts through it
(restore, delete), the progress view receives its build events. Button clicks are
handled in the kernel between cells (ipykernel queues them while a cell runs); while
the session is busy every button is disabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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

_COLUMNS = ("id", "step", "created", "size", "state", "", "")


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
    """One row per checkpoint (id, step, created, size, valid or stale) with buttons.

    ``Restore`` brings the rootfs and the context shells back to that checkpoint;
    ``Delete`` removes it (when the mechanism has a ``delete`` hook); ``Refresh``
    lists them again. The table refreshes itself when a cell creates checkpoints.
    """

    def __init__(self, session: Session, **kwargs: Any) -> None:
        self.session = session
        self.refresh_button = w.Button(description="Refresh", icon="refresh", tooltip="List again")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.title = w.HTML()
        self.grid = w.GridBox(
            layout=w.Layout(grid_template_columns="repeat(7, max-content)", grid_gap="2px 14px")
        )
        self.status = w.HTML()
        self.rows: list[CheckpointInfo] = []
        self.buttons: dict[str, tuple[w.Button, w.Button]] = {}
        self._log: list[str] | None = None
        super().__init__(
            [w.HBox([self.title, self.refresh_button]), self.grid, self.status], **kwargs
        )
        self.add_class("kameleon-checkpoints")
        self._unsubscribe = session.subscribe(self._on_session)
        self.refresh()

    # ------------------------------------------------------------------ actions
    def refresh(self) -> None:
        """List the checkpoints again and rebuild the rows."""
        try:
            rows = self.session.checkpoints()
        except KameleonError as err:
            self._say(f"Cannot list checkpoints: {err}", error=True)
            return
        if rows != self.rows or not self.grid.children:
            self.rows = rows
            self._render()

    def restore(self, step_id: str) -> None:
        """What a row's Restore button does."""
        self._log = []  # the output of the mechanism's apply hook, shown under the table
        try:
            info = self.session.restore(step_id)
        except KameleonError as err:
            self._say(f"Restore failed: {err}", error=True)
            return
        finally:
            log, self._log = self._log, None
        stale = "" if info.valid else " (a checkpoint the recipe no longer has)"
        self._say(
            f"Restored checkpoint {info.step_id} ({info.slug}){stale}: the files and the "
            "context shells' variables are back at that step.",
            detail="".join(log or []),
        )

    def delete(self, step_id: str) -> None:
        """What a row's Delete button does."""
        try:
            info = self.session.delete(step_id)
        except KameleonError as err:
            self._say(f"Delete failed: {err}", error=True)
            return
        self.refresh()
        self._say(f"Deleted checkpoint {info.step_id} ({info.slug}).")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)  # ipywidgets cuts it at 110 characters
        return bundle

    def __repr__(self) -> str:
        """The table as text (what a frontend without widgets shows)."""
        header = ("id", "step", "created", "size", "state")
        rows = [
            (
                r.step_id,
                r.slug,
                _created(r.created),
                human_size(r.size),
                "valid" if r.valid else "stale",
            )
            for r in self.rows
        ]
        title = f"Checkpoints of '{self.session.recipe.name}': {len(rows)}"
        return title + ("\n" + text_table(header, rows) if rows else "")

    def close(self) -> None:
        """Stop listening to the session, then close the widget and its parts."""
        self._unsubscribe()
        for widget in (*self.grid.children, self.grid, self.title, self.status):
            widget.close()
        self.refresh_button.close()
        super().close()

    # ------------------------------------------------------------------ drawing
    def _say(self, text: str, *, error: bool = False, detail: str = "") -> None:
        colour = "#b00" if error else "#060"
        body = f"<span style='color:{colour}'>{_escape(text)}</span>"
        if detail.strip():
            body += f"<pre style='margin:2px 0'>{_escape(detail.strip()[-2000:])}</pre>"
        self.status.value = body

    def _render(self) -> None:
        name = self.session.recipe.name
        count = len(self.rows)
        self.title.value = (
            f"<b>Checkpoints of '{_escape(name)}'</b>: {count} "
            f"({sum(r.valid for r in self.rows)} valid)"
        )
        cells: list[w.Widget] = [w.HTML(f"<b>{c}</b>") for c in _COLUMNS]
        self.buttons = {}
        can_delete = self.session.can_delete
        for row in self.rows:
            restore = w.Button(
                description="Restore",
                tooltip=f"Restore {row.step_id}",
                layout=w.Layout(width="auto"),
            )
            delete = w.Button(
                description="Delete",
                layout=w.Layout(width="auto"),
                tooltip=f"Delete {row.step_id}"
                if can_delete
                else "This mechanism has no 'delete' hook",
            )
            restore.add_class("kameleon-restore")
            delete.add_class("kameleon-delete")
            restore.on_click(_bind(self.restore, row.step_id))
            delete.on_click(_bind(self.delete, row.step_id))
            delete.disabled = not can_delete or self.session.busy
            restore.disabled = self.session.busy
            self.buttons[row.step_id] = (restore, delete)
            state = "valid" if row.valid else "stale"
            cells += [
                w.Label(row.step_id),
                w.Label(row.slug),
                w.Label(_created(row.created)),
                w.Label(human_size(row.size)),
                w.HTML(f"<span class='kameleon-{state}'>{state}</span>"),
                restore,
                delete,
            ]
        if not self.rows:
            cells.append(w.Label("No checkpoint yet."))
        old = self.grid.children
        self.grid.children = cells
        for widget in old:  # closed, or every refresh would leak widgets (and comms)
            widget.close()

    def _set_busy(self, busy: bool) -> None:
        can_delete = self.session.can_delete if not busy else False
        self.refresh_button.disabled = busy
        for restore, delete in self.buttons.values():
            restore.disabled = busy
            delete.disabled = busy or not can_delete

    def _on_session(self, event: object) -> None:
        if isinstance(event, SessionChanged):
            self._set_busy(event.busy)
            if not event.busy and event.checkpoints_changed:
                self.refresh()
        elif isinstance(event, CommandOutput) and self._log is not None:
            self._log.append(event.text)


def _bind(action: Callable[[str], None], step_id: str) -> Callable[[w.Button], None]:
    def on_click(_button: w.Button) -> None:
        action(step_id)

    return on_click


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
