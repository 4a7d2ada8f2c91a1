"""Budgets: how much a recipe may make kameleon_nb read and produce.

Upstream bounds nothing: an alias that calls another ten times, level after level, or
a variable defined as twice the one before, grows until memory runs out, and a step
file that is ``/dev/zero`` is read for ever. kameleon_nb stops each of these with one
``Error:`` line naming the file, in well under a second.

Every budget is far above what real recipes use. The largest figures in the recorded
collections (``tests/data/corpus/``, 142 recipes) are: a 12.5 KB YAML file, 286 YAML
nodes in a document, 57 variable references in one text, a 7.7 KB text after
substitution, 141 commands after alias expansion and 51 KB of substituted text for
a whole recipe.
"""

from __future__ import annotations

import re

from kameleon_nb.errors import BuildError, ExpansionLimitError, UnreadableFileError

__all__ = [
    "MAX_EXPANDED_CHARS",
    "MAX_EXPANSIONS",
    "MAX_FILE_BYTES",
    "MAX_NODES_READ",
    "MAX_TEXT_CHARS",
    "MAX_TEXT_EXPANSIONS",
    "MAX_YAML_NODES",
    "Budget",
    "check_yaml_nodes",
    "is_utf8",
    "shell_safe_path",
    "shown_path",
    "too_many_nodes",
    "utf8_path",
]

_MIB = 2**20

#: bytes of one file a recipe reads (recipe, parent, step, aliases, env, checkpoint)
MAX_FILE_BYTES = 16 * _MIB
#: characters of one text (a command, the globals' dump) once expanded
MAX_TEXT_CHARS = 2 * _MIB
#: characters that expansions produce, summed over a whole recipe
MAX_EXPANDED_CHARS = 64 * _MIB
#: variable references replaced, or alias instances made, in one text
MAX_TEXT_EXPANSIONS = 10_000
#: variable references replaced plus alias instances made, over a whole recipe
MAX_EXPANSIONS = 1_000_000
#: nodes of one YAML document once its aliases (``*name``) are followed
MAX_YAML_NODES = 100_000
#: YAML nodes (values, lists, mappings) in the files one recipe reads, each file
#: counted every time it is read: they become the recipe's data (about 500 bytes a node
#: at most), so the files' sizes alone do not bound it
MAX_NODES_READ = 1_000_000

_LIMITS_HINT = "real recipes stay far below it (README, 'Limits')"


class Budget:
    """What the expansions of one recipe have spent so far.

    One budget follows a recipe through its resolution, so that many texts just under
    a limit cannot add up to an unbounded total.
    """

    __slots__ = ("chars", "expansions", "in_text", "nodes_read")

    def __init__(self, nodes_read: int = 0) -> None:
        self.chars = 0
        self.expansions = 0
        self.in_text = 0
        #: YAML nodes of the recipe's files read so far (:data:`MAX_NODES_READ`)
        self.nodes_read = nodes_read

    def nodes_left(self) -> int:
        """How many more YAML nodes the recipe's files may hold."""
        return MAX_NODES_READ - self.nodes_read

    def new_text(self) -> None:
        """Start counting the expansions of one more text."""
        self.in_text = 0

    def spend(self, source: str, what: str, chars: int, *, count: bool = True) -> None:
        """Count one expansion (a variable replaced, an alias instance) of ``chars``.

        With ``count=False``, only the characters are counted (a text made again from
        expanded parts).

        Raises:
            ExpansionLimitError: the text or the recipe has spent more than its budget.
        """
        self.expansions += count
        self.in_text += count
        self.chars += chars
        if self.in_text > MAX_TEXT_EXPANSIONS:
            raise ExpansionLimitError(
                f"{source}: {what} expand more than {MAX_TEXT_EXPANSIONS:,} times in one text "
                f"(one that uses another several times, level after level?); kameleon_nb "
                f"stops there, and {_LIMITS_HINT}"
            )
        if self.expansions > MAX_EXPANSIONS:
            raise ExpansionLimitError(
                f"{source}: {what} expand more than {MAX_EXPANSIONS:,} times in all; "
                f"kameleon_nb stops there, and {_LIMITS_HINT}"
            )
        if self.chars > MAX_EXPANDED_CHARS:
            raise ExpansionLimitError(
                f"{source}: {what} expand to more than {MAX_EXPANDED_CHARS // _MIB} MiB of "
                f"text in all; kameleon_nb stops there, and {_LIMITS_HINT}"
            )

    @staticmethod
    def check_text(source: str, what: str, size: int) -> None:
        """Refuse one text that would grow beyond :data:`MAX_TEXT_CHARS`."""
        if size > MAX_TEXT_CHARS:
            raise ExpansionLimitError(
                f"{source}: {what} expand to a text of more than {MAX_TEXT_CHARS // _MIB} MiB; "
                f"kameleon_nb stops there, and {_LIMITS_HINT}"
            )


def too_many_nodes(source: str) -> ExpansionLimitError:
    """The error for a file that takes the recipe's YAML nodes past :data:`MAX_NODES_READ`."""
    return ExpansionLimitError(
        f"{source}: the files of this recipe, up to this one, hold more than "
        f"{MAX_NODES_READ:,} YAML nodes (values, lists, mappings; a step file used twice "
        f"counts twice); kameleon_nb stops there, and {_LIMITS_HINT}"
    )


def check_yaml_nodes(data: object, source: str) -> None:
    """Refuse a YAML document whose aliases make it huge or recursive.

    A loaded document shares the node of an anchor among its aliases, so nine anchors
    of nine aliases each (a "billion laughs") load in no time, then explode when
    anything walks them. This counts the nodes as a walk would see them, visiting
    each shared node once.

    Raises:
        ExpansionLimitError: more than :data:`MAX_YAML_NODES` nodes, or an alias
            inside the node it refers to.
    """
    if not isinstance(data, list | dict):
        return
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[list[object] | dict[object, object], bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        values = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            size = 1 + (len(node) if isinstance(node, dict) else 0)  # keys are scalars
            size += sum(sizes.get(id(v), 1) for v in values)
            if size > MAX_YAML_NODES:
                raise ExpansionLimitError(
                    f"{source}: YAML aliases (*name) expand to more than {MAX_YAML_NODES:,} "
                    f"nodes (an anchor bomb?); kameleon_nb refuses it, and {_LIMITS_HINT}"
                )
            sizes[key] = size
            open_nodes.discard(key)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ExpansionLimitError(
                f"{source}: a YAML alias (*name) refers to a node that contains it; a recipe "
                "cannot be recursive"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend(
            (v, False) for v in values if isinstance(v, list | dict) and id(v) not in sizes
        )


_SURROGATE_RE = re.compile("[\udc80-\udcff]")


def shown_path(text: str) -> str:
    r"""A path (or a message with paths) as it can be printed: undecodable bytes escaped.

    Python keeps a file name's bytes that are not UTF-8 as lone surrogates; they are
    shown as ``\xNN``.

    >>> shown_path("/tmp/caf\udce9.yaml")
    '/tmp/caf\\xe9.yaml'
    """
    return _SURROGATE_RE.sub(lambda m: f"\\x{ord(m.group(0)) - 0xDC00:02x}", text)


def is_utf8(text: str) -> bool:
    """Whether ``text`` (a path, an argument) came from bytes that are valid UTF-8."""
    return _SURROGATE_RE.search(text) is None


def utf8_path(
    path: str,
    what: str = "the path",
    remedy: str = "rename it, or run kameleon from a directory whose path is UTF-8",
) -> None:
    """Refuse a path whose bytes are not UTF-8 (recipes are UTF-8 text through and through).

    Raises:
        UnreadableFileError: naming the path, its bad bytes escaped, and what to do.
    """
    if is_utf8(path):
        return
    raise UnreadableFileError(
        f"{shown_path(path)}: {what} is not valid UTF-8 (the bytes shown as \\xNN); {remedy}"
    )


_UNSAFE = (
    ("\n", "a newline"),
    ("\r", "a carriage return"),
    ('"', "a double quote"),
    ("\\", "a backslash"),
)


def shell_safe_path(path: str, what: str) -> None:
    r"""Refuse a path that substitution cannot carry into a recipe's texts and shells.

    Variables are substituted in YAML text (upstream's way, which the ids follow), where
    a global such as ``rootfs: $${kameleon_cwd}/rootfs`` sits in a double-quoted scalar:
    a ``"`` ends it (upstream then fails with a YAML error) and a ``\`` starts an escape
    (upstream silently builds elsewhere). kameleon_nb's own steps read paths from
    here-documents, one per line, which a newline would split. Any other character
    (blanks, ``'``, ``$``, backquotes, a leading ``-``) works.

    Raises:
        BuildError: the path holds a newline, a carriage return, ``"`` or ``\``.
    """
    problem = next((name for char, name in _UNSAFE if char in path), None)
    if problem is not None:
        raise BuildError(
            f"The path {shown_path(path)!r} ({what}) contains {problem}: Kameleon recipes "
            "cannot carry it into shell commands; use a path without it (rename the "
            "directory, or --build-path)"
        )
