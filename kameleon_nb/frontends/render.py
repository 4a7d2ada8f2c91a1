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
            lines.extend(
                f"  --> {m.number or m.order} {m.name}" for m in macrostep.all_microsteps()
            )
    lines.append("")
    return lines


def _value(value: object) -> str:
    if isinstance(value, dict | list):
        return ruby_inspect(value)
    return ruby_str(value)


def _thor_say(messages: Sequence[str]) -> list[str]:
    """Lines as Thor's ``say`` prints messages.

    A newline follows each message, unless it ends with a space, a tab or a newline
    (so ``key: `` and its value share a line).
    """
    out: list[str] = []
    for message in messages:
        out.append(message)
        if not message.endswith(("\n", " ", "\t")):
            out.append("\n")
    text = "".join(out)
    return text.removesuffix("\n").split("\n")


def info_lines(recipe: ResolvedRecipe, *, relative: bool = False, cwd: str = "") -> list[str]:
    """The block printed by ``kameleon info``."""
    cwd = cwd or os.getcwd()
    arrow = " -> "

    def shown(paths: Sequence[str]) -> list[str]:
        return [m for p in paths for m in (arrow, _shown_path(p, relative, cwd))]

    messages = [
        "--------------------",
        "[Name]",
        arrow,
        recipe.name,
        "[Path]",
        *shown([recipe.abspath]),
        "[Description]",
        arrow,
        recipe.description,
        "[Parent recipes]",
        *shown(recipe.files.parents),
        "[Steps]",
        *shown(recipe.files.steps),
        "[Data]",
        *shown(recipe.files.data),
        "[Environment scripts]",
        *shown(recipe.files.env),
        "[Variables]",
    ]
    for key in sorted(recipe.global_vars):
        value = _value(recipe.global_vars[key]) or "\n"
        messages.extend([arrow, f"{key}: ", value])
    return _thor_say(messages)
