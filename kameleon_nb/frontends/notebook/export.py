"""Notebook cells as a recipe: ``kameleon export-recipe`` and ``%kameleon export``.

The notebook's recipe is what its session would build: the recipe cell (or none),
then every ``%%microstep`` cell replacing the microstep of that name in its
macrostep, or adding it. Export writes that recipe to a directory:

* the recipe file from the recipe cell's text, with the microsteps of its embedded
  macrosteps taken from their cells, new macrosteps added to its sections, and a
  relative ``extend`` re-pointed at the parent from the new place;
* its own step files, each microstep from its cell; a cell whose text is what the
  file's microstep renders to leaves that microstep's text untouched (comments,
  quoting, anchors), so an unedited notebook gives back the same files;
* one step file ``steps/<section>/<macrostep>.yaml`` per macrostep the cells add;
* copies of what the recipe needs from its own steps directories (aliases,
  checkpoint mechanisms, environment and data files, global includes), so it builds
  from wherever it is written. Parents are not copied: ``extend`` points at them.

Markdown cells right before a microstep cell are the comments above that microstep.
Other cells (code that is not a microstep, Markdown not followed by one) are left
out, and listed. This module computes the files; writing them is the caller's.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kameleon_nb.core.loader import LoadedRecipe, StepsDirs, read_text
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.placement import place_microstep
from kameleon_nb.engine.recipes import BUILTIN_RECIPES_DIR, BUILTIN_STEPS_DIR, load, resolve
from kameleon_nb.errors import KameleonError, NotebookError, RecipeError, YamlError
from kameleon_nb.frontends.notebook.cells import (
    MicrostepLine,
    RecipeLine,
    is_yaml_body,
    magic_of,
    parse_microstep_line,
    parse_recipe_line,
    split_cell,
)
from kameleon_nb.frontends.notebook.import_recipe import LOAD_EXTENSION
from kameleon_nb.frontends.notebook.model import (
    CellBody,
    CellKind,
    FileMicrostep,
    NotebookCell,
    Occurrence,
    Origin,
    RecipeShape,
    Role,
    render_microstep,
    same_microstep,
)
from kameleon_nb.frontends.notebook.yaml_text import NewItem, ScalarEdit, SeqEdit, edit_yaml

__all__ = ["ExportedFile", "RecipeExport", "plan_export"]


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file of an exported recipe.

    Attributes:
        path: where it goes, relative to the export directory.
        text: its content, or ``None`` for a copy of ``source``.
        source: the file it is copied from (absolute), for a copy.
    """

    path: str
    text: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class RecipeExport:
    """What exporting a notebook writes, and what it could not keep.

    Attributes:
        directory: the export directory (absolute).
        recipe: the recipe file, relative to it.
        files: every file to write or copy (the recipe file first).
        notes: what the reader should know (comments lost, shared files...).
        left_out: the cells that are not part of the recipe, as ``cell N ("...")``.
        plan: the notebook's recipe as its session resolves it.
        name: the recipe's name.
    """

    directory: str
    recipe: str
    files: tuple[ExportedFile, ...]
    notes: tuple[str, ...]
    left_out: tuple[str, ...]
    plan: ResolvedRecipe
    name: str


# ------------------------------------------------------------------ the cells


@dataclass(frozen=True, slots=True)
class _Header:
    index: int
    kind: str  # "load" | "recipe"
    line: RecipeLine
    text: str | None


@dataclass(slots=True)
class _Microstep:
    index: int
    name: str  # "cell N (...)" for messages
    line: MicrostepLine
    body: CellBody
    items: list[object]
    comments: str | None  # the Markdown just above it, None if none
    from_import: bool  # made by ``kameleon notebook`` (its Markdown is authoritative)
    section: str = ""
    macrostep: str = ""


@dataclass(slots=True)
class _Cells:
    header: _Header | None = None
    microsteps: list[_Microstep] = field(default_factory=list)
    headings: dict[tuple[str, str], str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


def _cell_name(origin: str, index: int, cell: NotebookCell) -> str:
    first = cell.first_line
    if len(first) > 60:
        first = first[:57] + "..."
    return f'{origin}, cell {index + 1} ("{first}")'


def _short(index: int, cell: NotebookCell) -> str:
    first = cell.first_line
    if len(first) > 40:
        first = first[:37] + "..."
    return f'cell {index + 1} ("{first}")'


def _classify(cells: Sequence[NotebookCell], origin: str) -> _Cells:
    found = _Cells()
    pending: list[tuple[int, NotebookCell]] = []

    def drop_pending() -> None:
        found.left_out.extend(_short(i, c) for i, c in pending if c.source.strip())
        pending.clear()

    for index, cell in enumerate(cells):
        name = _cell_name(origin, index, cell)
        if cell.kind is CellKind.MARKDOWN:
            role = cell.role
            if role in (None, Role.COMMENT):
                pending.append((index, cell))
                continue
            drop_pending()
            if role is Role.MACROSTEP:
                meta = cell.kameleon
                key = (str(meta.get("section")), str(meta.get("macrostep")))
                found.headings[key] = cell.source.partition("\n")[2].strip("\n")
            continue
        if not cell.source.strip():  # an empty cell: nothing, not even a separator
            continue
        if cell.kind is CellKind.RAW:
            drop_pending()
            found.left_out.append(_short(index, cell))
            continue
        source = cell.source if cell.source.endswith("\n") else cell.source + "\n"
        first, body = split_cell(source.lstrip("\n"))  # IPython drops leading blank lines
        magic = magic_of(first)
        verb = (magic[1].split(maxsplit=1) or [""])[0] if magic else ""
        if magic is not None and magic[0] == "%%microstep":
            comments = "\n\n".join(c.source.strip("\n") for _, c in pending if c.source.strip())
            pending.clear()
            found.microsteps.append(_microstep(index, name, magic[1], body, comments or None, cell))
        elif magic is not None and (magic[0], verb) in (
            ("%kameleon", "load"),
            ("%%kameleon", "recipe"),
        ):
            drop_pending()
            found.header = _header(found, index, name, magic[0], magic[1], body)
        elif source.strip() == LOAD_EXTENSION:
            drop_pending()
        else:
            drop_pending()
            found.left_out.append(_short(index, cell))
    drop_pending()
    return found


def _microstep(
    index: int, name: str, args: str, body: str, comments: str | None, cell: NotebookCell
) -> _Microstep:
    try:
        line = parse_microstep_line(args)
    except KameleonError as err:
        raise NotebookError(
            f"{name}: {err}; a microstep cell starts with '%%microstep NAME' "
            "[--context local|out|in] [--section S] [--macrostep M]"
        ) from None
    text = body[:-1] if body.endswith("\n") else body
    cell_body = CellBody(line.context, line.on_checkpoint, text, not is_yaml_body(text))
    try:
        items = cell_body.items(source=name)
    except KameleonError as err:
        message = err.located() if isinstance(err, YamlError) else str(err)
        if not message.startswith(name):
            message = f"{name}: {message}"
        raise NotebookError(
            f"{message}; fix the cell's body (shell, or Kameleon commands starting with '- ')"
        ) from None
    return _Microstep(index, name, line, cell_body, items, comments, "origin" in cell.kameleon)


def _header(found: _Cells, index: int, name: str, magic: str, args: str, body: str) -> _Header:
    kind = "load" if magic == "%kameleon" else "recipe"
    if found.header is not None:
        raise NotebookError(
            f"{name}: a second recipe cell (the first is cell {found.header.index + 1}); "
            "a notebook holds one recipe: keep one of them"
        )
    if found.microsteps:
        raise NotebookError(
            f"{name}: the recipe cell comes after microstep cells (cell "
            f"{found.microsteps[0].index + 1}); move it above them"
        )
    try:
        line = parse_recipe_line(kind, args.partition(" ")[2] if " " in args else "")
    except KameleonError as err:
        raise NotebookError(f"{name}: {err}") from None
    return _Header(index, kind, line, body if kind == "recipe" else None)


# ------------------------------------------------------------------ locating


def _locate(cells: _Cells, recipe: ResolvedRecipe, *, allow_redefinition: bool) -> None:
    """Give each microstep cell its section and macrostep (as the session does)."""
    known = {(m.section, m.macrostep, m.name) for m in recipe.microsteps()}
    defined: dict[tuple[str, str, str], _Microstep] = {}
    kept: list[_Microstep] = []
    for cell in cells.microsteps:
        line = cell.line
        try:
            section, macrostep = place_microstep(
                (*known, *defined), line.name, line.section, line.macrostep
            )
        except RecipeError as err:
            raise NotebookError(f"{cell.name}: {err}") from None
        cell.section, cell.macrostep = section, macrostep
        key = (section, macrostep, line.name)
        if key in defined:
            if not allow_redefinition:
                first = defined[key]
                raise NotebookError(
                    f"{cell.name}: defines {'/'.join(key)} again (cell {first.index + 1} "
                    "already does); rename one of them or delete one"
                )
            kept[kept.index(defined[key])] = cell
        else:
            kept.append(cell)
        defined[key] = cell
    cells.microsteps = kept


# ------------------------------------------------------------------ the recipe


def _session_recipe(
    loaded: LoadedRecipe, cells: _Cells, cli_globals: Mapping[str, str], cwd: str
) -> ResolvedRecipe:
    """The notebook's recipe as its session resolves it; a failure names its cell."""
    edited = copy.deepcopy(loaded)
    for cell in cells.microsteps:
        edited.set_microstep(cell.section, cell.macrostep, cell.line.name, cell.items)
    try:
        return resolve(edited, cli_globals=cli_globals, cwd=cwd)
    except KameleonError as err:
        failed = _failing_cell(loaded, cells, cli_globals, cwd)
        where = f"{failed.name}: " if failed is not None else ""
        raise NotebookError(f"{where}{err}") from None


def _failing_cell(
    loaded: LoadedRecipe, cells: _Cells, cli_globals: Mapping[str, str], cwd: str
) -> _Microstep | None:
    edited = copy.deepcopy(loaded)
    for cell in cells.microsteps:
        edited.set_microstep(cell.section, cell.macrostep, cell.line.name, cell.items)
        try:
            resolve(edited, cli_globals=cli_globals, cwd=cwd)
        except KameleonError:
            return cell
    return None


def _minimal_recipe(origin: str) -> str:
    bar = "#" + "=" * 78
    return f"{bar}\n#\n# DESCRIPTION: Written by kameleon_nb from {origin}.\n#\n{bar}\n---\n"


@dataclass(slots=True)
class _FileEdits:
    """The edits to one file of the recipe (the recipe file, or a step file)."""

    path: str  # the original file
    text: str
    seqs: dict[tuple[str | int, ...], SeqEdit] = field(default_factory=dict)
    scalars: list[ScalarEdit] = field(default_factory=list)

    def seq(self, path: tuple[str | int, ...]) -> SeqEdit:
        return self.seqs.setdefault(path, SeqEdit(path=path))


def _comments_for(cell: _Microstep) -> str | None:
    """The comments a cell gives its microstep: its Markdown, or ``None`` to keep the file's."""
    if cell.comments is not None:
        return cell.comments
    return "" if cell.from_import else None


def _yaml_text(cell: _Microstep) -> str | None:
    """The cell's YAML body as written (with an ``on_checkpoint`` line from its option)."""
    if cell.body.shell:
        return None
    text = cell.body.body + "\n"
    if cell.body.on_checkpoint is not None:
        text = f"- on_checkpoint: {cell.body.on_checkpoint}\n{text}"
    return text


class _Exporter:
    """Turns located cells into edits of the recipe's files, then into files."""

    def __init__(
        self,
        cells: _Cells,
        shape: RecipeShape,
        plan: ResolvedRecipe,
        *,
        directory: str,
        cwd: str,
    ) -> None:
        self.cells = cells
        self.shape = shape
        self.plan = plan
        self.directory = directory
        self.cwd = cwd
        self.loaded = shape.loaded
        self.recipe_dir = os.path.dirname(self.loaded.abspath)
        self.in_place = os.path.normpath(directory) == self.recipe_dir
        self.notes: list[str] = []
        self.header = _FileEdits(self.loaded.abspath, shape.text)
        self.step_files: dict[str, _FileEdits] = {}
        self.new_macrosteps: dict[tuple[str, str], list[_Microstep]] = {}
        chain = StepsDirs.for_chain(self.loaded.chain, cwd).with_fallback((BUILTIN_STEPS_DIR,))
        self.steps_dirs = sorted(chain.dirs, key=len, reverse=True)
        self.reachable = {BUILTIN_STEPS_DIR}
        for parent in self.loaded.chain[1:]:
            base = os.path.dirname(parent)
            self.reachable |= {os.path.join(base, "steps"), os.path.join(base, ".steps")}
        if self.in_place:
            self.reachable |= set(shape.own_dirs)
        else:  # the recipe's own files (shown as cells) go with it, even if a parent's too
            self.reachable -= set(shape.own_dirs)

    # ---------------------------------------------------------------- cells
    def place_cells(self) -> None:
        for cell in self.cells.microsteps:
            occurrence = self.shape.find(cell.section, cell.macrostep)
            if occurrence is None:
                self.new_macrosteps.setdefault((cell.section, cell.macrostep), []).append(cell)
                continue
            target = occurrence.target(cell.line.name)
            if target is None and occurrence.selection:
                raise NotebookError(
                    f"{cell.name}: the recipe runs only some microsteps of "
                    f"{occurrence.name} ({', '.join(occurrence.selection)}); add "
                    f"'{cell.line.name}' to that list in the recipe cell, or give the cell "
                    "another --macrostep"
                )
            rendered = None if target is None else render_microstep(target.value, target.layout)
            unchanged = rendered is not None and rendered.same_text(cell.body)
            same = target is not None and same_microstep(cell.items, target.value)
            if occurrence.origin is Origin.OTHER and same:
                continue  # nothing to write: the parent's (or kameleon_nb's) file says it
            if occurrence.origin is Origin.PARENT:
                if not same:
                    raise NotebookError(
                        f"{cell.name}: changes macrostep '{occurrence.name}', which the "
                        f"parent recipe {occurrence.path} writes in its {occurrence.section} "
                        "section; copy that macrostep into the recipe cell, or edit the parent"
                    )
                continue
            self._edit(self._edits_of(occurrence), occurrence, target, cell, unchanged=unchanged)

    def _edits_of(self, occurrence: Occurrence) -> _FileEdits:
        if occurrence.origin is Origin.RECIPE:
            return self.header
        if occurrence.path not in self.step_files:
            assert occurrence.doc is not None
            self.step_files[occurrence.path] = _FileEdits(occurrence.path, occurrence.doc.text)
        return self.step_files[occurrence.path]

    def _edit(
        self,
        edits: _FileEdits,
        occurrence: Occurrence,
        target: FileMicrostep | None,
        cell: _Microstep,
        *,
        unchanged: bool,
    ) -> None:
        if occurrence.origin is Origin.RECIPE:
            assert occurrence.list_index is not None
            assert occurrence.raw_key is not None
            path: tuple[str | int, ...] = (
                occurrence.section,
                occurrence.list_index,
                occurrence.raw_key,
            )
        else:
            path = ()
        seq = edits.seq(path)
        comments = _comments_for(cell)
        if target is None:
            seq.append.append(
                NewItem(cell.line.name, cell.items, _yaml_text(cell), comments or None)
            )
        elif not unchanged:
            seq.replace[target.index] = NewItem(
                cell.line.name, cell.items, _yaml_text(cell), comments
            )
        elif comments is not None and target.layout is not None:
            seq.comments[target.index] = comments
        heading = self.cells.headings.get((occurrence.section, occurrence.name))
        if heading is not None and occurrence.origin is not Origin.RECIPE:
            seq.header = heading

    # ---------------------------------------------------------------- recipe file
    def recipe_edits(self) -> None:
        for section, macrostep in self.new_macrosteps:  # their step files: see files()
            self.header.seq((section,)).append.append(NewItem(macrostep))
        data = self.shape.doc.data
        if self.in_place or not isinstance(data, dict) or len(self.loaded.chain) < 2:
            return
        value = data.get("extend")
        parent = self.loaded.chain[1]
        if not isinstance(value, str) or parent.startswith(BUILTIN_RECIPES_DIR.rstrip("/") + "/"):
            return
        if os.path.isabs(os.path.expanduser(value)):
            return
        new = _repoint(value, self.recipe_dir, self.directory)
        if new != value:
            self.header.scalars.append(ScalarEdit(("extend",), new))

    # ---------------------------------------------------------------- files
    def steps_dir_of(self, path: str) -> str | None:
        return next((d for d in self.steps_dirs if path.startswith(d.rstrip("/") + "/")), None)

    def target_of(self, path: str, *, edited: bool) -> str | None:
        """Where a file the recipe uses goes (relative), ``None`` if it needs no copy."""
        steps_dir = self.steps_dir_of(path)
        if steps_dir is None:
            return None
        own = {os.path.join(self.directory, "steps"), os.path.join(self.directory, ".steps")}
        if self.in_place and steps_dir in own:
            return os.path.relpath(path, self.directory) if edited else None
        if steps_dir in self.reachable and not edited:
            return None
        kind = ".steps" if os.path.basename(steps_dir) == ".steps" else "steps"
        return os.path.join(kind, os.path.relpath(path, steps_dir))

    def files(self, origin: str) -> tuple[list[ExportedFile], list[str]]:
        written: dict[str, ExportedFile] = {}

        def add(file: ExportedFile) -> None:
            if file.path in written:
                if written[file.path] != file:
                    self.notes.append(f"{file.path}: two files go there; the first one was kept")
                return
            written[file.path] = file

        recipe_name = f"{self.loaded.name}.yaml"
        header = edit_yaml(
            self.header.text,
            self.loaded.abspath,
            list(self.header.seqs.values()),
            self.header.scalars,
        )
        self._note(header.note)
        add(ExportedFile(recipe_name, text=header.text))
        for path, edits in self.step_files.items():
            edited = edit_yaml(edits.text, path, list(edits.seqs.values()))
            self._note(edited.note)
            target = self.target_of(path, edited=edited.text != edits.text)
            if target is not None:
                add(ExportedFile(target, text=edited.text))
            self._shared(path, edits)
        for (section, macrostep), cells in self.new_macrosteps.items():
            add(
                ExportedFile(
                    os.path.join("steps", section, f"{macrostep}.yaml"),
                    text=self._new_step_file(section, macrostep, cells, origin),
                )
            )
        for path in self._used_files():
            if path in self.step_files:
                continue
            target = self.target_of(path, edited=False)
            if target is not None:
                add(ExportedFile(target, source=path))
        for path in self.loaded.include_files:
            if self.steps_dir_of(path) is None and not self.in_place:
                relative = os.path.relpath(path, self.recipe_dir)
                if not relative.startswith(".."):
                    add(ExportedFile(relative, source=path))
        self._location_notes()
        return list(written.values()), self.notes

    def _used_files(self) -> list[str]:
        files = self.plan.files
        return [*files.steps, *files.env, *files.data]

    def _new_step_file(
        self, section: str, macrostep: str, cells: list[_Microstep], origin: str
    ) -> str:
        items = [NewItem(c.line.name, c.items, _yaml_text(c), c.comments) for c in cells]
        header = self.cells.headings.get((section, macrostep))
        source = f"{origin}: steps/{section}/{macrostep}.yaml"
        edited = edit_yaml("", source, [SeqEdit(path=(), append=items, header=header)])
        self._note(edited.note)
        return edited.text

    def _note(self, note: str | None) -> None:
        if note is not None:
            self.notes.append(note)

    def _shared(self, path: str, edits: _FileEdits) -> None:
        if not any(s.changes_data for s in edits.seqs.values()):
            return
        users = [o for o in self.shape.occurrences() if o.path == path]
        if len(users) > 1:
            names = ", ".join(f"{o.section}/{o.name}" for o in users)
            self.notes.append(
                f"{self.shape.relative(path)} is used by {len(users)} macrosteps ({names}); "
                "the changes of its cells apply to all of them"
            )

    def _location_notes(self) -> None:
        if self.in_place:
            return
        pattern = re.compile(re.escape(self.recipe_dir.rstrip("/") + "/") + r"[^\s'\"$;|&)]+")
        build = os.path.dirname(self.plan.kameleon_cwd).rstrip("/") + "/"
        outside: set[str] = set()
        for microstep in self.plan.microsteps():
            for command in microstep.commands:
                for match in pattern.finditer(command.text):
                    path = match.group(0)
                    if (
                        self.steps_dir_of(path) is None
                        and not path.startswith(build)
                        and os.path.exists(path)
                    ):
                        outside.add(self.shape.relative(path))
        if outside:
            self.notes.append(
                "commands use files next to the recipe that are not copied "
                f"({', '.join(sorted(outside))}): copy them to {self.directory}"
            )


def _repoint(value: str, old_dir: str, new_dir: str) -> str:
    """A relative ``extend`` value that names, from ``new_dir``, what it named from ``old_dir``.

    Only the part before the first ``$$`` variable is a plain path; the rest is kept.

    >>> _repoint("../base/base.yaml", "/r/a", "/r/out/x")
    '../../base/base.yaml'
    >>> _repoint("flavors/$${flavor}/big.yaml", "/r", "/r/out")
    '../flavors/$${flavor}/big.yaml'
    """
    cut = value.find("$$")
    if cut < 0:
        return os.path.relpath(os.path.normpath(os.path.join(old_dir, value)), new_dir)
    split = value.rfind("/", 0, cut) + 1
    prefix, rest = value[:split], value[split:]
    base = os.path.relpath(os.path.normpath(os.path.join(old_dir, prefix or ".")), new_dir)
    return rest if base == "." else f"{base}/{rest}"


# ------------------------------------------------------------------ entry point


def plan_export(
    cells: Sequence[NotebookCell],
    directory: str,
    *,
    base_dir: str,
    cwd: str,
    name: str,
    origin: str = "the notebook",
    allow_redefinition: bool = False,
) -> RecipeExport:
    """The files that export the notebook's recipe to ``directory`` (nothing is written).

    Args:
        cells: the notebook's cells, in order.
        directory: where the recipe goes.
        base_dir: what the recipe cell's path is relative to (the notebook's directory).
        cwd: the workspace root the recipe resolves in (the kernel's directory).
        name: the recipe's name when the notebook has no recipe cell.
        origin: the notebook, for messages (``hello.ipynb``).
        allow_redefinition: a later cell for the same microstep replaces an earlier
            one (as re-running a cell does) instead of being an error.

    Raises:
        NotebookError: a cell cannot become part of a recipe (it is named).
        KameleonError: the recipe cell does not load.
    """
    directory = os.path.abspath(directory)
    cells_found = _classify(cells, origin)
    header = cells_found.header
    cli_globals: dict[str, str] = {}
    if header is None:
        path = os.path.join(base_dir, f"{name}.yaml")
        text = _minimal_recipe(origin)
        loaded = load(path, cwd=cwd, text=text)
    else:
        cli_globals = dict(header.line.cli_globals)
        path = os.path.normpath(os.path.join(base_dir, header.line.path))
        try:
            if header.text is None:
                loaded = load(path, cli_globals=cli_globals, cwd=cwd)
                text = read_text(loaded.abspath)
            else:
                text = header.text if header.text.endswith("\n") else header.text + "\n"
                loaded = load(path, cli_globals=cli_globals, cwd=cwd, text=text)
        except KameleonError as err:
            problem = err.located() if isinstance(err, YamlError) else str(err)
            raise NotebookError(
                f"{origin}, cell {header.index + 1} (the recipe cell): {problem}"
            ) from None
    try:
        plain = resolve(loaded, cli_globals=cli_globals, cwd=cwd)
        shape = RecipeShape.of(loaded, plain, text, cwd=cwd)
    except KameleonError as err:
        where = f"cell {header.index + 1} (the recipe cell)" if header else "the recipe"
        raise NotebookError(f"{origin}, {where}: {err}") from None
    _locate(cells_found, plain, allow_redefinition=allow_redefinition)
    plan = _session_recipe(loaded, cells_found, cli_globals, cwd)
    exporter = _Exporter(cells_found, shape, plan, directory=directory, cwd=cwd)
    exporter.place_cells()
    exporter.recipe_edits()
    files, notes = exporter.files(origin)
    if cli_globals:
        pairs = " ".join(f"-g {k}:{v}" for k, v in cli_globals.items())
        notes.append(f"the recipe cell's {pairs} is not part of the recipe: pass it to build")
    return RecipeExport(
        directory=directory,
        recipe=files[0].path,
        files=tuple(files),
        notes=tuple(notes),
        left_out=tuple(cells_found.left_out),
        plan=plan,
        name=loaded.name,
    )
