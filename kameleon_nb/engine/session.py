"""A recipe being written in a notebook: loaded once, re-resolved after each cell.

A :class:`Session` holds one recipe and one :class:`~kameleon_nb.engine.builder.Builder`
for the whole life of a notebook kernel, so the context shells (and the variables
their commands set) persist from cell to cell. A ``%%microstep`` cell defines a
microstep (:meth:`Session.run_cell`): the session records it in the recipe, resolves
the recipe again (ids change from that microstep on, as they would in the file), runs
it, and checkpoints it when checkpointing is on. Builds, checkpoint listing, restore
and delete go through the same builder, so the CLI and the notebook share one engine.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kameleon_nb.core import messages
from kameleon_nb.core.cache_options import CacheMode, CacheOptions
from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.loader import LoadedRecipe
from kameleon_nb.core.model import Command, Microstep, ResolvedRecipe, StepId
from kameleon_nb.core.placement import place_microstep
from kameleon_nb.core.plan import Action, BuildOptions, existing_rows, find_row, plan_microstep
from kameleon_nb.core.variables import lookup_in, substitute
from kameleon_nb.engine.builddir import write_build_recipe
from kameleon_nb.engine.builder import Builder, BuildResult
from kameleon_nb.engine.checkpoint_diff import CheckpointDiff, CheckpointRef, diff_checkpoints
from kameleon_nb.engine.checkpoints import CheckpointBackend
from kameleon_nb.engine.contexts import ShellFactory
from kameleon_nb.engine.events import BuildEvent, CheckpointCreated
from kameleon_nb.engine.privileges import check_privileges
from kameleon_nb.engine.recipes import load, resolve
from kameleon_nb.errors import BuildError, KameleonError, RecipeError

log = logging.getLogger(__name__)

__all__ = ["CellResult", "CheckpointInfo", "Session", "SessionChanged", "SessionListener"]


_START = ""  # the session's head before anything ran


def _out_of_line(previous: Microstep | None) -> str:
    if previous is None:
        return "not checkpointed (the tree is not at the start: %kameleon build -c builds anew)"
    where = previous.slug
    return (
        f"not checkpointed (the tree is not at {where}, the step before it: "
        f"%kameleon build -c --until {where} brings it there, or %kameleon restore {where} "
        "if it has a checkpoint)"
    )


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The session started or finished work (``busy``), or its checkpoints changed."""

    busy: bool
    checkpoints_changed: bool = False


SessionListener = Callable[[BuildEvent | SessionChanged], None]


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """One checkpoint as the checkpoint table shows it.

    Attributes:
        step_id: its id.
        slug: its microstep (from the recipe, or from its record if the recipe no
            longer has it).
        created: when it was created (seconds since the epoch), if recorded.
        size: its bytes on disk, if the mechanism can tell.
        valid: whether the recipe as it is now has a microstep with this id (a
            rebuild can restart from it).
        order: the position of that microstep in the recipe (None when not valid).
    """

    step_id: StepId
    slug: str
    created: float | None
    size: int | None
    valid: bool
    order: int | None


@dataclass(frozen=True, slots=True)
class CellResult:
    """What a ``%%microstep`` cell did (``replaced``: it changed a microstep already there).

    ``microstep`` is None for a cell whose microstep has no commands of its own (only
    hooks such as ``on_setup_init``): it is recorded in the recipe, nothing runs.
    """

    slug: str
    microstep: Microstep | None
    seconds: float
    checkpoint: StepId | None
    replaced: bool
    note: str = ""


class Session:
    """One recipe, its context shells and its checkpoints, across notebook cells."""

    def __init__(
        self,
        loaded: LoadedRecipe,
        *,
        cwd: str,
        cli_globals: dict[str, str] | None = None,
        build_path: str | None = None,
        checkpointing: bool = False,
        timeout: float | None = None,
        shells: ShellFactory | None = None,
        checkpoints: CheckpointBackend | None = None,
        isolate_mounts: bool = True,
    ) -> None:
        self.loaded = loaded
        self.cwd = cwd
        self.cli_globals = dict(cli_globals or {})
        self.build_path = build_path
        self.checkpointing = checkpointing
        self._uuid: tuple[str, str] | None = None
        self.recipe = self._resolve()
        uuid = self.recipe.global_vars.get("kameleon_uuid")
        short = self.recipe.global_vars.get("kameleon_short_uuid")
        if isinstance(uuid, str) and isinstance(short, str):
            self._uuid = (uuid, short)
        self._listeners: list[SessionListener] = []
        self._busy = False
        self._engine = {
            "timeout": timeout,
            "shells": shells,
            "checkpoints": checkpoints,
            "isolate_mounts": isolate_mounts,
        }
        self._builder: Builder | None = None
        self._recorded = False
        #: the microstep whose state the tree is in (its id), _START before anything
        #: ran, None when unknown (a failure, a cell run out of build order): a cell is
        #: checkpointed only when the tree is at the microstep before it, or its
        #: checkpoint would claim steps that never ran
        self._head: str | None = _START
        if os.path.isdir(self.recipe.kameleon_cwd) and os.listdir(self.recipe.kameleon_cwd):
            self._head = None  # a tree from an earlier session: its state is unknown
        self._ended = False
        self._cell_targets: dict[str, tuple[str, str, str]] = {}
        self._cell_ran_at: dict[str, float] = {}  # wall-clock time each cell last ran
        self._sizes: dict[str, int | None] = {}
        #: the microsteps this session defined, by (section, macrostep, name), in the
        #: order they were first defined, each with the ``origin`` its last definition
        #: gave (the magics keep the cell's text there: what ``%kameleon export`` writes)
        self.defined: dict[tuple[str, str, str], object] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str,
        *,
        text: str | None = None,
        cwd: str | None = None,
        cli_globals: dict[str, str] | None = None,
        **kwargs: object,
    ) -> Session:
        """A session on the recipe at ``path`` (or on ``text``, as if it lived there).

        Raises:
            KameleonError: the recipe cannot be loaded or resolved.
        """
        cwd = os.path.abspath(cwd or os.getcwd())
        loaded = load(path, cli_globals=cli_globals, cwd=cwd, text=text)
        return cls(loaded, cwd=cwd, cli_globals=cli_globals, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def scratch(
        cls, *, cwd: str | None = None, name: str = "notebook", **kwargs: object
    ) -> Session:
        """A session on a new, empty recipe (a notebook that loaded none)."""
        cwd = os.path.abspath(cwd or os.getcwd())
        loaded = LoadedRecipe.empty(os.path.join(cwd, f"{name}.yaml"), name)
        return cls(loaded, cwd=cwd, **kwargs)  # type: ignore[arg-type]

    def _resolve(self, cache_port: int | None = None) -> ResolvedRecipe:
        return resolve(
            self.loaded,
            cli_globals=self.cli_globals,
            build_path=self.build_path,
            checkpointing=self.checkpointing,
            persistent_cache=cache_port is not None,
            cwd=self.cwd,
            uuid=self._uuid,
            cache_port=cache_port,
        )

    @property
    def builder(self) -> Builder:
        """The session's builder (its context shells start on their first command).

        Raises:
            BuildError: the session has ended (another recipe was loaded).
        """
        if self._ended:
            raise BuildError(
                f"This session of recipe '{self.recipe.name}' has ended (another recipe was "
                "loaded, or the extension unloaded): use the current one"
            )
        if self._builder is None:
            check_privileges(self.recipe, checkpointing=self.checkpointing)
            self._builder = Builder(
                self.recipe,
                on_event=self._dispatch,
                timeout=self._engine["timeout"],  # type: ignore[arg-type]
                shells=self._engine["shells"],  # type: ignore[arg-type]
                checkpoints=self._engine["checkpoints"],  # type: ignore[arg-type]
                isolate_mounts=bool(self._engine["isolate_mounts"]),
            )
            if self.checkpointing and self._builder.has_mechanism:
                # as a build would: "list" also prepares the mechanism (overlay mounts the
                # rootfs in the new build namespace), so single cells see the tree
                self._builder.existing_checkpoints()
        return self._builder

    def close(self) -> None:
        """Close every context shell (and the build's mount namespace).

        The session goes on: shells start again on the next command, without the
        variables commands had set, so the tree's state is no longer known.
        """
        if self._builder is not None:
            self._builder.close()
            self._builder = None
            self._head = None

    def end(self) -> None:
        """Close the shells for good: the session refuses any later work."""
        self.close()
        self._ended = True

    def set_timeout(self, timeout: float | None) -> None:
        """Interrupt any later command that runs longer than ``timeout`` seconds."""
        self._engine["timeout"] = timeout
        if self._builder is not None:
            self._builder.runner.set_timeout(timeout)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ events
    def subscribe(self, listener: SessionListener) -> Callable[[], None]:
        """Call ``listener`` with every build event and state change; returns "unsubscribe"."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _dispatch(self, event: BuildEvent | SessionChanged) -> None:
        if isinstance(event, CheckpointCreated):
            self._sizes.pop(event.step_id, None)  # made again: its size may differ
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken display must not break the build
                log.exception("a session listener failed on %s", type(event).__name__)

    @property
    def busy(self) -> bool:
        """Whether a cell, a build or a checkpoint action is running."""
        return self._busy

    @contextlib.contextmanager
    def _working(self, *, changes_checkpoints: bool = False) -> Iterator[None]:
        if self._busy:
            raise BuildError("The session is busy: wait for the running step to finish")
        self._busy = True
        try:
            self._dispatch(SessionChanged(busy=True))
            yield
        finally:
            self._busy = False
            self._dispatch(SessionChanged(busy=False, checkpoints_changed=changes_checkpoints))

    def _set_recipe(self, recipe: ResolvedRecipe) -> None:
        self.recipe = recipe
        if self._builder is not None:
            self._builder.update_recipe(recipe)

    # ------------------------------------------------------------------ cells
    def place(
        self, name: str, section: str | None = None, macrostep: str | None = None
    ) -> tuple[str, str]:
        """The ``(section, macrostep)`` where microstep ``name`` goes in the recipe now.

        ``None`` means "not said": the macrostep that has ``name`` already, else
        :data:`~kameleon_nb.core.placement.DEFAULT_SECTION`/``DEFAULT_MACROSTEP``.

        Raises:
            RecipeError: the name is in several macrosteps ``section``/``macrostep``
                do not tell apart.
        """
        known = ((m.section, m.macrostep, m.name) for m in self.recipe.microsteps())
        return place_microstep(known, name, section, macrostep)

    def define(
        self,
        section: str,
        macrostep: str,
        name: str,
        items: list[object],
        *,
        source: str = "cell",
        origin: object = None,
    ) -> Microstep | None:
        """Add or replace microstep ``section/macrostep/name`` (its Kameleon ``items``).

        Nothing runs. ``origin`` is kept in :attr:`defined` for the caller. Returns the
        microstep, or None when it has no commands of its own (only hooks). On a recipe
        error the recipe is left as it was.
        """
        before = copy.deepcopy(self.loaded.edits)
        self.loaded.set_microstep(section, macrostep, name, items)
        try:
            recipe = self._resolve()
        except KameleonError as err:
            self.loaded.edits = before
            raise RecipeError(f"{source}: {err}") from err
        self._set_recipe(recipe)
        self.defined[(section, macrostep, name)] = origin
        try:
            return self.microstep(section, macrostep, name)
        except RecipeError:
            return None  # the resolver dropped it: no commands, only hooks

    def microstep(self, section: str, macrostep: str, name: str) -> Microstep:
        """A microstep of the current recipe.

        Raises:
            RecipeError: there is none (for example an empty microstep, which the
                resolver drops).
        """
        for microstep in self.recipe.microsteps():
            if (microstep.section, microstep.macrostep, microstep.name) == (
                section,
                macrostep,
                name,
            ):
                return microstep
        raise RecipeError(f"The recipe has no microstep {section}/{macrostep}/{name}")

    def forget(self, section: str, macrostep: str, name: str) -> None:
        """Undo a definition: a microstep it added goes, one it replaced is the file's."""
        bodies = self.loaded.edits.get((section, macrostep), {})
        if bodies.pop(name, None) is None:
            return
        if not bodies:
            del self.loaded.edits[(section, macrostep)]
        self.defined.pop((section, macrostep, name), None)
        self._set_recipe(self._resolve())

    def forget_cells(self, present: set[str], saved_at: float) -> list[str]:
        """Forget the microsteps of cells a saved notebook no longer has; return their slugs.

        ``present`` are the cell ids of the notebook as saved at ``saved_at`` (seconds
        since the epoch). A cell that ran after that save may simply not be saved yet: it
        is kept.
        """
        dropped: list[str] = []
        for cell_id, target in list(self._cell_targets.items()):
            if cell_id in present or self._cell_ran_at.get(cell_id, 0.0) >= saved_at:
                continue
            del self._cell_targets[cell_id]
            self._cell_ran_at.pop(cell_id, None)
            if target in self.defined:
                self.forget(*target)
                dropped.append("/".join(target))
        return dropped

    def forget_microstep(self, wanted: str) -> str:
        """Forget a microstep this session defined, by name or ``section/macrostep/name``.

        Raises:
            RecipeError: the session defined no such microstep (or several).
        """
        matches = [t for t in self.defined if wanted in (t[2], "/".join(t))]
        if len(matches) != 1:
            defined = ", ".join("/".join(t) for t in self.defined) or "none"
            how = "several cells define" if matches else "no cell of this session defined"
            raise RecipeError(
                f"Cannot forget '{wanted}': {how} it (cells' microsteps: {defined}); "
                "name it as section/macrostep/name"
            )
        target = matches[0]
        self.forget(*target)
        for cell_id, cell_target in list(self._cell_targets.items()):
            if cell_target == target:
                del self._cell_targets[cell_id]
                self._cell_ran_at.pop(cell_id, None)
        return "/".join(target)

    def run_microstep(
        self,
        name: str,
        items: list[object],
        *,
        section: str | None = None,
        macrostep: str | None = None,
        source: str = "cell",
        cell_id: str | None = None,
        origin: object = None,
    ) -> CellResult:
        """Define microstep ``name``, run it now, and checkpoint it if checkpointing is on.

        It goes where :meth:`place` says. ``cell_id`` identifies the notebook cell:
        when the same cell now defines another microstep (renamed, or moved to another
        macrostep), its earlier one is forgotten.

        Raises:
            CommandFailedError: a command failed (the microstep stays in the recipe).
            KameleonError: the items or the recipe are invalid.
        """
        target = (*self.place(name, section, macrostep), name)
        earlier = self._cell_targets.get(cell_id) if cell_id else None
        if earlier is not None and earlier != target:
            self.forget(*earlier)
            target = (*self.place(name, section, macrostep), name)
        if cell_id:
            self._cell_targets[cell_id] = target
            self._cell_ran_at[cell_id] = time.time()
        before = next(
            (m for m in self.recipe.microsteps() if (m.section, m.macrostep, m.name) == target),
            None,
        )
        microstep = self.define(*target, items, source=source, origin=origin)
        changed = before is not None and (
            microstep is None
            or before.commands != microstep.commands
            or before.on_checkpoint != microstep.on_checkpoint
        )
        if microstep is None:
            return CellResult("/".join(target), None, 0.0, None, changed)
        previous = self._previous(microstep)
        in_line = self._head == (previous.step_id if previous else _START)
        started = time.monotonic()
        with self._working(changes_checkpoints=self.checkpointing):
            builder = self.builder
            if not self._recorded:  # keeps the uuid for later sessions and the CLI
                write_build_recipe(self.recipe)
                self._recorded = True
            self._head = None
            builder.run_microstep(microstep)
            seconds = time.monotonic() - started
            self._head = microstep.step_id if in_line else None
            step = plan_microstep(microstep, self.checkpointing)
            wanted = step.action is Action.RUN and step.checkpoint_reason is None
            wanted = wanted and self.checkpointing and builder.has_mechanism
            note = _out_of_line(previous) if wanted and not in_line else ""
            checkpointed = wanted and in_line and builder.create_checkpoint(microstep)
            created = microstep.step_id if checkpointed else None
        return CellResult(microstep.slug, microstep, seconds, created, changed, note)

    def _previous(self, microstep: Microstep) -> Microstep | None:
        """The microstep before ``microstep`` in build order, if any."""
        previous = None
        for candidate in self.recipe.microsteps():
            if candidate.order == microstep.order:
                return previous
            previous = candidate
        return previous

    def run_command(self, context: ContextName, command: str) -> None:
        """Run one ad hoc command in a context (``%kameleon shell``); not recorded.

        ``$${name}`` references to the recipe's globals are expanded, as in a step.

        Raises:
            CommandFailedError: it failed.
            RecipeError: it names an undefined variable.
        """
        known = lookup_in(self.recipe.global_vars)

        def lookup(name: str) -> str:
            value = known(name)
            if value is None:
                raise RecipeError(f"Undefined variable '$${{{name}}}' in '{command}'")
            return value

        command = substitute(command, lookup, source="%kameleon shell")
        key = f"exec_{context.value}"
        with self._working():
            self.builder.runner.execute(
                Command(key, command, f"{key}: {command}"), interactive=False
            )

    def set_globals(self, values: dict[str, str]) -> None:
        """Override global variables (``-g key:value``) from now on, and resolve again.

        Raises:
            KameleonError: the recipe no longer resolves (the overrides are dropped).
        """
        before = dict(self.cli_globals)
        self.cli_globals.update(values)
        try:
            recipe = self._resolve()
        except KameleonError:
            self.cli_globals = before
            raise
        self._set_recipe(recipe)

    # ------------------------------------------------------------------ builds
    def build(self, options: BuildOptions, cache: CacheOptions | None = None) -> BuildResult:
        """Build the whole recipe as it is now (``%kameleon build``).

        A build with checkpointing turns it on for the session's later cells; a build
        without leaves the session's setting as it was. With ``cache`` (``-C``) the
        build records its downloads and packs the cache archive; later cells run
        without the cache proxy again.

        Raises:
            KameleonError: the build failed (after its cleanup).
        """
        if cache is not None and cache.mode is CacheMode.REPLAY:
            raise BuildError(
                "A build from a cache archive (--from-cache, --proxy-offline) runs offline in "
                "a build of its own: run 'kameleon build --from-cache ARCHIVE' in a terminal"
            )
        kept = self.checkpointing or options.checkpointing
        if options.checkpointing != self.checkpointing:
            self.checkpointing = options.checkpointing
            self._set_recipe(self._resolve())
        recording = cache is not None and cache.mode is CacheMode.RECORD
        try:
            with self._working(changes_checkpoints=options.checkpointing):
                builder = self.builder
                if recording:
                    assert cache is not None
                    self._attach_cache(builder, cache)
                if builder.has_mechanism and options.checkpointing:
                    builder.existing_checkpoints(refresh=True)
                self._head = None
                result = builder.build(options)
                self._head = result.head or _START
                return result
        finally:
            if recording and self._builder is not None:
                self.recipe = self._resolve()
                self._builder.attach_cache(None, self.recipe)
            if self.checkpointing != kept:
                self.checkpointing = kept
                self._set_recipe(self._resolve())

    def _attach_cache(self, builder: Builder, cache: CacheOptions) -> None:
        from kameleon_nb.engine.cache.build_cache import (  # noqa: PLC0415 - only with -C
            BuildCache,
            open_cache_source,
        )

        build_path = os.path.abspath(os.path.join(self.cwd, self.build_path or "build"))
        source = open_cache_source(cache, build_path)
        self.recipe = self._resolve(cache_port=source.port)
        builder.attach_cache(BuildCache(source, self.recipe), self.recipe)

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self, *, sizes: bool = True) -> list[CheckpointInfo]:
        """Every checkpoint the mechanism lists: valid ones in recipe order, then stale ones.

        ``sizes=False`` skips the mechanism's ``size`` hook (one command per checkpoint).
        """
        builder = self.builder
        if not builder.has_mechanism:
            return []
        with self._working():
            ids = builder.existing_checkpoints(refresh=True)
            rows: list[CheckpointInfo] = []
            current = {m.step_id: m for m in existing_rows(self.recipe, ids)}
            for step_id in ids:
                record = builder.records.get(step_id)
                microstep = current.get(step_id)
                rows.append(
                    CheckpointInfo(
                        step_id=step_id,
                        slug=microstep.slug if microstep else (record.slug if record else "?"),
                        created=record.created if record and record.created else None,
                        size=self._size(builder, step_id) if sizes else None,
                        valid=microstep is not None,
                        order=microstep.order if microstep else None,
                    )
                )
        # valid ones in recipe order, then stale ones from the oldest
        rows.sort(key=lambda r: (not r.valid, r.order or 0, r.created or 0.0, r.step_id))
        return rows

    def _size(self, builder: Builder, step_id: StepId) -> int | None:
        """A checkpoint's size, from the ``size`` hook once, then from memory."""
        if step_id not in self._sizes:
            self._sizes[step_id] = builder.checkpoints.size(step_id)
        return self._sizes[step_id]

    @property
    def head(self) -> str | None:
        """The id of the checkpoint the tree is at now (None: unknown, or before any)."""
        return self._head or None

    @property
    def can_delete(self) -> bool:
        """Whether the recipe's mechanism can remove one checkpoint."""
        builder = self.builder
        return builder.has_mechanism and builder.checkpoints.can_delete

    def restore(self, wanted: str) -> CheckpointInfo:
        """Restore a checkpoint (id, slug or ``last``): files and context variables.

        Raises:
            BuildError: no checkpoint mechanism, or no such checkpoint.
        """
        builder = self.builder
        if not builder.has_mechanism:
            raise BuildError(messages.CHECKPOINT_UNAVAILABLE)
        target = self._find(self.checkpoints(sizes=False), wanted)
        with self._working():
            self._head = None
            builder.restore_checkpoint(target.step_id, target.slug)
            self._head = target.step_id
        return target

    def delete(self, wanted: str) -> CheckpointInfo:
        """Remove one checkpoint (id or slug).

        Raises:
            BuildError: no such checkpoint, or the mechanism cannot delete one.
        """
        target = self._find(self.checkpoints(sizes=False), wanted)
        with self._working(changes_checkpoints=True):
            self.builder.delete_checkpoint(target.step_id)
            self._sizes.pop(target.step_id, None)
        return target

    def diff(self, old: str, new: str | None = None) -> CheckpointDiff:
        """What changed between two checkpoints (``%kameleon diff``, ``kameleon diff``).

        ``old`` and ``new`` are ids (valid or stale), slugs or ``last``, as for
        :meth:`restore`. Without ``new``: what the step of checkpoint ``old`` changed,
        from the closest checkpoint before it in the recipe (the empty tree if none).

        Raises:
            BuildError: no checkpoint mechanism, one that cannot show trees, no such
                checkpoint, or ``old`` alone is stale (it has no step before it).
        """
        if not self.builder.has_mechanism:
            raise BuildError(messages.CHECKPOINT_UNAVAILABLE)
        rows = self.checkpoints(sizes=False)
        first = self._find(rows, old)
        if new is not None:
            base: CheckpointInfo | None = first
            target = self._find(rows, new)
        elif first.valid:
            before = [r for r in rows if r.valid and (r.order or 0) < (first.order or 0)]
            base, target = (before[-1] if before else None), first
        else:
            raise BuildError(
                f"Checkpoint {first.step_id} ({first.slug}) is stale: the recipe has no step "
                f"before it; compare it with another checkpoint: diff ID {first.step_id}"
            )
        with self._working():
            return diff_checkpoints(
                self.builder,
                CheckpointRef(base.step_id, base.slug) if base is not None else None,
                CheckpointRef(target.step_id, target.slug),
            )

    @staticmethod
    def _find(rows: list[CheckpointInfo], wanted: str) -> CheckpointInfo:
        """A checkpoint by id or slug (valid ones, last match), stale id, or ``last``."""
        valid = [r for r in rows if r.valid]
        if wanted == "last":
            found = valid[-1] if valid else None
        else:
            stale = [r for r in rows if not r.valid]
            found = find_row(valid, wanted, last=True, stale=stale)
        if found is None:
            raise BuildError(messages.unknown_checkpoint(wanted))
        return found
