"""The recipe model: frozen dataclasses and enums, no behaviour that touches the world."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NewType

from kameleon_nb.core.contexts import ContextName, ContextSpec

__all__ = [
    "SECTIONS",
    "CheckpointPolicy",
    "Command",
    "ContextName",
    "ContextSpec",
    "Macrostep",
    "Microstep",
    "RecipeFiles",
    "ResolvedRecipe",
    "Section",
    "StepId",
]

SECTIONS: tuple[str, ...] = ("bootstrap", "setup", "export")

StepId = NewType("StepId", str)


class CheckpointPolicy(enum.Enum):
    """A microstep's ``on_checkpoint`` value; unknown strings behave like USE_CACHE."""

    USE_CACHE = "use_cache"
    DISABLED = "disabled"
    REDO = "redo"
    SKIP = "skip"
    ONLY = "only"

    @classmethod
    def parse(cls, value: object) -> CheckpointPolicy:
        """Map a recipe value to a policy, as upstream does (anything unknown is use_cache).

        >>> CheckpointPolicy.parse("redo").value
        'redo'
        >>> CheckpointPolicy.parse("disable").value
        'use_cache'
        """
        for policy in cls:
            if policy.value == value:
                return policy
        return cls.USE_CACHE

    @property
    def chained(self) -> bool:
        """Whether the microstep's id takes part in the hash chain."""
        return self not in (CheckpointPolicy.REDO, CheckpointPolicy.SKIP)


@dataclass(frozen=True, slots=True)
class Command:
    """One resolved command.

    Attributes:
        key: the command kind (``exec_in``, ``pipe``, ``rescue``...) or an unknown key.
        value: what runs: a string for ``exec_*``, ``breakpoint`` and
            ``reload_context``; a tuple of commands for ``pipe``, ``rescue``, ``test``
            and ``group``; ``None`` for a bare command.
        text: upstream's ``string_cmd``, the Psych text that checkpoint ids hash.
    """

    key: str
    value: str | tuple[Command, ...] | None
    text: str

    @property
    def children(self) -> tuple[Command, ...]:
        """The sub-commands of a list-valued command (empty for others)."""
        return self.value if isinstance(self.value, tuple) else ()


@dataclass(frozen=True, slots=True)
class Microstep:
    """A resolved microstep, with its checkpoint id.

    Attributes:
        name: the microstep's name (``_clean_0_x`` for hook microsteps).
        section: the section it runs in.
        macrostep: the name of its macrostep (``_init_setup`` for internal ones).
        commands: its commands, hooks removed.
        on_checkpoint: its checkpoint policy.
        step_id: its checkpoint id (upstream's hash chain).
        slug: ``section/macrostep/name``, with a ``%N`` suffix when repeated.
        order: its 1-based position in execution order.
        number: the number the dry run shows (``order``, except for a microstep selected
            twice, which upstream numbers as its last occurrence).
    """

    name: str
    section: str
    macrostep: str
    commands: tuple[Command, ...]
    on_checkpoint: CheckpointPolicy
    step_id: StepId
    slug: str
    order: int
    number: int = 0


@dataclass(frozen=True, slots=True)
class Macrostep:
    """A resolved macrostep: its own init microsteps, microsteps and clean microsteps."""

    name: str
    path: str | None
    init: tuple[Microstep, ...] = ()
    microsteps: tuple[Microstep, ...] = ()
    clean: tuple[Microstep, ...] = ()
    #: the file that writes it: its step file, or the recipe file that embeds it
    #: (``path`` is what upstream shows: the recipe being built, for embedded ones)
    origin: str | None = None

    @property
    def internal(self) -> bool:
        """Whether this is a section's ``_init_*``/``_clean_*`` macrostep."""
        return self.path is None

    def all_microsteps(self) -> tuple[Microstep, ...]:
        """Init, own and clean microsteps, in execution order."""
        return self.init + self.microsteps + self.clean


@dataclass(frozen=True, slots=True)
class Section:
    """A section with its internal init and clean macrosteps around its macrosteps."""

    name: str
    macrosteps: tuple[Macrostep, ...]  # ``_init_<section>`` first, ``_clean_<section>`` last


@dataclass(frozen=True, slots=True)
class RecipeFiles:
    """Every file a recipe was built from, in load order (``info`` and ``export``)."""

    recipe: str
    parents: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    data: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedRecipe:
    """A recipe after the strict resolution pipeline: what a build runs.

    Attributes:
        name: the recipe's name (its file name without ``.yaml``).
        path: the recipe path as the user gave it (messages use it verbatim).
        abspath: its absolute path (not canonicalised: symlinks are kept).
        description: the ``# DESCRIPTION:`` text.
        sections: bootstrap, setup and export, in that order.
        global_vars: the resolved globals.
        contexts: how to start each context.
        checkpoint: the checkpoint mechanism's hooks (``enabled?``, ``create``,
            ``apply``, ``list``, ``clear``), resolved but with ``@microstep_id`` left
            in place; empty when the recipe has none.
        files: the files the recipe was built from.
        cli_globals: the ``-g`` overrides it was resolved with.
        warnings: load-time warnings (unbraced variables...).
    """

    name: str
    path: str
    abspath: str
    description: str
    sections: tuple[Section, ...]
    global_vars: Mapping[str, object]
    contexts: Mapping[ContextName, ContextSpec]
    checkpoint: Mapping[str, tuple[Command, ...]]
    files: RecipeFiles
    cli_globals: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def microsteps(self) -> Iterator[Microstep]:
        """Every microstep in execution order."""
        for section in self.sections:
            for macrostep in section.macrosteps:
                yield from macrostep.all_microsteps()

    @property
    def kameleon_cwd(self) -> str:
        """The build directory of this recipe."""
        return str(self.global_vars.get("kameleon_cwd", ""))
