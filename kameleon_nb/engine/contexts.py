"""The local/out/in context shells of one build, started lazily and closed together."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.engine.events import ContextStarted, EventSink
from kameleon_nb.errors import ContextClosedError, ContextError

__all__ = ["CommandResult", "Contexts", "OutputSink", "Shell", "ShellFactory"]

log = logging.getLogger(__name__)

OutputSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did: its status, its last lines, how long it took."""

    exit_status: int
    tail: str
    duration: float


class Shell(Protocol):
    """A persistent context shell (``engine.shell.ContextShell`` or a test fake)."""

    @property
    def alive(self) -> bool:
        """Whether the shell process is running."""
        ...

    def start(self) -> None:
        """Start the shell process."""
        ...

    def run(
        self, script: str, *, on_output: OutputSink | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run one command the Kameleon way."""
        ...

    def interrupt(self) -> None:
        """Interrupt the running command."""
        ...

    def close(self) -> None:
        """Stop the shell and everything it started."""
        ...

    def variables(self) -> str:
        """The dump of the shell variables the commands have set."""
        ...

    def restore_variables(self, dump: str) -> None:
        """Make later commands see exactly the variables of ``dump``."""
        ...

    def reset_variables(self) -> None:
        """Forget every variable the commands have set."""
        ...

    def pipe_argv(self, script: str) -> list[str]:
        """Argv of a one-shot process running ``script`` in this context (for ``pipe``)."""
        ...


ShellFactory = Callable[[ContextSpec], Shell]


class Contexts:
    """The three contexts of a build, each started on its first command."""

    def __init__(
        self,
        specs: Mapping[ContextName, ContextSpec],
        factory: ShellFactory,
        on_event: EventSink,
    ) -> None:
        self._specs = dict(specs)
        self._factory = factory
        self._emit = on_event
        self._shells: dict[ContextName, Shell] = {}
        self._pending: dict[ContextName, str] = {}
        self._restarting: set[ContextName] = set()

    def spec(self, name: ContextName) -> ContextSpec:
        """The settings of one context."""
        return self._specs[name]

    def started(self) -> list[ContextName]:
        """The contexts whose shell is running."""
        return [name for name, shell in self._shells.items() if shell.alive]

    def shell(self, name: ContextName) -> Shell:
        """The shell of a context, started (or restarted after a death) if needed."""
        shell = self._shells.get(name)
        if shell is None:
            shell = self._factory(self._specs[name])
            self._shells[name] = shell
        if not shell.alive:
            os.makedirs(self._specs[name].start_dir, exist_ok=True)  # the build directory
            try:
                shell.start()
            except ContextError as err:
                suffix = f"The '{name.value}_context' is inaccessible."
                if suffix in str(err):
                    raise
                raise ContextError(f"{str(err).rstrip('.')}. {suffix}") from err
            self._emit(ContextStarted(name.value, restarted=name in self._restarting))
            self._restarting.discard(name)
            if name in self._pending:
                shell.restore_variables(self._pending.pop(name))
        return shell

    def run(
        self,
        name: ContextName,
        script: str,
        *,
        on_output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run one command in a context."""
        shell = self.shell(name)
        try:
            return shell.run(script, on_output=on_output, timeout=timeout)
        except ContextClosedError:
            log.warning("context %s died", name.value)
            raise

    def reload(self, name: ContextName) -> None:
        """Replace a context's shell by a fresh one, variables reset (``reload_context``)."""
        shell = self._shells.get(name)
        if shell is not None:
            shell.close()
            shell.reset_variables()
        self._pending.pop(name, None)
        self.shell(name)

    def restart_later(self, name: ContextName) -> None:
        """Close a context's shell; it starts again on its next command, same variables."""
        shell = self._shells.pop(name, None)
        if shell is None:
            return
        if shell.alive:
            self._pending[name] = shell.variables()
            self._restarting.add(name)
        shell.close()

    def variables(self) -> dict[ContextName, str]:
        """Variable dumps of the started contexts (what a checkpoint records)."""
        return {name: shell.variables() for name, shell in self._shells.items() if shell.alive}

    def restore(self, dumps: Mapping[ContextName, str]) -> None:
        """Give every context the variables of a checkpoint (after its ``apply``).

        The in context lives inside the appliance, which the restore replaced (a
        remounted tree, its own working directory with its state files): it is
        closed and starts again on its next command. The local and out contexts get
        the variables in place, or when they start. A context missing from ``dumps``
        gets its initial environment.
        """
        for name in ContextName:
            shell = self._shells.get(name)
            if name is ContextName.IN and shell is not None:
                del self._shells[name]
                if shell.alive:
                    self._restarting.add(name)
                shell.close()
                shell = None
            if shell is not None and shell.alive:
                shell.restore_variables(dumps.get(name, ""))
                self._pending.pop(name, None)
            else:
                self._pending[name] = dumps.get(name, "")

    def update_specs(self, specs: Mapping[ContextName, ContextSpec]) -> None:
        """Take new settings; a context whose settings changed restarts (same variables)."""
        for name, given in specs.items():
            old = self._specs.get(name)
            spec = dataclasses.replace(given, launcher=old.launcher) if old else given
            if old != spec:
                self._specs[name] = spec
                self.restart_later(name)

    def set_launcher(self, launcher: tuple[str, ...]) -> None:
        """Start context processes through ``launcher`` from now on (see namespace)."""
        self._specs = {n: dataclasses.replace(s, launcher=launcher) for n, s in self._specs.items()}

    def close(self) -> None:
        """Close every shell (idempotent)."""
        for shell in self._shells.values():
            try:
                shell.close()
            except Exception:
                log.exception("closing a context shell failed")
        self._shells.clear()
