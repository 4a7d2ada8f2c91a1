"""``%kameleon dag``: the graph of ``kameleon dag``, shown inline as SVG.

``%kameleon dag`` draws the session's recipe (the one ``%kameleon load`` opened);
``%kameleon dag RECIPE [RECIPE ...]`` draws those files; ``--recipes-only`` keeps the
inheritance only. GraphViz's ``dot`` renders it (``dot -Tsvg``).
"""

from __future__ import annotations

import argparse
import os
import shlex

from IPython.display import SVG, display

from kameleon_nb.core.dag import dag_recipe, dag_text
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.engine.graphviz import render
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.errors import KameleonError

__all__ = ["USAGE", "dag_svg", "show_dag"]

USAGE = """\
%kameleon dag [RECIPE ...] [--recipes-only]
                         the recipe's inheritance and microsteps as a graph (GraphViz)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise KameleonError(f"%kameleon dag: {message}; usage: {USAGE.splitlines()[0]}")


def dag_svg(recipes: list[ResolvedRecipe], *, recipes_only: bool, cwd: str) -> str:
    """The SVG text of the graph of ``recipes`` (paths shown relative to ``cwd``)."""
    text = dag_text([dag_recipe(r, cwd) for r in recipes], recipes_only=recipes_only)
    return render(text, "svg").decode("utf-8")


def show_dag(rest: str, session_recipe: ResolvedRecipe | None) -> None:
    """Display the graph of the recipes named in ``rest``, or of the session's recipe."""
    parser = _Parser(prog="%kameleon dag", add_help=False)
    parser.add_argument("recipes", nargs="*")
    parser.add_argument("--recipes-only", action="store_true")
    args = parser.parse_args(shlex.split(rest))
    if args.recipes:
        recipes = [open_recipe(path, build_dir_uuid=False) for path in args.recipes]
    elif session_recipe is not None:
        recipes = [session_recipe]
    else:
        raise KameleonError(
            "%kameleon dag: no recipe to draw: name one (%kameleon dag RECIPE) "
            "or load one first (%kameleon load RECIPE)"
        )
    svg = dag_svg(recipes, recipes_only=args.recipes_only, cwd=os.getcwd())
    display(SVG(data=svg))  # type: ignore[no-untyped-call]
