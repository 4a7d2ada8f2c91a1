"""Running Kameleon commands: exec_*, pipe, rescue, test, group, breakpoint, reload_context."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import Command
from kameleon_nb.engine.contexts import Contexts
from kameleon_nb.engine.events import CommandOutput, EventSink, Failure, Level, Message
from kameleon_nb.engine.pipes import run_pipe
from kameleon_nb.errors import AbortError, ContextError, ExecError, ShellError

__all__ = ["Choice", "CommandFailedError", "CommandRunner", "FailureHandler", "PipeRecorder"]

log = logging.getLogger(__name__)

_EXEC_PREFIX = "exec_"
_CONTEXT_NAMES = {c.value: c for c in ContextName}


class Choice(enum.Enum):
    """The answers of upstream's breakpoint menu."""

    RETRY = "r"
    CONTINUE = "c"
    ABORT = "a"
    SHELL_LOCAL = "l"
    SHELL_OUT = "o"
    SHELL_IN = "i"


_SHELL_CHOICES = {
    Choice.SHELL_LOCAL: ContextName.LOCAL,
    Choice.SHELL_OUT: ContextName.OUT,
    Choice.SHELL_IN: ContextName.IN,
}

#: Called on a failure (or a ``breakpoint``, where retry is not offered: the bool
#: says whether it is); returns the user's choice, or None to fail without asking
#: (``--script``, notebooks).
FailureHandler = Callable[[Failure, bool], "Choice | None"]


class CommandFailedError(ExecError):
    """A command failed; carries what the failure report needs."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        lines = "\n".join(f"> {line}" for line in failure.command.splitlines())
        detail = f"Error occured when executing the following command:\n\n{lines}"
        if failure.exit_status is not None:
            detail += f"\n\nin the {failure.context} context, exit status {failure.exit_status}"
        if failure.tail.strip():
            last = "\n".join(f"  {line}" for line in failure.tail.rstrip("\n").splitlines())
            detail += f"; last lines of output:\n{last}"
        super().__init__(detail)


@dataclass(slots=True)
class _Scope:
    slug: str = ""
    pipes: int = 0  # pipes run so far in the microstep (they name recorded outputs)


class PipeRecorder(Protocol):
    """Where the persistent cache keeps the output of pipes that read from the host."""

    def files(self, key: str, source: ContextName) -> tuple[str | None, str | None]:
        """``(record_to, replay_from)`` for the pipe ``key`` (both None: run as is).

        Raises:
            CacheError: a build from an archive that lacks this pipe's output.
        """
        ...

    def recorded(self, key: str, path: str) -> None:
        """The pipe ``key`` succeeded: keep the output written to ``path``."""
        ...


def exec_context(key: str) -> ContextName | None:
    """The context of an ``exec_<ctx>`` key, or None for other commands.

    >>> exec_context("exec_out")
    <ContextName.OUT: 'out'>
    """
    if key.startswith(_EXEC_PREFIX):
        return _CONTEXT_NAMES.get(key[len(_EXEC_PREFIX) :])
    return None


class CommandRunner:
    """Executes the commands of microsteps in a build's contexts."""

    def __init__(
        self,
        contexts: Contexts,
        on_event: EventSink,
        on_failure: FailureHandler,
        *,
        timeout: float | None = None,
        open_shell: Callable[[ContextName], None] | None = None,
    ) -> None:
        self.contexts = contexts
        self._emit = on_event
        self._on_failure = on_failure
        self._timeout = timeout
        self._open_shell = open_shell
        self._scope = _Scope()
        self._capture: Callable[[str], None] | None = None
        self._in_hook = False
        self.pipe_recorder: PipeRecorder | None = None

    def set_timeout(self, timeout: float | None) -> None:
        """Interrupt any later command that runs longer than ``timeout`` seconds."""
        self._timeout = timeout

    @contextlib.contextmanager
    def checkpoint_hook(self) -> Iterator[None]:
        """Run commands as a checkpoint hook: ``reload_context`` keeps the variables.

        A mechanism reloads a context so that it sees a new mount; the context must
        come back as it was, with its shell variables, and only when next used.
        """
        previous, self._in_hook = self._in_hook, True
        try:
            yield
        finally:
            self._in_hook = previous

    @contextlib.contextmanager
    def capturing(self, sink: Callable[[str], None] | None) -> Iterator[None]:
        """Send command output to ``sink`` instead of events (None: no change)."""
        previous = self._capture
        if sink is not None:
            self._capture = sink
        try:
            yield
        finally:
            self._capture = previous

    def run_microstep(self, commands: tuple[Command, ...], slug: str) -> None:
        """Run every command of a microstep, handling failures as the user chooses."""
        self._scope.slug = slug
        self._scope.pipes = 0
        for command in commands:
            self.execute(command)

    # ------------------------------------------------------------------ dispatch
    def execute(self, command: Command, *, interactive: bool = True) -> None:
        """Run one command; on failure ask the handler unless ``interactive`` is off."""
        while True:
            try:
                self._dispatch(command, interactive)
                return
            except KeyboardInterrupt:
                if not interactive:
                    raise
                failure = dataclasses.replace(
                    self._failure(command, "local", 130, "interrupted by the user"),
                    interrupted=True,
                )
                choice = self._ask(failure, can_retry=True)
                if choice is None:
                    raise
                err_for_abort: BaseException = KeyboardInterrupt()
            except CommandFailedError as err:
                if not interactive:
                    raise
                choice = self._ask(err.failure, can_retry=True)
                if choice is None:
                    raise
                err_for_abort = err
            if choice is Choice.RETRY:
                self._emit(Message("Retrying the previous command..."))
                continue
            if choice is Choice.CONTINUE:
                self._reset_status()
                return
            raise AbortError("Execution aborted...") from err_for_abort

    def _ask(self, failure: Failure, *, can_retry: bool) -> Choice | None:
        while True:
            choice = self._on_failure(failure, can_retry)
            if choice is None:
                return None
            if choice in _SHELL_CHOICES:
                if self._open_shell is not None:
                    self._open_shell(_SHELL_CHOICES[choice])
                continue
            if choice is Choice.RETRY and not can_retry:
                continue
            return choice

    def _reset_status(self) -> None:
        for name in self.contexts.started():
            try:
                self.contexts.run(name, "true")
            except (ContextError, ShellError):
                log.debug("could not reset the status of %s", name.value)

    def _dispatch(self, command: Command, interactive: bool) -> None:
        key = command.key
        context = exec_context(key)
        if context is not None:
            self._exec(context, command)
        elif key == "pipe":
            self._pipe(command)
        elif key == "rescue":
            self._rescue(command, interactive)
        elif key == "test":
            self._test(command, interactive)
        elif key == "group":
            for child in command.children:
                self.execute(child, interactive=interactive)
        elif key == "breakpoint":
            self._breakpoint(command)
        elif key == "reload_context":
            self._reload(command)
        else:
            self._emit(Message(f"Unknown command: {key}", Level.WARNING))

    # ------------------------------------------------------------------ commands
    def _output(self, context: ContextName) -> Callable[[str], None]:
        if self._capture is not None:
            return self._capture
        name = context.value

        def sink(text: str) -> None:
            self._emit(CommandOutput(name, text))

        return sink

    def _failure(self, command: Command, context: str, status: int | None, tail: str) -> Failure:
        return Failure(
            command=command.text,
            context=context,
            exit_status=status,
            tail=tail,
            slug=self._scope.slug,
        )

    def _exec(self, context: ContextName, command: Command) -> None:
        script = command.value if isinstance(command.value, str) else ""
        try:
            result = self.contexts.run(
                context, script, on_output=self._output(context), timeout=self._timeout
            )
        except (ContextError, ShellError) as err:
            raise CommandFailedError(self._failure(command, context.value, None, str(err))) from err
        if result.exit_status != 0:
            raise CommandFailedError(
                self._failure(command, context.value, result.exit_status, result.tail)
            )

    def _pipe(self, command: Command) -> None:
        children = command.children
        ends = [exec_context(child.key) for child in children]
        if len(children) != 2 or ends[0] is None or ends[1] is None:
            raise CommandFailedError(
                self._failure(
                    command,
                    "local",
                    None,
                    "Invalid 'pipe' command arguments: expecting two exec_* commands",
                )
            )
        source, target = ends[0], ends[1]
        source_script = children[0].value if isinstance(children[0].value, str) else ""
        target_script = children[1].value if isinstance(children[1].value, str) else ""
        self._scope.pipes += 1
        # the microstep and the pipe's rank in it: not the command's text, whose
        # resolved paths differ where the archive is unpacked
        key = f"{self._scope.slug}#{self._scope.pipes}:{source.value}"
        record_to = replay_from = None
        if self.pipe_recorder is not None and not self._in_hook:
            record_to, replay_from = self.pipe_recorder.files(key, source)
        try:
            status, tail = run_pipe(
                self.contexts,
                (source, source_script),
                (target, target_script),
                on_output=lambda ctx, text: self._output(ctx)(text),
                timeout=self._timeout,
                record_to=record_to,
                replay_from=replay_from,
            )
        except (ContextError, ShellError) as err:
            raise CommandFailedError(self._failure(command, target.value, None, str(err))) from err
        if status != 0:
            raise CommandFailedError(self._failure(command, target.value, status, tail))
        if record_to is not None and self.pipe_recorder is not None:
            self.pipe_recorder.recorded(key, record_to)

    def _rescue(self, command: Command, interactive: bool) -> None:
        children = command.children
        if len(children) != 2:
            raise CommandFailedError(
                self._failure(
                    command,
                    "local",
                    None,
                    "Invalid 'rescue' command arguments. Expecting 2 sub commands",
                )
            )
        try:
            self.execute(children[0], interactive=False)
        except CommandFailedError:
            self.execute(children[1], interactive=interactive)

    def _test(self, command: Command, interactive: bool) -> None:
        children = command.children
        if len(children) not in (2, 3):
            raise CommandFailedError(
                self._failure(
                    command,
                    "local",
                    None,
                    "Invalid 'test' command arguments. Expecting 2 or 3 sub commands",
                )
            )
        try:
            self.execute(children[0], interactive=False)
        except CommandFailedError:
            if len(children) == 3:
                self.execute(children[2], interactive=interactive)
            return
        self.execute(children[1], interactive=interactive)

    def _breakpoint(self, command: Command) -> None:
        message = (
            command.value
            if isinstance(command.value, str) and command.value
            else ("Kameleon breakpoint!")
        )
        self._emit(Message(message, Level.ERROR))
        choice = self._ask(self._failure(command, "local", None, ""), can_retry=False)
        if choice is None or choice is Choice.ABORT:
            raise AbortError("Execution aborted...")
        if choice is Choice.CONTINUE:
            self._reset_status()

    def _reload(self, command: Command) -> None:
        value = command.value if isinstance(command.value, str) else ""
        context = _CONTEXT_NAMES.get(value)
        if context is None:
            raise CommandFailedError(
                self._failure(
                    command,
                    "local",
                    None,
                    'Invalid context name arguments. Expected: ["in", "out", "local"]',
                )
            )
        if self._in_hook:
            self.contexts.restart_later(context)
        else:
            self.contexts.reload(context)
