"""The GraphViz graph of ``kameleon dag``: recipe inheritance and the microstep sequence.

:func:`dag_text` writes the DOT text Kameleon 2.11.0 hands to ``dot`` (ruby-graphviz's
layout of it: statements in the order they were added, a subgraph written where it
was created). ``dot`` then renders it (``engine.graphviz``); the ``none`` format is
this text itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.rubytypes import inspect_str

__all__ = ["FORMATS", "DagRecipe", "choose_format", "dag_recipe", "dag_text"]

#: the formats upstream accepts (ruby-graphviz's list)
FORMATS = (
    "bmp",
    "canon",
    "dot",
    "xdot",
    "cmap",
    "dia",
    "eps",
    "fig",
    "gd",
    "gd2",
    "gif",
    "gtk",
    "hpgl",
    "ico",
    "imap",
    "cmapx",
    "imap_np",
    "cmapx_np",
    "ismap",
    "jpeg",
    "jpg",
    "jpe",
    "mif",
    "mp",
    "pcl",
    "pdf",
    "pic",
    "plain",
    "plain-ext",
    "png",
    "ps",
    "ps2",
    "svg",
    "svgz",
    "tga",
    "tiff",
    "tif",
    "vml",
    "vmlz",
    "vrml",
    "vtx",
    "wbmp",
    "xlib",
    "none",
)

_COLORSCHEME = "set18"
_PLAIN_ID = re.compile(r"[a-zA-Z_]+[a-zA-Z0-9_]*")
_RESERVED = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
_ESCAPES = {'"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def _identifier(name: str) -> str:
    """A node or graph name as ruby-graphviz writes it (quoted unless a plain word).

    >>> _identifier("end"), _identifier("a.yaml"), _identifier("node")
    ('end', '"a.yaml"', '"node"')
    """
    if _PLAIN_ID.fullmatch(name) and name.lower() not in _RESERVED:
        return name
    return '"' + name.replace('"', '\\"').replace("\n", "\\n") + '"'


def _value(value: str) -> str:
    r"""An attribute value: Ruby's ``inspect`` of it, backslashes left single.

    >>> print(_value('say "hi"'))
    "say \"hi\""
    """
    return inspect_str(value, _ESCAPES)


def _attributes(attrs: dict[str, str]) -> str:
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k} = {_value(v)}" for k, v in attrs.items()) + "]"


@dataclass
class _Graph:
    name: str
    items: list[str | _Graph] = field(default_factory=list)

    def attribute(self, key: str, value: str) -> None:
        self.items.append(f"{key} = {_value(value)};")

    def node(self, name: str, attrs: dict[str, str]) -> None:
        self.items.append(f"{_identifier(name)}{_attributes({'label': name, **attrs})};")

    def edge(self, tail: str, head: str, attrs: dict[str, str]) -> None:
        self.items.append(f"  {_identifier(tail)} -> {_identifier(head)}{_attributes(attrs)};")

    def subgraph(self, name: str) -> _Graph:
        graph = _Graph(name)
        self.items.append(graph)
        return graph

    def lines(self, keyword: str) -> list[str]:
        out = [f"{keyword} {_identifier(self.name)} {{"]
        for item in self.items:
            out.extend(item.lines("subgraph") if isinstance(item, _Graph) else [item])
        out.append("}")
        return out


@dataclass(frozen=True, slots=True)
class DagRecipe:
    """What the graph shows of one recipe, its paths relative to the current directory.

    Attributes:
        path: the recipe file.
        parents: the files it extends, nearest first (``extended`` is the first).
        sections: per section, its macrosteps as ``(shown name, microstep names)``.
    """

    path: str
    parents: tuple[str, ...]
    sections: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]


def dag_recipe(recipe: ResolvedRecipe, cwd: str) -> DagRecipe:
    """The graph's view of a resolved recipe."""

    def shown(path: str) -> str:
        return os.path.relpath(path, cwd)

    sections = []
    for section in recipe.sections:
        macrosteps = []
        for macrostep in section.macrosteps:
            if macrostep.path is None:
                name = macrostep.name
            else:
                name = shown(macrostep.path).removesuffix(".yaml").removeprefix("steps/")
            macrosteps.append((name, tuple(m.name for m in macrostep.all_microsteps())))
        sections.append((section.name, tuple(macrosteps)))
    parents = tuple(dict.fromkeys(p for p in recipe.files.parents if p != recipe.abspath))
    return DagRecipe(shown(recipe.abspath), tuple(map(shown, parents)), tuple(sections))


def dag_text(recipes: Sequence[DagRecipe], *, recipes_only: bool) -> str:
    """The DOT text of the graph of ``recipes``, each in its own colour (1 to 8)."""
    root = _Graph("G")
    end_added = False
    for index, recipe in enumerate(recipes):
        colour = {"colorscheme": _COLORSCHEME, "color": str(index % 8 + 1)}
        recipes_graph = root.subgraph("cluster R:recipes")
        recipes_graph.attribute("label", "Recipes")
        recipes_graph.attribute("style", "dashed")
        recipes_graph.node(recipe.path, {"shape": "Mdiamond", **colour})
        for position, parent in enumerate(recipe.parents):
            recipes_graph.node(parent, {"shape": "Mdiamond"})
            root.edge(parent, recipe.path, colour if position == 0 else {"style": "dashed"})
        if recipes_only:
            continue
        previous = recipe.path
        for section, macrosteps in recipe.sections:
            section_graph = root.subgraph(f"cluster S:{section}")
            section_graph.attribute("label", section.capitalize())
            for macrostep, microsteps in macrosteps:
                macrostep_graph = section_graph.subgraph(f"cluster M:{macrostep}")
                macrostep_graph.attribute("label", macrostep)
                macrostep_graph.attribute("style", "filled")
                macrostep_graph.attribute("color", "gray")
                for microstep in microsteps:
                    node = f"m:{macrostep}/{microstep}"
                    macrostep_graph.items.append(
                        f"{_identifier(node)}"
                        f"{_attributes({'label': microstep, 'style': 'filled', 'color': 'white'})};"
                    )
                    root.edge(previous, node, colour)
                    previous = node
        if not end_added:
            root.node("end", {"label": "END", "shape": "Msquare"})
            end_added = True
        root.edge(previous, "end", colour)
    return "\n".join(root.lines("digraph")) + "\n"


def choose_format(requested: str | None, file: str) -> tuple[str, str | None]:
    """The format to write, and upstream's warning when ``--format`` is unknown.

    >>> choose_format(None, "graph.svg"), choose_format("bad", "g.png")
    (('svg', None), ('canon', 'Unknown GraphViz format bad, fall back to canon'))
    """
    if requested:
        if requested in FORMATS:
            return requested, None
        return "canon", f"Unknown GraphViz format {requested}, fall back to canon"
    match = re.match(r"^.+\.([^.]+)$", file)
    if match and match.group(1) in FORMATS:
        return match.group(1), None
    return "canon", None
