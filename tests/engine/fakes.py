"""Test doubles for the layer above the shells: a scripted shell, in-memory checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from kameleon_nb.core.contexts import ContextSpec
from kameleon_nb.core.model import StepId
from kameleon_nb.engine.contexts import CommandResult


class FakeShell:
    """Records commands; ``behaviour(context, script)`` gives (status, output)."""

    def __init__(
        self,
        spec: ContextSpec,
        log: list[tuple[str, str]],
        behaviour: Callable[[str, str], tuple[int, str]],
    ) -> None:
        self.spec = spec
        self._log = log
        self._behaviour = behaviour
        self._alive = False
        self._vars = ""

    @property
    def alive(self) -> bool:
        return self._alive

    def start(self) -> None:
        self._alive = True

    def run(self, script, *, on_output=None, timeout=None) -> CommandResult:
        self._alive = True
        self._log.append((self.spec.name.value, script))
        status, output = self._behaviour(self.spec.name.value, script)
        if output and on_output is not None:
            on_output(output)
        return CommandResult(status, output, 0.0)

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        self._alive = False

    def variables(self) -> str:
        return self._vars

    def restore_variables(self, dump: str) -> None:
        self._vars = dump

    def reset_variables(self) -> None:
        self._vars = ""

    def pipe_argv(self, script: str) -> list[str]:
        self._log.append((self.spec.name.value, f"pipe: {script}"))
        return ["true"]


def fake_shells(behaviour: Callable[[str, str], tuple[int, str]] = lambda c, s: (0, "")):
    """A shell factory and the log of (context, command) it records."""
    log: list[tuple[str, str]] = []

    def factory(spec: ContextSpec) -> FakeShell:
        return FakeShell(spec, log, behaviour)

    return factory, log


class MemoryCheckpoints:
    """Checkpoints kept in a set; ``enabled`` can be switched off."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.ids: set[str] = set(existing or ())
        self.created: list[str] = []
        self.restored: list[str] = []
        self.is_enabled = True

    def enabled(self) -> bool:
        return self.is_enabled

    def list(self) -> frozenset[StepId]:
        return frozenset(StepId(i) for i in self.ids)

    def create(self, step_id: StepId) -> None:
        self.ids.add(step_id)
        self.created.append(step_id)

    def restore(self, step_id: StepId) -> None:
        self.restored.append(step_id)

    def clear(self) -> None:
        self.ids.clear()

    can_delete = True

    def delete(self, step_id: StepId) -> None:
        self.ids.discard(step_id)

    def size(self, step_id: StepId) -> int | None:
        return 0 if step_id in self.ids else None
