"""The CLI's event sink and prompts: upstream's lines on stdout, colours on a terminal."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.plan import BuildOptions, existing_rows
from kameleon_nb.engine import processes
from kameleon_nb.engine.builder import Builder, abort_on_failure
from kameleon_nb.engine.commands import Choice
from kameleon_nb.engine.events import (
    BuildEvent,
    BuildFinished,
    BuildStarted,
    CheckpointCreated,
    CheckpointRestored,
    CommandOutput,
    ContextStarted,
    EventSink,
    Failure,
    JsonLinesSink,
    Level,
    MacrostepFinished,
    Message,
    MicrostepFinished,
    MicrostepStarted,
)
from kameleon_nb.frontends.render import checkpoint_table

if TYPE_CHECKING:
    from kameleon_nb.engine.cache.build_cache import BuildCache

__all__ = ["ConsoleSink", "ask_on_terminal", "run_build"]

_COLOURS = {"blue": "34", "green": "32", "red": "31", "yellow": "33", "cyan": "36"}
_LEVEL_COLOUR = {
    Level.MSG: "blue",
    Level.ERROR: "red",
    Level.WARNING: "yellow",
    Level.INFO: "",
    Level.VERBOSE: "cyan",
}


def _secs(seconds: float) -> int:
    return round(seconds)


class ConsoleSink:
    """Prints build events as Kameleon 2.11.0 does, ``[ctx] `` before each output line."""

    def __init__(
        self, stream: IO[str] | None = None, *, colour: bool | None = None, verbose: bool = False
    ) -> None:
        self._stream = stream or sys.stdout
        isatty = getattr(self._stream, "isatty", lambda: False)()
        self._colour = isatty if colour is None else colour and isatty
        self._verbose = verbose
        self._partial: dict[str, list[str]] = {}

    def _write(self, text: str, colour: str = "") -> None:
        if self._colour and colour:
            text = f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"
        self._stream.write(text + "\n")

    def _output(self, context: str, text: str) -> None:
        """Print complete lines with ``[ctx] `` before each and after each CR, as upstream.

        A progress line (carriage returns between updates) thus overwrites itself on a
        terminal and reads as upstream's in a log. A chunk is prefixed and written in one
        piece (string replacements, no loop over its lines); the text after its last
        newline waits for the next chunk.
        """
        cut = text.rfind("\n")
        if cut < 0:
            if text:
                self._partial.setdefault(context, []).append(text)
            return
        held = self._partial.pop(context, None)
        body = text[:cut] if held is None else "".join(held) + text[:cut]
        if cut + 1 < len(text):
            self._partial[context] = [text[cut + 1 :]]
        self._write_lines(context, body)

    def _write_lines(self, context: str, body: str) -> None:
        """Write ``body`` (complete lines, without the last newline) prefixed.

        The parts are written one after the other rather than joined: a chunk of
        output is not copied once more.
        """
        prefix = f"[{context}] "
        if "\r" in body:
            body = body.replace("\r", "\r" + prefix)
        write = self._stream.write
        if self._colour:
            start = f"\x1b[{_COLOURS['green']}m{prefix}"
            write(start)
            write(body.replace("\n", "\x1b[0m\n" + start))
            write("\x1b[0m\n")
        else:
            write(prefix)
            write(body.replace("\n", "\n" + prefix))
            write("\n")

    def flush_output(self) -> None:
        """Print partial output lines still waiting for their newline."""
        for context, parts in list(self._partial.items()):
            text = "".join(parts)
            if text:
                self._write_lines(context, text)
        self._partial.clear()

    def __call__(self, event: BuildEvent) -> None:
        """Print one event."""
        if not isinstance(event, CommandOutput):
            self.flush_output()
        if isinstance(event, CommandOutput):
            self._output(event.context, event.text)
        elif isinstance(event, BuildStarted):
            self._write(f"Creating kameleon build directory: {event.kameleon_cwd}")
            if not event.clean:
                self._write(f"Starting build recipe '{event.recipe_path}'")
        elif isinstance(event, ContextStarted):
            if not event.restarted or self._verbose:
                self._write(
                    f"[{event.context}] The {event.context}_context has been initialized", "green"
                )
        elif isinstance(event, CheckpointRestored):
            self._write(f"Restoring last build from step: {event.slug}")
        elif isinstance(event, MicrostepStarted):
            self._write(f"Step {event.order}: {event.name or event.slug}")
            self._write(event.reason, "blue")
        elif isinstance(event, CheckpointCreated):
            self._write(f"--> Creating checkpoint: '{event.slug}' ({event.step_id})", "blue")
        elif isinstance(event, MacrostepFinished):
            self._write(f"Step {event.name} took: {_secs(event.seconds)} secs")
        elif isinstance(event, BuildFinished):
            if event.success:
                self._write("")
                self._write(f"Successfully built '{event.recipe_path}'", "green")
                self._write(f"Total duration: {_secs(event.seconds)} secs")
        elif isinstance(event, Message):
            if event.level is not Level.VERBOSE or self._verbose:
                self._write(event.text, _LEVEL_COLOUR[event.level])
        elif isinstance(event, MicrostepFinished | Failure):
            pass
        self._stream.flush()


_MENU = [
    ("r", "retry", "Press [r] to retry"),
    ("c", "continue", "Press [c] to continue with execution"),
    ("a", "abort", "Press [a] to abort execution"),
    ("l", "launch local_context", "Press [l] to switch to local_context shell"),
    ("o", "launch out_context", "Press [o] to switch to out_context shell"),
    ("i", "launch in_context", "Press [i] to switch to in_context shell"),
]


def ask_on_terminal(failure: Failure, can_retry: bool) -> Choice:
    """Upstream's breakpoint menu, on the terminal."""
    entries = [e for e in _MENU if can_retry or e[0] != "r"]
    keys = "/".join(e[0] for e in entries)
    if failure.interrupted:
        print("Kameleon breakpoint!")
    elif failure.exit_status is not None:
        print(f"Error occured when executing the following command:\n\n> {failure.command}")
        if failure.tail:
            print(failure.tail.rstrip("\n"))
    while True:
        for _, _, line in entries:
            print(line)
        try:
            answer = input(f"answer ? [{keys}]: ").strip()
        except EOFError:
            answer = "a"
        for key, action, _ in entries:
            if answer == key:
                print(f"User choice: [{key}] {action}")
                return Choice(key)


def _shell_launcher(recipe: ResolvedRecipe) -> Callable[[ContextName], None]:
    def launch(context: ContextName) -> None:
        spec = recipe.contexts[context]
        print("Starting interactive shell")
        processes.run_interactive(
            ["bash", "-c", spec.interactive_cmd or spec.cmd],
            cwd=spec.start_dir if os.path.isdir(spec.start_dir) else None,
        )
        print("Getting back to Kameleon...")

    return launch


def _sinks(args: argparse.Namespace) -> tuple[EventSink, ConsoleSink, IO[str] | None]:
    console = ConsoleSink(colour=args.color, verbose=args.verbose)
    log_stream = open(args.log_json, "w", encoding="utf-8") if args.log_json else None  # noqa: SIM115
    if log_stream is None:
        return console, console, None
    json_sink = JsonLinesSink(log_stream)

    def both(event: BuildEvent) -> None:
        json_sink(event)
        console(event)

    return both, console, log_stream


def run_build(
    recipe: ResolvedRecipe,
    options: BuildOptions,
    args: argparse.Namespace,
    *,
    cache: BuildCache | None = None,
) -> int:
    """Run ``kameleon build`` (list, clean or build) with the console as the sink."""
    interactive = not args.script and sys.stdin.isatty()
    sink, console, log_stream = _sinks(args)
    if args.list_checkpoints and not args.clean:
        sink = _quiet  # upstream forces the error level: only the table shows
    try:
        with Builder(
            recipe,
            on_event=sink,
            on_failure=ask_on_terminal if interactive else abort_on_failure,
            timeout=args.timeout,
            open_shell=_shell_launcher(recipe) if interactive else None,
            cache=cache,
        ) as builder:
            if args.clean:
                builder.clean(options)
            elif args.list_checkpoints:
                rows = existing_rows(recipe, builder.existing_checkpoints())
                if rows:
                    print(f"The following checkpoints are available for recipe '{recipe.name}':")
                    print("\n".join(checkpoint_table(rows)))
                else:
                    print(f"No checkpoint found for recipe '{recipe.name}'")
            else:
                builder.build(options)
    finally:
        console.flush_output()
        if log_stream is not None:
            log_stream.close()
    return 0


def _quiet(event: BuildEvent) -> None:
    if isinstance(event, Message) and event.level in (Level.ERROR, Level.WARNING):
        print(event.text)
