r"""Paths that a build can give to shell commands, checked before anything runs.

Shipped steps read paths from quoted here-documents, one per line, so a path may hold
blanks, single quotes, ``$``, backquotes, a leading ``-`` or any letter. Three things
cannot work, and are refused with one line that says what to do:

* a newline (it would end the here-document's line);
* a double quote or a backslash: Kameleon substitutes ``$${variables}`` in YAML text,
  where a global such as ``rootfs: $${kameleon_cwd}/rootfs`` sits in a double-quoted
  scalar (upstream's dump), so ``"`` ends the scalar (upstream then fails with a YAML
  error) and ``\\`` starts an escape (upstream silently builds elsewhere);
* bytes that are not UTF-8 (a recipe cannot name them; exit 16, as for any path).
"""

from __future__ import annotations

import os

from kameleon_nb.core.limits import utf8_path
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.errors import BuildError

__all__ = ["check_recipe_paths", "check_shell_path"]

_PATH_VARIABLES = ("kameleon_cwd", "kameleon_recipe_dir", "rootfs")
_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def _problem(value: str) -> str:
    for char, name in (("\n", "a newline"), ("\r", "a carriage return"), ('"', "a double quote")):
        if char in value:
            return f"contains {name}"
    return "contains a backslash" if "\\" in value else ""


def check_shell_path(value: str, what: str) -> None:
    """Refuse a path that no shell command of a build could be given.

    Args:
        value: the path.
        what: what it is, for the message (``build path``, ``kameleon_cwd``...).

    Raises:
        UnreadableFileError: the path's bytes are not UTF-8 (exit 16, as for any path).
        BuildError: the path holds a newline, a double quote or a backslash.
    """
    utf8_path(value, f"the {what}", "rename it, or use -b/--build-path with a UTF-8 path")
    problem = _problem(value)
    if problem:
        raise BuildError(
            f"The path {value!r} ({what}) {problem}: Kameleon recipes cannot carry it into "
            "shell commands; use a path without it (rename the directory, or --build-path)"
        )


def check_recipe_paths(recipe: ResolvedRecipe) -> None:
    """:func:`check_shell_path` on the build dir, the recipe's dir, the rootfs and our data."""
    for name in _PATH_VARIABLES:
        value = recipe.global_vars.get(name)
        if isinstance(value, str):
            check_shell_path(value, name)
    check_shell_path(_DATA_DIR, "kameleon_nb's data directory")
