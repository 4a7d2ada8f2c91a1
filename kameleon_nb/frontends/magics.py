"""IPython magics: ``%kameleon`` and ``%%microstep``, one recipe session per kernel.

Every magic is ``@no_var_expand`` (``$var``, ``{x}`` and ``$${var}`` reach the
engine as written) and reports a failure by raising an ``UsageError`` instance: the
cell stops with a short message and no traceback, and so do "Run All", nbclient and
nbval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class, no_var_expand
from IPython.display import display as _display
from traitlets import Float, observe

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.engine.commands import CommandFailedError
from kameleon_nb.engine.events import CommandOutput, Level, Message
from kameleon_nb.engine.session import Session
from kameleon_nb.errors import KameleonError
from kameleon_nb.errors import UsageError as KameleonUsageError
from kameleon_nb.frontends.arguments import (
    add_cache_options,
    add_checkpoint_options,
    add_globals_option,
    build_options,
    cache_options,
    new_parser,
    parse_global,
)
from kameleon_nb.frontends.cell_errors import CellError, StepFailed
from kameleon_nb.frontends.cell_output import BoundedOutput
from kameleon_nb.frontends.console import ConsoleSink
from kameleon_nb.frontends.diff_view import DiffView, every_step
from kameleon_nb.frontends.display import (
    BuildSummary,
    CellSummary,
    PlanView,
    VarsView,
    failure_text,
)
from kameleon_nb.frontends.notebook.cells import (
    MicrostepLine,
    RecipeLine,
    body_commands,
    format_microstep_line,
    microstep_parser,
    parse_microstep_line,
    parse_recipe_line,
)
from kameleon_nb.frontends.widgets import BuildProgress, CheckpointTable

__all__ = ["USAGE", "KameleonMagics", "current_session"]

USAGE = """\
%kameleon load RECIPE [-g key:value ...] [-c] [--build-path P]
                         load a recipe into this notebook's session; show its plan
%%kameleon recipe PATH [-g ...] [-c] [--build-path P]
                         the cell is the recipe's YAML (as the file at PATH would be)
%%microstep NAME [--context local|out|in] [--section S] [--macrostep M] [--on-checkpoint V]
                         run the cell (shell, or Kameleon commands when it starts with
                         "- ") as that microstep, now, and keep it in the recipe
%kameleon build [-c] [-F ID|STEP|last] [-B ID] [-E ID] [--microstep-checkpoints first|all]
                [--until ID|STEP] [--keep-stale N|all] [-C [--cache-path DIR]]
                [--proxy HOST:PORT]
                [-g key:value ...] [--console]
                         build the whole recipe, with live progress (--console: and
                         the log 'kameleon build' prints)
%kameleon plan           the recipe's microsteps and checkpoint ids
%kameleon checkpoints    the checkpoint table (Restore, Delete, Refresh)
%kameleon restore ID|STEP|last
                         bring the files and the context shells back to a checkpoint
%kameleon delete ID      remove one checkpoint
%kameleon diff [A [B]]   what step A changed, or what changed from checkpoint A to B
                         (ids, steps or last); no argument: what each step changed
%kameleon shell CONTEXT COMMAND
                         run one command in local, out or in (not kept in the recipe)
%kameleon vars           the recipe's global variables, resolved
%kameleon export DIR     write the session's recipe and step files under DIR
%kameleon close          stop the context shells (they start again when needed)
%kameleon dag [RECIPE ...] [--recipes-only]
                         the recipe's inheritance and microsteps as a graph (SVG)
%kameleon forget NAME    forget the microstep a deleted cell defined (plan, build,
                         export and checkpoints do it by themselves for cells gone
                         from the saved notebook)
"""


#: the verbs that first drop the microsteps of cells deleted from the saved notebook
_FOLLOWS_THE_NOTEBOOK = frozenset({"plan", "build", "export", "checkpoints"})
#: verbs that change neither the checkpoints nor where the tree is: a checkpoint table
#: shown earlier stays live through them (every other cell freezes it first)
_READ_ONLY = frozenset({"plan", "vars", "diff", "export", "shell", "close", "dag"})


def _build_parser() -> argparse.ArgumentParser:
    parser = new_parser("%kameleon build")
    add_globals_option(parser)
    add_checkpoint_options(parser)
    add_cache_options(parser)
    parser.add_argument(
        "--console",
        action="store_true",
        help="also print the build log, as 'kameleon build' prints it",
    )
    return parser


@magics_class
class KameleonMagics(Magics):
    """The ``%kameleon`` and ``%%microstep`` magics and the session they drive."""

    timeout = Float(
        None,
        allow_none=True,
        help="Interrupt any command that runs longer than this many seconds",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session: Session | None = None
        #: the cell that loaded the recipe (for export): its magic line and body
        self.header: tuple[str, str | None] | None = None
        #: the notebook cell running now (IPython's pre_run_cell), when the frontend says
        self.cell_id: str | None = None
        self._table: CheckpointTable | None = None

    @observe("timeout")
    def _timeout_changed(self, change: dict[str, Any]) -> None:
        if self.session is not None:
            self.session.set_timeout(change["new"])

    def pre_run_cell(self, info: Any) -> None:
        """IPython event: remember which notebook cell runs.

        A cell that moves its microstep elsewhere must not leave the old one behind.
        """
        self.cell_id = getattr(info, "cell_id", None)

    # ------------------------------------------------------------------ session
    def close(self) -> None:
        """End the session: its shells close, its widgets stop acting (unload, new load)."""
        self.freeze_table()
        if self.session is not None:
            self.session.end()
            self.session = None

    def freeze_table(self) -> None:
        """Keep the checkpoint table shown last as it is now, as static HTML.

        Called before a cell changes the session: a notebook run top to bottom then
        keeps each table as its cell showed it (the text around it talks about that),
        instead of every table following the last cell. The table's own buttons act
        while no later cell has changed the session.
        """
        if self._table is not None:
            self._table.freeze()  # it keeps what it showed, without acting any more
            self._table = None

    def _open(self, kind: str, line: str, text: str | None) -> Session:
        spec: RecipeLine = parse_recipe_line(kind, line)
        session = Session.open(
            spec.path,
            text=text,
            cli_globals=spec.cli_globals,
            build_path=spec.build_path,
            checkpointing=spec.checkpointing,
            timeout=self.timeout,
        )
        self.close()
        self.session = session
        self.header = (
            f"%kameleon load {line}" if kind == "load" else f"%%kameleon recipe {line}",
            text,
        )
        return session

    def _session(self) -> Session:
        if self.session is None:
            self.session = Session.scratch(timeout=self.timeout)
        return self.session

    @staticmethod
    @contextmanager
    def _streaming(
        session: Session, *, output: bool = True, label: str = "output"
    ) -> Iterator[BoundedOutput]:
        """Show command output (unless ``output`` is False) and warnings while it runs.

        The cell shows a bounded head and tail of the output; the whole of it goes to a
        log file under the build directory (see :mod:`~kameleon_nb.frontends.cell_output`).
        """
        logs = os.path.join(session.recipe.kameleon_cwd, ".kameleon_nb", "logs")
        with BoundedOutput(logs, label) as shown:

            def show(event: object) -> None:
                if isinstance(event, CommandOutput):
                    if output:
                        shown.write(event.text)
                    else:
                        shown.log(event.text)
                elif isinstance(event, Message) and event.level in (Level.WARNING, Level.ERROR):
                    sys.stderr.write(event.text + "\n")

            with _subscribed(session, show):
                yield shown

    # ------------------------------------------------------------------ magics
    @cell_magic
    @no_var_expand
    def microstep(self, line: str, cell: str) -> None:
        """Run the cell as one microstep of the recipe (``%kameleon help`` for usage)."""
        if line.strip() in ("-h", "--help"):
            print(microstep_parser().format_help())
            return
        with _reported():
            parsed = parse_microstep_line(line)
            self.freeze_table()
            session = self._session()
            source = f"%%microstep {parsed.name}"
            items = body_commands(cell, parsed.context, parsed.on_checkpoint, source=source)
            with self._streaming(session, label=parsed.name):
                result = session.run_microstep(
                    parsed.name,
                    items,
                    section=parsed.section,
                    macrostep=parsed.macrostep,
                    source=source,
                    cell_id=self.cell_id,
                    origin=(parsed, cell),
                )
        display(CellSummary(result))

    @line_cell_magic
    @no_var_expand
    def kameleon(self, line: str, cell: str | None = None) -> None:
        """Load, build and inspect a Kameleon recipe (``%kameleon help`` for usage)."""
        verb, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if verb in ("", "help", "-h", "--help"):
            print(USAGE)
            return
        action = self._verbs().get(verb)
        if action is None:
            raise UsageError(f"%kameleon: unknown command '{verb}'\n\n{USAGE}")
        if cell is not None and verb != "recipe":
            raise UsageError(f"%%kameleon {verb} takes no cell body; use %kameleon {verb}")
        with _reported():
            if verb not in _READ_ONLY:
                self.freeze_table()
            if verb in _FOLLOWS_THE_NOTEBOOK:
                self.sync_cells()
            action(rest, cell)

    def notebook_file(self) -> str | None:
        """The notebook this kernel runs for, as the Jupyter server tells (JPY_SESSION_NAME)."""
        path = os.environ.get("JPY_SESSION_NAME") or (
            self.shell.user_ns.get("__session__") if self.shell is not None else None
        )
        if isinstance(path, str) and path.endswith(".ipynb") and os.path.isfile(path):
            return path
        return None

    def sync_cells(self) -> None:
        """Forget the microsteps of cells the saved notebook no longer has, and say which."""
        path = self.notebook_file()
        if self.session is None or path is None:
            return
        try:
            saved_at = os.stat(path).st_mtime
            with open(path, encoding="utf-8") as stream:
                cells = json.load(stream).get("cells", [])
        except (OSError, ValueError, AttributeError):
            return  # being written, or not a notebook: try again next time
        present = {c["id"] for c in cells if isinstance(c, dict) and isinstance(c.get("id"), str)}
        dropped = self.session.forget_cells(present, saved_at)
        if dropped:
            self.freeze_table()  # the recipe changed: the table showed it as it was
            print(
                f"Dropped the microsteps of cells no longer in {os.path.basename(path)}: "
                + ", ".join(dropped)
            )

    def _forget(self, rest: str, _cell: str | None) -> None:
        wanted = _one_word(rest, "%kameleon forget NAME|SECTION/MACROSTEP/NAME")
        print(f"Forgot {self._session().forget_microstep(wanted)}")

    def _verbs(self) -> dict[str, Callable[[str, str | None], None]]:
        return {
            "load": self._load,
            "recipe": self._recipe,
            "build": self._build,
            "plan": lambda _rest, _cell: display(PlanView(self._session().recipe)),
            "checkpoints": self._checkpoints,
            "restore": self._restore,
            "delete": self._delete,
            "diff": self._diff,
            "shell": self._shell,
            "vars": lambda _rest, _cell: display(VarsView(self._session().recipe)),
            "export": self._export,
            "close": lambda _rest, _cell: self._session().close(),
            "forget": self._forget,
            "dag": self._dag,
        }

    def _dag(self, rest: str, _cell: str | None) -> None:
        from kameleon_nb.frontends.dag_magic import show_dag  # noqa: PLC0415

        show_dag(rest, self.session.recipe if self.session is not None else None)

    def _checkpoints(self, _rest: str, _cell: str | None) -> None:
        # one live table per session: the earlier one keeps what it showed (frozen)
        self._table = CheckpointTable(self._session())
        display(self._table)  # its rows, then its controls (CheckpointTable._ipython_display_)

    def _load(self, rest: str, _cell: str | None) -> None:
        session = self._open("load", rest, None)
        display(PlanView(session.recipe))

    def _recipe(self, rest: str, cell: str | None) -> None:
        if cell is None:
            raise KameleonUsageError(
                "%kameleon recipe needs the recipe as the cell body: %%kameleon recipe PATH"
            )
        session = self._open("recipe", rest, cell)
        display(PlanView(session.recipe))

    def _build(self, rest: str, _cell: str | None) -> None:
        args = _build_parser().parse_args(_words(rest, "%kameleon build"))
        session = self._session()
        if args.globals:
            session.set_globals(dict(parse_global(g) for g in args.globals))
        options = build_options(args)
        cache = cache_options(args)
        for note in cache.notes:
            print(note)
        progress = BuildProgress()
        shown = _display(progress, display_id=True)  # type: ignore[no-untyped-call]
        console = ConsoleSink(sys.stdout, colour=False) if args.console else None
        try:
            with (
                _subscribed(session, progress),
                self._streaming(session, output=False, label="build") as log,
                _subscribed(session, console) if console is not None else nullcontext(),
            ):
                result = session.build(options, cache if cache.mode is not None else None)
        finally:
            if console is not None:
                console.flush_output()
            if shown is not None:  # final: static HTML, readable without a kernel; no models
                shown.update(progress.snapshot(), raw=True)
            progress.close()
        display(BuildSummary(session.recipe.name, result, log.log_path if log.logged else None))

    def _restore(self, rest: str, _cell: str | None) -> None:
        wanted = _one_word(rest, "%kameleon restore ID|STEP|last")
        session = self._session()
        with self._streaming(session):
            info = session.restore(wanted)
        print(f"Restored checkpoint {info.step_id} ({info.slug})")

    def _delete(self, rest: str, _cell: str | None) -> None:
        wanted = _one_word(rest, "%kameleon delete ID")
        info = self._session().delete(wanted)
        print(f"Deleted checkpoint {info.step_id} ({info.slug})")

    def _diff(self, rest: str, _cell: str | None) -> None:
        words = _words(rest, "%kameleon diff [A [B]]")
        if len(words) > 2:
            raise KameleonUsageError("usage: %kameleon diff [ID|STEP|last [ID|STEP|last]]")
        session = self._session()
        with self._streaming(session, output=False):
            shown = DiffView(session.diff(*words)) if words else every_step(session)
        display(shown)

    def _shell(self, rest: str, _cell: str | None) -> None:
        context, _, command = rest.partition(" ")
        names = [c.value for c in ContextName]
        if context not in names or not command.strip():
            raise KameleonUsageError(
                f"usage: %kameleon shell {'|'.join(names)} COMMAND (got '{rest}')"
            )
        session = self._session()
        with self._streaming(session):
            session.run_command(ContextName(context), command.strip())

    def _export(self, rest: str, _cell: str | None) -> None:
        directory = _one_word(rest, "%kameleon export DIR")
        if self.header is None and (self.session is None or not self.session.defined):
            raise KameleonUsageError(
                "Nothing to export: load a recipe (%kameleon load) or run %%microstep cells first"
            )
        from kameleon_nb.frontends.notebook.files import export_session  # noqa: PLC0415

        report = export_session(self.session_cells(), directory)
        print(report)

    def session_cells(self) -> list[str]:
        """The session as notebook cell sources: its recipe cell, then its microsteps."""
        sources: list[str] = []
        if self.header is not None:
            first, text = self.header
            sources.append(first if text is None else f"{first}\n{text}")
        if self.session is not None:
            for (section, macrostep, _name), origin in self.session.defined.items():
                line, body = cast(tuple[MicrostepLine, str], origin)
                full = dataclasses.replace(line, section=section, macrostep=macrostep)
                sources.append(f"{format_microstep_line(full)}\n{body}")
        return sources


def current_session(ipython: Any = None) -> Session | None:
    """The recipe session of an IPython (default: the running one), if any."""
    if ipython is None:
        from IPython import get_ipython  # noqa: PLC0415

        ipython = get_ipython()
    if ipython is None:
        return None
    magics = ipython.magics_manager.registry.get("KameleonMagics")
    return magics.session if isinstance(magics, KameleonMagics) else None


def display(obj: object) -> None:
    """IPython's ``display`` (typed)."""
    _display(obj)  # type: ignore[no-untyped-call]


def _words(rest: str, usage: str) -> list[str]:
    try:
        return shlex.split(rest)
    except ValueError as err:
        raise KameleonUsageError(f"{usage}: {err}") from None


def _one_word(rest: str, usage: str) -> str:
    words = _words(rest, usage)
    if len(words) != 1:
        raise KameleonUsageError(f"usage: {usage}")
    return words[0]


@contextmanager
def _subscribed(session: Session, listener: Callable[[Any], None]) -> Iterator[None]:
    unsubscribe = session.subscribe(listener)
    try:
        yield
    finally:
        unsubscribe()
        sys.stdout.flush()


@contextmanager
def _reported() -> Iterator[None]:
    """Turn kameleon_nb's errors into short cell errors (no traceback).

    A magic called the wrong way is IPython's ``UsageError``; a failed step is a
    :class:`StepFailed`; anything else kameleon_nb refuses is a :class:`CellError`.
    """
    try:
        yield
    except CommandFailedError as err:
        raise StepFailed(failure_text(err.failure)) from None
    except KameleonUsageError as err:
        raise UsageError(str(err)) from None
    except KameleonError as err:
        raise CellError(str(err)) from None
    except KeyboardInterrupt:
        raise StepFailed(
            "Interrupted: the command was stopped; the context shells and their variables live on"
        ) from None
