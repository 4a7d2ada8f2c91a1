"""What the notebook converter works on: cells, microsteps as cells, and a recipe's shape.

*Cells* are the notebook's, whatever they come from (an ``.ipynb`` file or a live
session). A microstep of a file is *rendered* as a cell the same way on import and
on export, so export can tell an untouched cell (keep the file's text) from an edited
one (write the cell). A recipe's *shape* says, for every macrostep of every section,
where it comes from: written in the recipe file itself, in one of its own step files
(both shown as cells), or from a parent recipe or kameleon_nb (only referenced).
"""

from __future__ import annotations

import enum
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.loader import LoadedRecipe, StepsDirs, read_text
from kameleon_nb.core.model import SECTIONS, CheckpointPolicy, ResolvedRecipe
from kameleon_nb.frontends.notebook.cells import (
    MicrostepLine,
    body_commands,
    format_microstep_line,
    parse_microstep_line,
    shell_body,
    shell_value,
)
from kameleon_nb.frontends.notebook.yaml_text import ItemLayout, YamlDoc, emit_items, same_data

__all__ = [
    "METADATA_KEY",
    "CellBody",
    "CellKind",
    "FileMicrostep",
    "NotebookCell",
    "Occurrence",
    "RecipeShape",
    "Role",
    "microstep_source",
    "render_microstep",
    "same_microstep",
]

#: the key of kameleon_nb's cell metadata (``{"kameleon": {...}}``)
METADATA_KEY = "kameleon"

_EXEC_KEYS = {f"exec_{c.value}": c for c in ContextName}
_POLICIES = frozenset(p.value for p in CheckpointPolicy)


class CellKind(enum.Enum):
    """A notebook cell's type."""

    CODE = "code"
    MARKDOWN = "markdown"
    RAW = "raw"


class Role(enum.Enum):
    """What a generated Markdown cell is (``metadata.kameleon.role``)."""

    TITLE = "title"  # the recipe's name and description (not exported)
    SECTION = "section"  # "## Setup" (not exported)
    MACROSTEP = "macrostep"  # "### name" + a step file's header comments
    NOTE = "note"  # what the converter could not show as cells (not exported)
    COMMENT = "comment"  # the comments above a microstep


@dataclass(frozen=True, slots=True)
class NotebookCell:
    """One notebook cell: its type, its text and its metadata."""

    kind: CellKind
    source: str
    metadata: Mapping[str, object] = field(default_factory=dict)

    @property
    def kameleon(self) -> Mapping[str, object]:
        """Its ``kameleon`` metadata (empty if none)."""
        value = self.metadata.get(METADATA_KEY)
        return value if isinstance(value, Mapping) else {}

    @property
    def role(self) -> Role | None:
        """Its generated role, if the converter made it."""
        value = self.kameleon.get("role")
        return next((r for r in Role if r.value == value), None)

    @property
    def first_line(self) -> str:
        """Its first non-blank line (error messages name cells by it)."""
        return next((line.strip() for line in self.source.splitlines() if line.strip()), "")


# ------------------------------------------------------------------- microsteps


def _policy(items: Sequence[object]) -> CheckpointPolicy:
    policy = CheckpointPolicy.USE_CACHE
    for item in items:
        if isinstance(item, dict) and len(item) == 1 and "on_checkpoint" in item:
            policy = CheckpointPolicy.parse(item["on_checkpoint"])
    return policy


def _commands(items: Sequence[object]) -> list[object]:
    return [i for i in items if not (isinstance(i, dict) and len(i) == 1 and "on_checkpoint" in i)]


def same_microstep(left: Sequence[object], right: Sequence[object]) -> bool:
    """Whether two microstep bodies run the same commands with the same policy.

    Equal bodies give equal checkpoint ids; the place of ``on_checkpoint`` does not
    matter.
    """
    return same_data(_commands(left), _commands(right)) and _policy(left) == _policy(right)


@dataclass(frozen=True, slots=True)
class CellBody:
    """What a ``%%microstep`` cell says besides its name and its place.

    Attributes:
        context: ``--context`` (shell bodies only).
        on_checkpoint: ``--on-checkpoint``.
        body: the cell's text after its magic line, without a final newline.
        shell: whether the body is shell (one ``exec_*`` command) or YAML commands.
    """

    context: ContextName | None
    on_checkpoint: str | None
    body: str
    shell: bool

    def items(self, source: str) -> list[object]:
        """The microstep body it defines (as the session would).

        Raises:
            KameleonError: an invalid body (the message names ``source``).
        """
        return body_commands(self.body + "\n", self.context, self.on_checkpoint, source=source)

    def same_text(self, other: CellBody) -> bool:
        """Whether two cells say the same thing, up to trailing blanks."""
        if self.shell != other.shell or self.on_checkpoint != other.on_checkpoint:
            return False
        if self.shell:
            return (self.context or ContextName.IN) == (other.context or ContextName.IN) and (
                shell_value(self.body) == shell_value(other.body)
            )
        return self.body.rstrip() == other.body.rstrip()


def _shell_form(value: Sequence[object], item: ItemLayout | None) -> CellBody | None:
    if item is not None and item.has_comment:
        return None
    commands = _commands(value)
    policies = [i["on_checkpoint"] for i in value if isinstance(i, dict) and i not in commands]
    if len(commands) != 1 or len(policies) > 1:
        return None
    command = commands[0]
    if not isinstance(command, dict) or len(command) != 1:
        return None
    ((key, text),) = command.items()
    context = _EXEC_KEYS.get(key) if isinstance(key, str) else None
    if context is None or not isinstance(text, str):
        return None
    body = shell_body(text)
    if body is None or body.lstrip().startswith(("- ", "#")) or body.strip() == "-":
        return None
    policy = policies[0] if policies else None
    if policy is not None and (not isinstance(policy, str) or policy not in _POLICIES):
        return None
    return CellBody(context=context, on_checkpoint=policy, body=body, shell=True)


def render_microstep(
    value: object, item: ItemLayout | None, *, source: str = "<microstep>"
) -> CellBody | None:
    """A file microstep as a cell: shell when it is one plain ``exec_*``, else YAML.

    The YAML is the file's own text (comments kept) when it reads back alone as the
    same commands, else it is generated. Returns ``None`` when no cell can hold it
    (an empty microstep).
    """
    if not isinstance(value, list) or not value:
        return None
    shell = _shell_form(value, item)
    candidates = [shell] if shell is not None else []
    texts = [item.body] if item is not None and item.body is not None else []
    texts.append(emit_items(value))
    candidates += [CellBody(None, None, t[:-1] if t.endswith("\n") else t, False) for t in texts]
    for candidate in candidates:
        try:
            if same_microstep(candidate.items(source), value):
                return candidate
        except Exception:
            continue
    return None


def microstep_source(line: MicrostepLine, body: CellBody) -> str:
    """A ``%%microstep`` cell's source."""
    full = MicrostepLine(
        name=line.name,
        context=body.context,
        section=line.section,
        macrostep=line.macrostep,
        on_checkpoint=body.on_checkpoint,
    )
    return f"{format_microstep_line(full)}\n{body.body}"


def valid_line(line: MicrostepLine) -> bool:
    """Whether a ``%%microstep`` line can say this name and macrostep (and read back)."""
    try:
        again = parse_microstep_line(format_microstep_line(line).partition(" ")[2])
    except Exception:
        return False
    return again == line


def quote_path(path: str) -> str:
    """A path for a magic line (quoted when it needs to be)."""
    return shlex.quote(path)


# ------------------------------------------------------------------------ shape


class Origin(enum.Enum):
    """Where a macrostep is written."""

    RECIPE = "recipe"  # embedded in the recipe file itself
    STEP_FILE = "step_file"  # in one of the recipe's own step files
    PARENT = "parent"  # embedded in a parent recipe
    OTHER = "other"  # a step file of a parent's steps dirs or of kameleon_nb


@dataclass(frozen=True, slots=True)
class FileMicrostep:
    """A microstep as a file holds it.

    Attributes:
        name: its name.
        value: its body (commands and ``on_checkpoint`` items).
        index: its item's index in the list that holds it.
        layout: where its text is (``None`` when the list is not a plain block list).
    """

    name: str
    value: list[object]
    index: int
    layout: ItemLayout | None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One macrostep of a section, and where it comes from.

    Attributes:
        section: its section.
        position: its index among the section's macrosteps.
        name: its (resolved) name.
        origin: where it is written.
        path: its step file, or the recipe file that embeds it.
        list_index: its index in the recipe file's section list (``Origin.RECIPE``
            and own entries), else ``None``.
        raw_key: its key as written in the section list (may hold ``$${...}``).
        selection: the microsteps the section entry selects (empty: all).
        microsteps: its microsteps as the file holds them, in file order.
        header: the layout of the list that holds them (``None`` if not spliceable).
    """

    section: str
    position: int
    name: str
    origin: Origin
    path: str
    list_index: int | None
    raw_key: str | None
    selection: tuple[str, ...]
    microsteps: tuple[FileMicrostep, ...]
    doc: YamlDoc | None

    @property
    def shown(self) -> bool:
        """Whether its microsteps are cells (it is written in the recipe's own files)."""
        return self.origin in (Origin.RECIPE, Origin.STEP_FILE)

    def target(self, name: str) -> FileMicrostep | None:
        """The microstep a cell named ``name`` replaces (as the session picks it)."""
        matches = [m for m in self.microsteps if m.name == name]
        if not matches or (self.selection and name not in self.selection):
            return None
        return matches[-1] if self.selection else matches[0]

    def shown_microsteps(self) -> Iterator[FileMicrostep]:
        """Its microsteps in build order, each name once (what gets a cell)."""
        seen: set[str] = set()
        names = self.selection or tuple(m.name for m in self.microsteps)
        for name in names:
            found = self.target(name)
            if found is not None and name not in seen:
                seen.add(name)
                yield found


def _is_embedded(args: object) -> bool:
    return isinstance(args, list) and any(
        isinstance(a, dict) and any(isinstance(v, list) for v in a.values()) for a in args
    )


def _is_base(item: object) -> bool:
    return item in ("@base", ["@base"])


def _microsteps_of(
    data: object, doc: YamlDoc | None, path: tuple[str | int, ...], region: int
) -> tuple[FileMicrostep, ...]:
    if not isinstance(data, list):
        return ()
    layout = None
    if doc is not None:
        node, _ = doc.node_at(path)
        layout = doc.seq_layout(node, region)
    found = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if isinstance(value, list):
                item_layout = layout.items[index] if layout is not None else None
                if item_layout is not None and item_layout.key != str(key):
                    item_layout = None
                found.append(FileMicrostep(str(key), value, index, item_layout))
    return tuple(found)


@dataclass(slots=True)
class RecipeShape:
    """A loaded recipe's macrosteps, each with where it comes from.

    Attributes:
        loaded: the recipe (header only, no cell edits).
        recipe: its resolution.
        text: the recipe file's text.
        doc: that text, parsed.
        own_dirs: the recipe's own steps directories.
        sections: section → its macrosteps, in order.
    """

    loaded: LoadedRecipe
    recipe: ResolvedRecipe
    text: str
    doc: YamlDoc
    own_dirs: tuple[str, ...]
    sections: dict[str, list[Occurrence]]
    _docs: dict[str, YamlDoc]

    @classmethod
    def of(
        cls, loaded: LoadedRecipe, recipe: ResolvedRecipe, text: str, *, cwd: str
    ) -> RecipeShape:
        """The shape of a loaded recipe (reads its own step files).

        Raises:
            KameleonError: a step file cannot be read.
        """
        doc = YamlDoc(text, loaded.abspath)
        own_dirs = StepsDirs.for_chain([loaded.abspath], cwd).dirs
        shape = cls(loaded, recipe, text, doc, own_dirs, {}, {loaded.abspath: doc})
        data = doc.data if isinstance(doc.data, dict) else {}
        for section in recipe.sections:
            entries = loaded.sections.get(section.name, [])
            macrosteps = [m for m in section.macrosteps if not m.internal]
            own_list = data.get(section.name) if section.name in data else None
            own_indexes = [
                i
                for i, item in enumerate(own_list if isinstance(own_list, list) else [])
                if not _is_base(item)
            ]
            own_index = iter(own_indexes)
            occurrences = []
            for position, (entry, macrostep) in enumerate(
                zip(entries, macrosteps[: len(entries)], strict=True)
            ):
                list_index = next(own_index) if entry.origin == loaded.abspath else None
                occurrences.append(
                    shape._occurrence(
                        section.name,
                        position,
                        entry.item,
                        entry.origin,
                        macrostep.name,
                        macrostep.origin or "",
                        list_index,
                    )
                )
            shape.sections[section.name] = occurrences
        for name in SECTIONS:
            shape.sections.setdefault(name, [])
        return shape

    def _doc(self, path: str) -> YamlDoc:
        if path not in self._docs:
            self._docs[path] = YamlDoc(read_text(path), path)
        return self._docs[path]

    def is_own_file(self, path: str) -> bool:
        """Whether a file lies in one of the recipe's own steps directories."""
        return any(path.startswith(d.rstrip("/") + "/") for d in self.own_dirs)

    def _occurrence(
        self,
        section: str,
        position: int,
        item: object,
        origin_file: str,
        name: str,
        path: str,
        list_index: int | None,
    ) -> Occurrence:
        raw_key, args = next(iter(item.items())) if isinstance(item, dict) else (item, None)
        common = {"section": section, "position": position, "name": name, "path": path}
        if _is_embedded(args):
            own = origin_file == self.loaded.abspath
            doc = self.doc if own and list_index is not None else None
            key_path: tuple[str | int, ...] = (section, list_index or 0, str(raw_key))
            region = -1
            if doc is not None:
                _, key_node = doc.node_at(key_path)
                region = doc.line_end(key_node.end_mark.index) if key_node is not None else -1
            body = [{k: v} for a in args if isinstance(a, dict) for k, v in a.items()]  # type: ignore[union-attr]
            microsteps = _microsteps_of(
                args if doc is not None else body, doc if region >= 0 else None, key_path, region
            )
            return Occurrence(
                origin=Origin.RECIPE if own else Origin.PARENT,
                list_index=list_index,
                raw_key=str(raw_key),
                selection=(),
                microsteps=microsteps,
                doc=doc,
                **common,  # type: ignore[arg-type]
            )
        selection = tuple(str(a) for a in (args or []) if isinstance(a, str))
        own = self.is_own_file(path)
        doc = self._doc(path)
        return Occurrence(
            origin=Origin.STEP_FILE if own else Origin.OTHER,
            list_index=list_index,
            raw_key=str(raw_key),
            selection=selection,
            microsteps=_microsteps_of(doc.data, doc, (), 0),
            doc=doc,
            **common,  # type: ignore[arg-type]
        )

    def occurrences(self) -> Iterator[Occurrence]:
        """Every macrostep, section by section."""
        for section in SECTIONS:
            yield from self.sections[section]

    def find(self, section: str, macrostep: str) -> Occurrence | None:
        """The macrostep a cell's ``--section``/``--macrostep`` names (the first one)."""
        return next((o for o in self.sections[section] if o.name == macrostep), None)

    def relative(self, path: str) -> str:
        """A path relative to the recipe's directory (for notes)."""
        return os.path.relpath(path, os.path.dirname(self.loaded.abspath))

    def origin(self, path: str) -> str:
        """A file as its steps directory names it (``steps/setup/x.yaml``).

        The recipe file itself goes by its file name. Both stay the same wherever the
        recipe is exported (cell metadata holds them).
        """
        if path == self.loaded.abspath:
            return os.path.basename(path)
        for directory in self.own_dirs:
            if path.startswith(directory.rstrip("/") + "/"):
                return os.path.join(os.path.basename(directory), os.path.relpath(path, directory))
        return self.relative(path)
