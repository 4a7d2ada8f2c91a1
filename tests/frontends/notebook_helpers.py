"""Helpers of the notebook ⇄ recipe tests: plans, the session oracle, tree copies.

The oracle for "what a notebook builds" is the real notebook session
(:class:`kameleon_nb.engine.session.Session`): its recipe cell, then each
``%%microstep`` cell defined in order, exactly as the magics do (without running).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from kameleon_nb.core.model import CheckpointPolicy
from kameleon_nb.core.stepid import chain_step_ids
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.engine.session import Session
from kameleon_nb.frontends.notebook.cells import (
    body_commands,
    magic_of,
    parse_microstep_line,
    parse_recipe_line,
    split_cell,
)
from kameleon_nb.frontends.notebook.files import CellKind, NotebookCell, RecipeExport

#: a fixed uuid, so that recipes using $${kameleon_uuid} get the same ids twice
PIN = {
    "kameleon_uuid": "00000000-0000-4000-8000-00000000cafe",
    "kameleon_short_uuid": "00000000cafe",
}

Plan = list[tuple[str, str]]


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy of a directory (symlinks kept)."""
    shutil.copytree(source, target, symlinks=True)
    for root, dirs, files in os.walk(target):
        for name in dirs + files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    return target


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but notebooks and build dirs) with its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and path.suffix != ".ipynb" and relative.parts[0] != "build":
            files[str(relative)] = path.read_bytes()
    return files


def plan_of(
    path: Path | str, cwd: Path | str, build: Path | str, cli_globals: Mapping[str, str] = {}
) -> Plan:
    """``[(slug, step id)]`` of a recipe file."""
    recipe = open_recipe(
        str(path), cwd=str(cwd), build_path=str(build), cli_globals={**PIN, **cli_globals}
    )
    return [(m.slug, m.step_id) for m in recipe.microsteps()]


def recipe_texts(
    path: Path | str, cwd: Path | str, build: Path | str, cli_globals: Mapping[str, str] = {}
) -> list[tuple[list[str], str]]:
    """Each microstep's command texts and policy (to recompute ids after a move)."""
    recipe = open_recipe(
        str(path), cwd=str(cwd), build_path=str(build), cli_globals={**PIN, **cli_globals}
    )
    return [([c.text for c in m.commands], m.on_checkpoint.value) for m in recipe.microsteps()]


def moves_of(export: RecipeExport, recipe_dir: Path | str) -> dict[str, str]:
    """The paths an export moved: its copies (and their directories), the recipe's dir."""
    moves = {str(recipe_dir): export.directory}
    for file in export.files:
        if file.source is None:
            continue
        source, target = file.source, os.path.join(export.directory, file.path)
        while os.path.basename(source) == os.path.basename(target) and source not in moves:
            moves[source] = target
            source, target = os.path.dirname(source), os.path.dirname(target)
    return moves


def moved_ids(texts: list[tuple[list[str], str]], moves: Mapping[str, str]) -> list[str]:
    """The ids the microsteps get when the paths in their texts move as ``moves`` says.

    A path is replaced only where it ends (not inside a longer path).
    """
    patterns = [
        (re.compile(re.escape(old) + r"(?![\w./-])"), new)
        for old, new in sorted(moves.items(), key=lambda m: -len(m[0]))
    ]
    moved = []
    for commands, policy in texts:
        new_texts = []
        for text in commands:
            moved_text = text
            for pattern, replacement in patterns:
                moved_text = pattern.sub(lambda _m, r=replacement: r, moved_text)
            new_texts.append(moved_text)
        moved.append((new_texts, CheckpointPolicy(policy)))
    return list(chain_step_ids(moved))


def session_plan(
    cells: Sequence[NotebookCell],
    *,
    cwd: Path | str,
    build: Path | str,
    name: str = "notebook",
    cli_globals: Mapping[str, str] = {},
) -> Plan:
    """What running the notebook's cells in a kernel (in ``cwd``) gives."""
    session = None
    for cell in cells:
        if cell.kind is not CellKind.CODE:
            continue
        source = cell.source if cell.source.endswith("\n") else cell.source + "\n"
        first, body = split_cell(source)
        magic = magic_of(first)
        if magic is None:
            continue
        verb, _, rest = magic[1].partition(" ")
        if (magic[0], verb) in (("%%kameleon", "recipe"), ("%kameleon", "load")):
            line = parse_recipe_line("recipe" if magic[0] == "%%kameleon" else "load", rest)
            session = Session.open(
                line.path,
                text=body if magic[0] == "%%kameleon" else None,
                cwd=str(cwd),
                cli_globals={**PIN, **cli_globals, **line.cli_globals},
                build_path=str(build),
            )
        elif magic[0] == "%%microstep":
            if session is None:
                session = Session.scratch(
                    cwd=str(cwd),
                    name=name,
                    cli_globals={**PIN, **cli_globals},
                    build_path=str(build),
                )
            line = parse_microstep_line(magic[1])
            items = body_commands(body, line.context, line.on_checkpoint, source=line.name)
            where = session.place(line.name, line.section, line.macrostep)
            session.define(*where, line.name, items)
    assert session is not None
    return [(m.slug, m.step_id) for m in session.recipe.microsteps()]


def microstep_cells(cells: Sequence[NotebookCell]) -> list[tuple[str, dict[str, object]]]:
    """The ``%%microstep`` cells (source, metadata) of a notebook."""
    return [(c.source, dict(c.metadata)) for c in cells if c.source.startswith("%%microstep")]
