"""Plain-text renderings shared by the console and the notebook: plans, tables, info.

Formats follow Kameleon 2.11.0's output byte for byte (semantics §6.8, §11).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kameleon_nb.core.model import Microstep, ResolvedRecipe
from kameleon_nb.core.variables import ruby_inspect, ruby_str

__all__ = ["checkpoint_table", "dryrun_lines", "info_lines"]

_ID_WIDTH = 20
_STEP_WIDTH = 60


def _cell(text: str, width: int) -> str:
    if len(text) > width:
        text = text[: width - 3] + "..."
    return text.ljust(width)


def checkpoint_table(rows: Sequence[Microstep]) -> list[str]:
    """The ``ID | STEP`` table of ``build -l`` (trailing spaces kept, as upstream).

    >>> print("|".join(checkpoint_table([])))
    ID | STEP
    """
    ids = [m.step_id for m in rows]
    slugs = [m.slug for m in rows]
    id_width = min(max([2, *map(len, ids)]), _ID_WIDTH)
    step_width = min(max([4, *map(len, slugs)]), _STEP_WIDTH)
    lines = [f"{_cell('ID', id_width)} | {_cell('STEP', step_width)}"]
    if rows:
        lines.insert(1, f"{'-' * id_width}-|-{'-' * step_width}")
    lines.extend(
        f"{_cell(i, id_width)} | {_cell(s, step_width)}" for i, s in zip(ids, slugs, strict=True)
    )
    return lines


def _shown_path(path: str, relative: bool, cwd: str) -> str:
    return os.path.relpath(path, cwd) if relative else path


def dryrun_lines(recipe: ResolvedRecipe, *, relative: bool = False, cwd: str = "") -> list[str]:
    """The plan printed by ``kameleon build --dryrun``."""
    cwd = cwd or os.getcwd()
    lines = ["", f"{recipe.name} ({_shown_path(recipe.abspath, relative, cwd)})"]
    for section in recipe.sections:
        lines.append(f"[{section.name.capitalize()}]")
        for macrostep in section.macrosteps:
            where = (
                "internal" if macrostep.path is None else _shown_path(macrostep.path, relative, cwd)
            )
            lines.append(f"  {macrostep.name} ({where})")
            lines.extend(f"  --> {m.order} {m.name}" for m in macrostep.all_microsteps())
    lines.append("")
    return lines


def _value(value: object) -> str:
    if isinstance(value, dict | list):
        return ruby_inspect(value)
    return ruby_str(value)


def info_lines(recipe: ResolvedRecipe, *, relative: bool = False, cwd: str = "") -> list[str]:
    """The block printed by ``kameleon info``."""
    cwd = cwd or os.getcwd()

    def shown(path: str) -> str:
        return _shown_path(path, relative, cwd)

    lines = [
        "--------------------",
        "[Name]",
        f" -> {recipe.name}",
        "[Path]",
        f" -> {shown(recipe.abspath)}",
        "[Description]",
    ]
    if recipe.description:
        lines.append(f" -> {recipe.description}")
    lines.append("[Parent recipes]")
    lines.extend(f" -> {shown(p)}" for p in recipe.files.parents)
    lines.append("[Steps]")
    lines.extend(f" -> {shown(p)}" for p in recipe.files.steps)
    lines.append("[Data]")
    lines.extend(f" -> {shown(p)}" for p in recipe.files.data)
    lines.append("[Environment scripts]")
    lines.extend(f" -> {shown(p)}" for p in recipe.files.env)
    lines.append("[Variables]")
    lines.extend(f" -> {k}: {_value(recipe.global_vars[k])}" for k in sorted(recipe.global_vars))
    return lines
