"""The Builder: carries out a plan in the context shells; the façade every front end uses.

The builder never prints. It emits events (see :mod:`kameleon_nb.engine.events`)
and asks an injected failure handler what to do when a command fails, so the
console, the notebook and the tests drive the very same code.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from kameleon_nb.core import messages
from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.core.model import CheckpointPolicy, Microstep, ResolvedRecipe, Section, StepId
from kameleon_nb.core.plan import Action, BuildOptions, BuildPlan, PlannedStep, plan_build
from kameleon_nb.core.retention import KEEP_ALL, KEEP_STALE_UNSUPPORTED, removed_stale, retain
from kameleon_nb.engine.builddir import (
    CheckpointRecords,
    restore_state_files,
    state_files,
    write_build_recipe,
)
from kameleon_nb.engine.checkpoints import CheckpointBackend
from kameleon_nb.engine.checkpoints.recipe_hooks import RecipeHooksBackend
from kameleon_nb.engine.commands import Choice, CommandFailedError, CommandRunner, FailureHandler
from kameleon_nb.engine.contexts import Contexts, ShellFactory
from kameleon_nb.engine.events import (
    BuildFinished,
    BuildStarted,
    CheckpointCreated,
    CheckpointRestored,
    EventSink,
    Level,
    MacrostepFinished,
    Message,
    MicrostepFinished,
    MicrostepStarted,
)
from kameleon_nb.engine.lock import BuildDirLock
from kameleon_nb.engine.namespace import BuildNamespace, PublishError
from kameleon_nb.engine.privileges import check_privileges
from kameleon_nb.errors import AbortError, BuildError, KameleonError

if TYPE_CHECKING:
    from kameleon_nb.engine.cache.build_cache import BuildCache

__all__ = ["BuildResult", "Builder", "abort_on_failure"]

log = logging.getLogger(__name__)


def abort_on_failure(_failure: object, _can_retry: bool) -> Choice | None:
    """The ``--script`` failure handler: never ask, the failure ends the build."""
    return None


@dataclass(slots=True)
class BuildResult:
    """What a build did."""

    ran: list[str] = field(default_factory=list)
    checkpoint_ahead: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    restored: str | None = None
    removed_stale: list[StepId] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)  # what the persistent cache did
    stopped_after: str | None = None  # --until: the step the build stopped after
    head: StepId | None = None  # the microstep the tree is at when the build ends
    seconds: float = 0.0


def _default_shell_factory() -> ShellFactory:
    from kameleon_nb.engine.shell import ContextShell  # noqa: PLC0415 - real builds only

    return ContextShell


class Builder:
    """Builds one resolved recipe in its build directory.

    Use it as a context manager so that every context shell is closed::

        with Builder(recipe, on_event=sink, on_failure=ask) as builder:
            builder.build(BuildOptions(checkpointing=True))
    """

    def __init__(
        self,
        recipe: ResolvedRecipe,
        *,
        on_event: EventSink,
        on_failure: FailureHandler = abort_on_failure,
        shells: ShellFactory | None = None,
        checkpoints: CheckpointBackend | None = None,
        timeout: float | None = None,
        open_shell: Callable[[ContextName], None] | None = None,
        isolate_mounts: bool = True,
        cache: BuildCache | None = None,
    ) -> None:
        self.recipe = recipe
        self._emit = on_event
        self.cache = cache
        if cache is not None:
            cache.tell(self._say)
        self.lock = BuildDirLock(recipe.kameleon_cwd)
        self.lock.acquire()
        try:
            self.contexts = Contexts(
                self._context_specs(recipe), shells or _default_shell_factory(), on_event
            )
            self.namespace = BuildNamespace(offline=cache is not None and cache.offline)
            if isolate_mounts and shells is None:
                self.namespace.start()
                self.contexts.set_launcher(self.namespace.launcher())
            self.records = CheckpointRecords(recipe.kameleon_cwd)
            self.runner = CommandRunner(
                self.contexts, on_event, on_failure, timeout=timeout, open_shell=open_shell
            )
            self.runner.pipe_recorder = cache
        except BaseException:
            self.lock.release()
            raise
        self._checkpoints = checkpoints
        self._own_checkpoints = checkpoints is None
        self._existing: frozenset[StepId] | None = None

    def _say(self, text: str) -> None:
        self._emit(Message(text))

    def attach_cache(self, cache: BuildCache | None, recipe: ResolvedRecipe) -> None:
        """Record the next builds into ``cache`` (None: no more), with ``recipe``.

        The recipe's ``proxy_*`` globals name the cache's proxy. Contexts restart when
        next used, with their variables. A replay needs a builder made with its cache
        (its network namespace is offline).
        """
        if cache is not None and cache.offline and not self.namespace.offline:
            raise BuildError("A build from a cache archive needs a builder of its own")
        self.cache = cache
        if cache is not None:
            cache.tell(self._say)
        self.runner.pipe_recorder = cache
        self.update_recipe(recipe)

    def _context_specs(self, recipe: ResolvedRecipe) -> dict[ContextName, ContextSpec]:
        """The recipe's contexts, trusting the cache's CA when there is a cache."""
        if self.cache is None:
            return dict(recipe.contexts)
        ca = str(self.cache.ca_certificate)
        return {n: dataclasses.replace(s, ca_file=ca) for n, s in recipe.contexts.items()}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Builder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every context shell, end the build's mount namespace, release the lock."""
        try:
            self.contexts.close()
            self.namespace.close()
        finally:
            self.lock.release()

    def update_recipe(self, recipe: ResolvedRecipe) -> None:
        """Carry on with a re-resolved recipe (a notebook cell changed a microstep).

        Running contexts keep their shells and variables unless their settings changed
        (then they restart on their next command, with their variables).
        """
        if self._own_checkpoints and recipe.checkpoint != self.recipe.checkpoint:
            self._checkpoints = None
            self._existing = None
        if recipe.kameleon_cwd != self.recipe.kameleon_cwd:
            lock = BuildDirLock(recipe.kameleon_cwd)
            lock.acquire()
            self.lock.release()
            self.lock = lock
            self.records = CheckpointRecords(recipe.kameleon_cwd)
            self._existing = None
        self.recipe = recipe
        self.contexts.update_specs(self._context_specs(recipe))

    @property
    def has_mechanism(self) -> bool:
        """Whether the recipe (or the injected backend) provides checkpoints."""
        return self._checkpoints is not None or bool(self.recipe.checkpoint)

    @property
    def checkpoints(self) -> CheckpointBackend:
        """The checkpoint mechanism.

        Raises:
            BuildError: the recipe has no ``checkpoint`` key.
        """
        if self._checkpoints is None:
            if not self.recipe.checkpoint:
                raise BuildError(messages.CHECKPOINT_UNAVAILABLE)
            self._checkpoints = RecipeHooksBackend(
                self.recipe.checkpoint,
                self.runner,
                warn=lambda text: self._emit(Message(f"Warning: {text}", Level.WARNING)),
            )
        return self._checkpoints

    # ------------------------------------------------------------------ queries
    def existing_checkpoints(self, *, refresh: bool = False) -> frozenset[StepId]:
        """Ids the mechanism lists (``list`` runs once, then is cached)."""
        if self._existing is None or refresh:
            self._existing = self.checkpoints.list()
        return self._existing

    def plan(self, options: BuildOptions) -> BuildPlan:
        """The plan of a build with these options (lists checkpoints when on)."""
        existing = self.existing_checkpoints() if options.checkpointing else frozenset()
        return plan_build(self.recipe, existing, options)

    # ------------------------------------------------------------------ build
    def build(self, options: BuildOptions) -> BuildResult:
        """Plan and run the whole recipe, as ``kameleon build`` does."""
        started = time.monotonic()
        os.makedirs(self.recipe.kameleon_cwd, exist_ok=True)
        self._emit(
            BuildStarted(
                self.recipe.path,
                self.recipe.kameleon_cwd,
                total=sum(1 for _ in self.recipe.microsteps()),
            )
        )
        try:
            if options.checkpointing and not self.has_mechanism:
                raise BuildError(messages.CHECKPOINT_UNAVAILABLE)
            check_privileges(self.recipe, checkpointing=options.checkpointing)
            plan = self.plan(options)
            if self.cache is not None:
                self.cache.start(self.namespace.launcher())
            result = self.run(plan)
        except BaseException as err:
            if isinstance(err, CommandFailedError):
                self._emit(err.failure)
            if not isinstance(err, KeyboardInterrupt):
                self.publish_rootfs()
            cause = self._abandon_cache()
            self._emit(BuildFinished(self.recipe.path, time.monotonic() - started, success=False))
            if cause is not None and not isinstance(err, KeyboardInterrupt):
                raise cause from err  # a replay's missing request is why the command failed
            raise
        if options.checkpointing:
            result.removed_stale = self.retire_stale(options)
        self.publish_rootfs()
        result.cache = self._finish_cache()
        result.seconds = time.monotonic() - started
        self._emit(BuildFinished(self.recipe.path, result.seconds, success=True))
        return result

    def run(self, plan: BuildPlan) -> BuildResult:
        """Carry out a plan: restore its checkpoint, then run section after section."""
        result = BuildResult()
        if plan.restore is not None:
            self.restore(plan.restore)
            result.restored = plan.restore.step_id
        write_build_recipe(self.recipe)
        finished: list[str] = []
        try:
            for section in self.recipe.sections:
                self._run_section(section, plan, result)
                finished.append(section.name)
        except _StopHere:
            assert plan.stop_after is not None
            result.stopped_after = plan.stop_after.slug
            result.head = plan.stop_after.step_id
            self._emit(Message(f"Stopped after step {plan.stop_after.slug} (--until)"))
        except BaseException as err:
            self._cleanup_after_failure(err, finished, plan.options)
            raise
        else:
            result.head = plan.steps[-1].microstep.step_id if plan.steps else None
        return result

    def _run_section(self, section: Section, plan: BuildPlan, result: BuildResult) -> None:
        total = len(plan.steps)
        for macrostep in section.macrosteps:
            started = time.monotonic()
            checkpoint_seconds = 0.0
            checkpointed = False
            for microstep in macrostep.all_microsteps():
                step = plan.step_for(microstep)
                self._emit(
                    MicrostepStarted(
                        microstep.order,
                        microstep.slug,
                        microstep.step_id,
                        step.reason,
                        total,
                        f"{section.name}/{macrostep.name}/{microstep.name}",
                    )
                )
                micro_started = time.monotonic()
                if step.action is Action.RUN:
                    self.runner.run_microstep(microstep.commands, microstep.slug)
                    result.ran.append(microstep.slug)
                    if step.checkpointing:
                        spent, made = self._maybe_checkpoint(step, plan.options, checkpointed)
                        checkpoint_seconds += spent
                        checkpointed = checkpointed or made
                        if made:
                            result.created.append(microstep.step_id)
                elif step.action is Action.CHECKPOINT_AHEAD:
                    result.checkpoint_ahead.append(microstep.slug)
                else:
                    result.skipped.append(microstep.slug)
                self._emit(
                    MicrostepFinished(
                        microstep.order,
                        microstep.slug,
                        microstep.step_id,
                        step.action is Action.RUN,
                        time.monotonic() - micro_started,
                    )
                )
                if plan.stop_after is not None and microstep.order == plan.stop_after.order:
                    raise _StopHere
            elapsed = time.monotonic() - started - checkpoint_seconds
            self._emit(MacrostepFinished(macrostep.name, max(0.0, elapsed)))

    def _maybe_checkpoint(
        self, step: PlannedStep, options: BuildOptions, already: bool
    ) -> tuple[float, bool]:
        started = time.monotonic()
        if not self.checkpoints.enabled():
            self._emit(Message(messages.no_checkpoint(messages.DISABLED_IN_BACKEND), Level.MSG))
        elif options.first_only and already:
            self._emit(Message(messages.no_checkpoint(messages.ALREADY_ONCE), Level.MSG))
        elif step.checkpoint_reason is not None:
            self._emit(Message(messages.no_checkpoint(step.checkpoint_reason), Level.MSG))
        else:
            self.create_checkpoint(step.microstep, check_enabled=False)
            return time.monotonic() - started, True
        return 0.0, False

    def create_checkpoint(self, microstep: Microstep, *, check_enabled: bool = True) -> bool:
        """Checkpoint the current state as ``microstep``'s; False if the mechanism says no."""
        if check_enabled and not self.checkpoints.enabled():
            self._emit(Message(messages.no_checkpoint(messages.DISABLED_IN_BACKEND), Level.MSG))
            return False
        self._emit(CheckpointCreated(microstep.slug, microstep.step_id))
        self.records.save(
            microstep.step_id,
            self.contexts.variables(),
            microstep.slug,
            files=state_files(self.recipe.kameleon_cwd),
        )
        self.checkpoints.create(microstep.step_id)
        if self._existing is not None:
            self._existing = self._existing | {microstep.step_id}
        return True

    def restore(self, microstep: Microstep) -> None:
        """Bring the build back to a checkpoint: files (``apply``) and shell variables."""
        self.restore_checkpoint(microstep.step_id, microstep.slug)

    def restore_checkpoint(self, step_id: StepId, slug: str) -> None:
        """Bring the build back to checkpoint ``step_id``, even one the recipe no longer has.

        The mechanism's ``apply`` restores the files; kameleon_nb gives the contexts
        their variables back, and the build directory its marker files (see
        :func:`~kameleon_nb.engine.builddir.state_files`).
        """
        self._emit(CheckpointRestored(slug, step_id))
        self.checkpoints.restore(step_id)
        record = self.records.get(step_id)
        if record is not None and record.files is not None:
            restore_state_files(self.recipe.kameleon_cwd, record.files)
        self.contexts.restore(record.variables if record is not None else {})

    def delete_checkpoint(self, step_id: StepId) -> None:
        """Remove one checkpoint and its record."""
        self.checkpoints.delete(step_id)
        self.records.remove(step_id)
        if self._existing is not None:
            self._existing = self._existing - {step_id}

    def _finish_cache(self) -> list[str]:
        """After a success: stop the cache proxy, pack the archive; say what it did.

        Its errors fail the build.
        """
        if self.cache is None:
            return []
        try:
            return self.cache.finish(success=True)
        except KameleonError:
            self._emit(BuildFinished(self.recipe.path, 0.0, success=False))
            raise

    def _abandon_cache(self) -> KameleonError | None:
        """After a failure: stop the cache proxy and return its error, if any.

        A replay's request that the archive lacks explains the failure better than the
        command that failed on it.
        """
        if self.cache is None:
            return None
        try:
            self.cache.finish(success=False)
        except KameleonError as err:
            return err
        return None

    def retire_stale(self, options: BuildOptions) -> list[StepId]:
        """Record a successful checkpointed build; remove stale checkpoints it outlived.

        See :mod:`kameleon_nb.core.retention`. A mechanism without a ``delete`` hook
        keeps everything (said once when ``--keep-stale`` was given). A checkpoint
        that cannot be removed is reported and kept; the build still succeeded.
        """
        # the build's own creates kept the listing current: no second ``list`` hook run
        existing = self.existing_checkpoints()
        generation, used, head = self.records.usage()
        valid = [m.step_id for m in self.recipe.microsteps()]
        version = valid[-1] if valid else None
        new = version != head
        outcome = retain(existing, valid, used, generation, options.keep_stale, new_version=new)
        remove = list(outcome.remove)
        if remove and not self.checkpoints.can_delete:
            if options.keep_stale_given:
                self._emit(Message(KEEP_STALE_UNSUPPORTED, Level.WARNING))
            remove = []
            outcome = retain(existing, valid, used, generation, KEEP_ALL, new_version=new)
        removed: list[StepId] = []
        for step_id in remove:
            try:
                self.delete_checkpoint(step_id)
            except KameleonError as err:
                self._emit(Message(f"Warning: {err}", Level.WARNING))
                continue
            removed.append(step_id)
        kept = dict(outcome.used)
        kept.update({i: used.get(i, generation) for i in remove if i not in removed})
        self.records.save_usage(outcome.generation, kept, version)
        if removed:
            self._emit(Message(removed_stale(len(removed))))
        return removed

    def publish_rootfs(self) -> bool:
        """Leave ``$${rootfs}`` on disk when the build's namespace is all that sees it.

        A mechanism such as ``overlay`` mounts the rootfs inside the build's private
        mount namespace; without a copy the user would find an empty directory where
        upstream's chroot backend leaves the appliance's tree. Returns whether a tree
        was copied (a failure is reported as a warning, never as a build failure).
        """
        rootfs = self.recipe.global_vars.get("rootfs")
        if not isinstance(rootfs, str) or not self.namespace.active:
            return False
        try:
            copied = self.namespace.publish(rootfs)
        except PublishError as err:
            self._emit(Message(f"Warning: {err}", Level.WARNING))
            return False
        if copied:
            self._emit(Message(f"Copied the build's {rootfs} to the host", Level.VERBOSE))
        return copied

    # ------------------------------------------------------------------ clean
    def _clean_sections(self, sections: list[Section], checkpointing: bool) -> None:
        for section in sections:
            self._emit(Message(f"Cleaning {section.name} section"))
            clean = section.macrosteps[-1]
            for microstep in clean.all_microsteps():
                if not _runs_when_cleaning(microstep, checkpointing):
                    continue
                try:
                    self.runner.run_microstep(microstep.commands, microstep.slug)
                except KameleonError as err:
                    self._emit(Message(f"An error occurred while executing: {err}", Level.WARNING))

    def _cleanup_after_failure(
        self, err: BaseException, finished: list[str], options: BuildOptions
    ) -> None:
        if isinstance(err, AbortError):
            header = "Aborted..."
        elif isinstance(err, KeyboardInterrupt):
            header = "Interrupted..."
        else:
            header = "fatal error..."
        self._emit(Message(header, Level.ERROR))
        self._emit(Message("Waiting for cleanup before exiting...", Level.ERROR))
        unfinished = [s for s in self.recipe.sections if s.name not in finished]
        try:
            self._clean_sections(unfinished, options.checkpointing)
        except BaseException:
            log.exception("cleanup after failure failed")

    def clean(self, options: BuildOptions) -> None:
        """``kameleon build --clean``: clear checkpoints, run every clean microstep."""
        os.makedirs(self.recipe.kameleon_cwd, exist_ok=True)
        self._emit(BuildStarted(self.recipe.path, self.recipe.kameleon_cwd, total=0, clean=True))
        for name in ContextName:
            try:
                self.contexts.shell(name)
            except KameleonError as err:
                self._emit(Message(str(err), Level.WARNING))
        if self.has_mechanism:
            self._emit(Message("Removing all checkpoints"))
            try:
                self.checkpoints.clear()
            except KameleonError as err:
                self._emit(Message(f"An error occurred while executing: {err}", Level.WARNING))
            self.records.clear()
            self._existing = None
        self._clean_sections(list(self.recipe.sections), options.checkpointing)

    # ------------------------------------------------------------------ notebook
    def run_microstep(self, microstep: Microstep) -> None:
        """Run one microstep now, in the persistent contexts (``%%microstep``)."""
        self.runner.run_microstep(microstep.commands, microstep.slug)


class _StopHere(Exception):
    """The build reached its ``--until`` step."""


def _runs_when_cleaning(microstep: Microstep, checkpointing: bool) -> bool:
    policy = microstep.on_checkpoint
    if checkpointing and policy is CheckpointPolicy.SKIP:
        return False
    return checkpointing or policy is not CheckpointPolicy.ONLY
