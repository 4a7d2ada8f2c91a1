"""Kameleon's native checkpoint mechanism: the recipe's own hook commands.

``enabled?``, ``create``, ``apply``, ``list`` and ``clear`` are ordinary commands
(any context, aliases already expanded), with ``@microstep_id`` replaced by the id.
kameleon_nb adds optional ones: ``size`` and ``delete`` (the notebook's checkpoint
table), ``tree`` and ``changes`` (``kameleon diff``).

A checkpoint id is 12 lowercase hex digits (see :mod:`kameleon_nb.core.stepid`). The
``list`` hook's output is whatever the mechanism's store holds (file or directory
names), so a line that is not such an id is dropped with a warning where it enters,
and no other text ever replaces ``@microstep_id`` in a command: a crafted name in the
store cannot run code when the table is shown, restored or deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from kameleon_nb.core.model import Command, StepId
from kameleon_nb.engine.checkpoints import LayerChanges
from kameleon_nb.engine.commands import CommandFailedError, CommandRunner
from kameleon_nb.errors import BuildError

__all__ = ["NO_TREE_HOOK", "RecipeHooksBackend", "with_step_id"]

log = logging.getLogger(__name__)

_STEP_ID_RE = re.compile(r"[0-9a-f]{12}")

NO_TREE_HOOK = (
    "kameleon diff is not supported by this recipe's checkpoint mechanism (it has no 'tree' "
    "hook to show a checkpoint's tree); the built-in overlay, btrfs and rsync mechanisms have one"
)


def _checked(step_id: str) -> str:
    if not _STEP_ID_RE.fullmatch(step_id):
        raise BuildError(
            f"Refusing checkpoint id {step_id!r}: a checkpoint id is 12 hex digits (0-9, a-f)"
        )
    return step_id


def with_step_id(command: Command, step_id: str) -> Command:
    """The command with every ``@microstep_id`` replaced by ``step_id``.

    Raises:
        BuildError: ``step_id`` is neither a checkpoint id (12 hex digits) nor empty
            (the hooks that take no id).
    """
    if step_id:
        _checked(step_id)
    value: str | tuple[Command, ...] | None
    if isinstance(command.value, tuple):
        value = tuple(with_step_id(child, step_id) for child in command.value)
    elif isinstance(command.value, str):
        value = command.value.replace("@microstep_id", step_id)
    else:
        value = None
    return Command(command.key, value, command.text.replace("@microstep_id", step_id))


class RecipeHooksBackend:
    """Runs a recipe's checkpoint hooks through the build's command runner."""

    def __init__(
        self,
        hooks: Mapping[str, tuple[Command, ...]],
        runner: CommandRunner,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._hooks = hooks
        self._runner = runner
        self._warn = warn or log.warning

    def _run(
        self, hook: str, step_id: str = "", *, interactive: bool = True, shown: bool = True
    ) -> str:
        output: list[str] = []
        with (
            self._runner.capturing(None if shown else output.append),
            self._runner.checkpoint_hook(),
        ):
            for command in self._hooks.get(hook, ()):
                self._runner.execute(with_step_id(command, step_id), interactive=interactive)
        return "".join(output)

    def enabled(self) -> bool:
        """Run ``enabled?``; a missing hook means "always enabled"."""
        if "enabled?" not in self._hooks:
            return True
        try:
            self._run("enabled?", interactive=False, shown=False)
        except CommandFailedError:
            return False
        return True

    def list(self) -> frozenset[StepId]:
        """Run ``list`` and read one id per line of its output.

        A failing ``list`` means "no checkpoint yet" (the documentation's own example
        ``cat``s a file that the first build has not written), not a failed build.
        """
        try:
            text = self._run("list", interactive=False, shown=False)
        except CommandFailedError as err:
            log.info("checkpoint list failed, assuming none: %s", err)
            return frozenset()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        found = frozenset(StepId(line) for line in lines if _STEP_ID_RE.fullmatch(line))
        others = [line for line in lines if not _STEP_ID_RE.fullmatch(line)]
        if others:
            self._warn(
                f"Ignoring {len(others)} line(s) of the checkpoint 'list' output that are not "
                f"checkpoint ids (12 hex digits), e.g. {others[0][:80]!r}: check the mechanism's "
                "store"
            )
        return found

    def create(self, step_id: StepId) -> None:
        """Run ``create`` for ``step_id`` (its output is not shown, as upstream)."""
        self._run("create", step_id, shown=False)

    def restore(self, step_id: StepId) -> None:
        """Run ``apply`` for ``step_id`` (its output is shown)."""
        self._run("apply", step_id)

    def clear(self) -> None:
        """Run ``clear``."""
        self._run("clear")

    @property
    def can_delete(self) -> bool:
        """Whether the mechanism has a ``delete`` hook."""
        return "delete" in self._hooks

    def delete(self, step_id: StepId) -> None:
        """Run ``delete`` for ``step_id``.

        Raises:
            BuildError: the mechanism has no ``delete`` hook.
        """
        if not self.can_delete:
            raise BuildError(
                "This checkpoint mechanism cannot remove one checkpoint (it has no 'delete' "
                "hook); clear them all with 'kameleon build --clean'"
            )
        self._run("delete", step_id, shown=False)

    def size(self, step_id: StepId) -> int | None:
        """Run ``size`` for ``step_id`` and read the number it prints (None if unknown)."""
        if "size" not in self._hooks:
            return None
        try:
            text = self._run("size", step_id, interactive=False, shown=False)
        except CommandFailedError:
            return None
        words = text.split()
        return int(words[0]) if words and words[0].isdigit() else None

    @property
    def can_diff(self) -> bool:
        """Whether the mechanism has a ``tree`` hook."""
        return "tree" in self._hooks

    def tree(self, step_id: StepId) -> str:
        """Run ``tree`` for ``step_id``: the directory it prints (its last line).

        Raises:
            BuildError: the mechanism has no ``tree`` hook, or it printed no absolute path.
        """
        if not self.can_diff:
            raise BuildError(NO_TREE_HOOK)
        lines = self._run("tree", step_id, interactive=False, shown=False).splitlines()
        path = next((line for line in reversed(lines) if line.strip()), "")
        if not path.startswith("/"):
            raise BuildError(
                f"The checkpoint mechanism's 'tree' hook printed {path!r} for checkpoint "
                f"{step_id}: it must print the absolute path of a directory"
            )
        return path

    def changes(self, step_id: StepId) -> LayerChanges | None:
        """Run ``changes`` for ``step_id`` (None: no such hook, or it printed no layer).

        The hook prints ``layer TOKEN``, ``parent TOKEN`` and ``KIND DIRECTORY`` lines.
        """
        if "changes" not in self._hooks:
            return None
        text = self._run("changes", step_id, interactive=False, shown=False)
        fields = dict(line.strip().partition(" ")[::2] for line in text.splitlines())
        layer, parent = fields.pop("layer", ""), fields.pop("parent", "")
        kinds = [(k, v) for k, v in fields.items() if k == "overlay" and v.startswith("/")]
        if not layer or not parent or not kinds:
            log.info("checkpoint 'changes' of %s gave no layer: %r", step_id, text)
            return None
        return LayerChanges(layer, parent, *kinds[0])
