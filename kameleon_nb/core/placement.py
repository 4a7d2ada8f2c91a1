"""Where a microstep defined by name alone goes in a recipe: one rule for every caller.

A notebook cell (``%%microstep NAME``) may name its section and macrostep, or not.
When it does not, it replaces the microstep of that name if the recipe has exactly
one, and otherwise goes to ``setup/notebook``. The live session and the notebook
export both place cells with :func:`place_microstep`, so a cell lands in the same
macrostep in a kernel and in an exported recipe.
"""

from __future__ import annotations

from collections.abc import Iterable

from kameleon_nb.errors import RecipeError

__all__ = ["DEFAULT_MACROSTEP", "DEFAULT_SECTION", "place_microstep"]

#: Where a microstep goes when its definition names no section.
DEFAULT_SECTION = "setup"
#: ... and no macrostep (and the recipe has no microstep of that name).
DEFAULT_MACROSTEP = "notebook"


def place_microstep(
    known: Iterable[tuple[str, str, str]],
    name: str,
    section: str | None = None,
    macrostep: str | None = None,
) -> tuple[str, str]:
    """The ``(section, macrostep)`` of microstep ``name`` among ``known`` places.

    ``known`` are the ``(section, macrostep, name)`` of the recipe's microsteps;
    ``section``/``macrostep`` are what the definition says (``None``: not given).

    Raises:
        RecipeError: the name is in several macrosteps that the definition does not
            tell apart.
    """
    if section is not None and macrostep is not None:
        return section, macrostep
    found = {
        (s, m) for s, m, n in known if n == name and section in (None, s) and macrostep in (None, m)
    }
    if len(found) > 1:
        where = ", ".join(f"{s}/{m}" for s, m in sorted(found))
        raise RecipeError(
            f"Microstep '{name}' is in several macrosteps ({where}); say which with "
            "--section and --macrostep"
        )
    if found:
        return found.pop()
    return section or DEFAULT_SECTION, macrostep or DEFAULT_MACROSTEP
