"""A recipe as notebook cells: ``kameleon notebook RECIPE``.

The notebook loads the recipe (a ``%%kameleon recipe`` cell holding the recipe
file's text, at the recipe's own path), so its parents, globals and section lists
are what the file says; then every microstep of the recipe file and of its own step
files gets a ``%%microstep`` cell that defines it again, identically. Running the
notebook therefore gives the recipe's plan and checkpoint ids, and editing a cell
edits that microstep. Comments above a microstep become a Markdown cell above its
cell; a step file's header comments go under the macrostep's heading.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from kameleon_nb.core.loader import read_text
from kameleon_nb.engine.recipes import BUILTIN_STEPS_DIR, load, resolve
from kameleon_nb.frontends.notebook.cells import MicrostepLine
from kameleon_nb.frontends.notebook.model import (
    METADATA_KEY,
    CellKind,
    NotebookCell,
    Occurrence,
    Origin,
    RecipeShape,
    Role,
    microstep_source,
    quote_path,
    render_microstep,
    valid_line,
)
from kameleon_nb.frontends.notebook.yaml_text import markdown_of_comments

__all__ = ["LOAD_EXTENSION", "recipe_cells"]

#: the first code cell of a generated notebook
LOAD_EXTENSION = "%load_ext kameleon_nb"


def _markdown(text: str, role: Role, **extra: object) -> NotebookCell:
    return NotebookCell(CellKind.MARKDOWN, text, {METADATA_KEY: {"role": role.value, **extra}})


def _header_source(path: str, text: str, cli_globals: Mapping[str, str]) -> str:
    options = "".join(f" -g {shlex.quote(f'{k}:{v}')}" for k, v in cli_globals.items())
    body = text[:-1] if text.endswith("\n") else text
    return f"%%kameleon recipe {quote_path(path)}{options}\n{body}"


def recipe_cells(
    path: str,
    *,
    notebook_dir: str,
    cwd: str,
    cli_globals: Mapping[str, str] | None = None,
) -> list[NotebookCell]:
    """The cells of a notebook for the recipe at ``path``.

    Args:
        path: the recipe (relative to ``cwd``).
        notebook_dir: where the notebook will live (its recipe cell names the recipe
            relative to it).
        cwd: the workspace root the recipe resolves in (the notebook's kernel runs
            there).
        cli_globals: ``-g`` overrides, kept on the recipe cell's line.

    Raises:
        KameleonError: the recipe does not load or resolve.
    """
    cli_globals = dict(cli_globals or {})
    loaded = load(path, cli_globals=cli_globals, cwd=cwd)
    text = read_text(loaded.abspath)
    recipe = resolve(loaded, cli_globals=cli_globals, cwd=cwd)
    shape = RecipeShape.of(loaded, recipe, text, cwd=cwd)
    title = f"# {loaded.name}"
    if recipe.description:
        title += f"\n\n{recipe.description.strip()}"
    relpath = os.path.relpath(loaded.abspath, notebook_dir)
    cells = [
        _markdown(title, Role.TITLE),
        NotebookCell(CellKind.CODE, LOAD_EXTENSION),
        NotebookCell(CellKind.CODE, _header_source(relpath, text, cli_globals)),
    ]
    seen_files: set[str] = set()
    for section, occurrences in shape.sections.items():
        if not occurrences:
            continue
        shown = []
        hidden = []
        for occurrence in occurrences:
            if occurrence.shown and occurrence.path not in seen_files:
                shown.append(occurrence)
                if occurrence.origin is Origin.STEP_FILE:
                    seen_files.add(occurrence.path)
            else:
                hidden.append(occurrence)
        heading = f"## {section.capitalize()}"
        if hidden:
            listed = ", ".join(f"`{o.name}` ({_where(shape, o)})" for o in hidden)
            heading += f"\n\nNot shown as cells: {listed}."
        cells.append(_markdown(heading, Role.SECTION, section=section))
        for occurrence in shown:
            cells.extend(_macrostep_cells(shape, occurrence))
    return cells


def _where(shape: RecipeShape, occurrence: Occurrence) -> str:
    if occurrence.shown:
        return "its cells are above"
    if occurrence.path.startswith(BUILTIN_STEPS_DIR.rstrip("/") + "/"):
        return "kameleon_nb"
    return shape.relative(occurrence.path)


def _macrostep_cells(shape: RecipeShape, occurrence: Occurrence) -> list[NotebookCell]:
    doc = occurrence.doc
    heading = f"### {occurrence.name}"
    file = None
    if occurrence.origin is Origin.STEP_FILE and doc is not None:
        file = shape.origin(occurrence.path)
        layout = doc.seq_layout(doc.root, 0)
        if layout is not None:
            header = markdown_of_comments(doc.text[layout.header[0] : layout.header[1]])
            if header:
                heading += f"\n\n{header}"
    cells = [
        _markdown(
            heading,
            Role.MACROSTEP,
            section=occurrence.section,
            macrostep=occurrence.name,
            file=file,
        )
    ]
    origin = file or shape.origin(shape.loaded.abspath)
    kept: list[str] = []
    body_cells: list[NotebookCell] = []
    for microstep in occurrence.shown_microsteps():
        line = MicrostepLine(
            name=microstep.name, section=occurrence.section, macrostep=occurrence.name
        )
        body = render_microstep(microstep.value, microstep.layout, source=origin)
        if body is None or not valid_line(line):
            reason = "no commands" if body is None else "a name a magic line cannot hold"
            kept.append(f"`{microstep.name}` ({reason})")
            continue
        item = microstep.layout
        if item is not None and doc is not None:
            comments = markdown_of_comments(doc.text[item.lead[0] : item.lead[1]])
            if comments:
                body_cells.append(_markdown(comments, Role.COMMENT))
        body_cells.append(
            NotebookCell(
                CellKind.CODE,
                microstep_source(line, body),
                {METADATA_KEY: {"origin": origin, "index": microstep.index}},
            )
        )
    names = [m.name for m in occurrence.microsteps]
    for name in dict.fromkeys(names):
        if occurrence.selection and name not in occurrence.selection:
            kept.append(f"`{name}` (not selected)")
        elif names.count(name) > 1:
            kept.append(f"`{name}` ({names.count(name)} microsteps of that name; one is shown)")
    if kept:
        cells.append(
            _markdown(
                f"Kept from the file, not shown as cells: {', '.join(kept)}.",
                Role.NOTE,
            )
        )
    return cells + body_cells
