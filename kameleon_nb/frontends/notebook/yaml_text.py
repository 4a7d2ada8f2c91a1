"""YAML text surgery for the notebook converter: read microsteps and comments, splice edits.

Recipe and step files are edited as *text*: the items of a block sequence (the
microsteps of a step file, of an embedded macrostep, the entries of a section) are
located with PyYAML's node marks, and only the items that change are rewritten, so
everything else stays byte for byte as it was (comments, quoting, blank lines, key
order, anchors). Each result is parsed again and compared with the data it must hold;
when the splice cannot be done or does not give that data, the edit falls back to
ruamel.yaml's round-trip mode, and last to a plain dump of the data (comments lost),
each checked the same way.

Vocabulary: an *item* is one entry of a block sequence (``- name: [...]``). Its *lead*
is the blank and comment lines just above it that are not indented deeper than the
sequence; those comments are what the notebook shows as a Markdown cell.
"""

from __future__ import annotations

import bisect
import copy
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from kameleon_nb.core.loader import parse_yaml
from kameleon_nb.errors import ExportError

__all__ = [
    "Edited",
    "ItemLayout",
    "NewItem",
    "ScalarEdit",
    "SeqEdit",
    "SeqLayout",
    "YamlDoc",
    "comment_lines",
    "edit_yaml",
    "emit_items",
    "emit_scalar",
    "markdown_of_comments",
    "same_data",
]

PathItem = str | int
Path = tuple[PathItem, ...]


# ------------------------------------------------------------------------- data


def same_data(left: object, right: object) -> bool:
    """Whether two parsed YAML values are the same, types and key order included.

    ``True == 1`` in Python, but ``exec_in: true`` and ``exec_in: 1`` are different
    commands with different checkpoint ids, so this compares types strictly.

    >>> same_data({"exec_in": True}, {"exec_in": 1})
    False
    >>> same_data([{"a": "x", "b": None}], [{"a": "x", "b": None}])
    True
    """
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        assert isinstance(right, dict)
        left_keys, right_keys = list(left), list(right)
        return len(left_keys) == len(right_keys) and all(
            same_data(a, b) and same_data(left[a], right[b])
            for a, b in zip(left_keys, right_keys, strict=True)
        )
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(
            same_data(a, b) for a, b in zip(left, right, strict=True)
        )
    return left == right


# ---------------------------------------------------------------------- comments


def markdown_of_comments(text: str) -> str:
    r"""The comment lines of a piece of YAML as Markdown (``# `` removed, outer blanks cut).

    Lines that are not comments (``---``, content) are ignored.

    >>> markdown_of_comments("\n# Installs nginx.\n#\n# Then `curl` it.\n---\n")
    'Installs nginx.\n\nThen `curl` it.'
    """
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            body = stripped[1:]
            out.append(body[1:] if body.startswith(" ") else body)
        elif not stripped.strip() and out:
            out.append("")
    return "\n".join(out).strip("\n")


def comment_lines(markdown: str, indent: str) -> str:
    r"""Markdown as YAML comment lines at an indentation (each line ends with a newline).

    >>> comment_lines("Installs nginx.\n\nThen curl it.", "  ")
    '  # Installs nginx.\n  #\n  # Then curl it.\n'
    """
    markdown = markdown.strip("\n")
    if not markdown.strip():
        return ""
    return "".join(
        f"{indent}# {line}\n" if line.strip() else f"{indent}#\n" for line in markdown.splitlines()
    )


def _replace_comments(region: str, markdown: str, indent: str, *, at_end: bool) -> str:
    """A region of blank and comment lines with its comment block replaced.

    The block runs from the first to the last comment line (blank lines inside it
    go with it); other lines stay. A region without comments gets the new ones just
    before its end (``at_end``: right above the item that follows) or at its start.
    """
    lines = region.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    marks = [i for i, line in enumerate(lines) if line.lstrip().startswith("#")]
    new = comment_lines(markdown, indent)
    if marks:
        return "".join(lines[: marks[0]]) + new + "".join(lines[marks[-1] + 1 :])
    if at_end:
        return "".join(lines) + new
    return new + "".join(lines)


# ------------------------------------------------------------------------ layout


@dataclass(frozen=True, slots=True)
class ItemLayout:
    """Where one item of a block sequence is, and what it holds.

    Attributes:
        key: the item's single key as the loader names it (``str(key)``), ``None`` when
            the item is not a one-key mapping (a bare name, or several keys).
        value: the item's parsed value (the whole item when ``key`` is ``None``).
        start: offset of the start of the line of its ``-``.
        end: offset just after its last content line.
        lead: ``(start, end)`` of the blank and comment lines above it.
        key_line_end: offset just after the line of its ``-``.
        body: the value written as a block list on the following lines, dedented to
            column 0, when it reads back as the same data on its own; else ``None``.
        has_comment: whether a comment sits anywhere between ``start`` and ``end``.
    """

    key: str | None
    value: object
    start: int
    end: int
    lead: tuple[int, int]
    key_line_end: int
    body: str | None
    has_comment: bool


@dataclass(frozen=True, slots=True)
class SeqLayout:
    """A block sequence: its items, the comments above them, and what follows.

    Attributes:
        column: the column of the items' ``-``.
        header: ``(start, end)`` of a file's header comments (root sequences only;
            empty otherwise). It is split from the first item's lead at the last blank
            line when the first item is a microstep (a list value).
        items: the items in order.
        tail: offset just after the last item's content (where new items go).
    """

    column: int
    header: tuple[int, int]
    items: tuple[ItemLayout, ...]
    tail: int


class YamlDoc:
    """A YAML text with its node tree, its comments and its line structure."""

    def __init__(self, text: str, source: str) -> None:
        """Parse ``text``.

        Raises:
            YamlError: the text is not valid YAML (the message names ``source``).
        """
        self.text = text
        self.source = source
        self.data = parse_yaml(text, source=source)
        loader = yaml.SafeLoader(text)
        self._loader = loader
        self.root: yaml.Node | None = loader.get_single_node()
        spans = [
            (t.start_mark.index, t.end_mark.index)
            for t in yaml.scan(text, Loader=yaml.SafeLoader)
            if isinstance(t, yaml.ScalarToken)
        ]
        starts = [s for s, _ in spans]
        self._comments: list[int] = []
        for match in re.finditer("#", text):
            pos = match.start()
            index = bisect.bisect_right(starts, pos) - 1
            if index >= 0 and spans[index][0] <= pos < spans[index][1]:
                continue
            if pos == 0 or text[pos - 1] in " \t\r\n":
                self._comments.append(pos)

    # ---------------------------------------------------------------- basics
    def value(self, node: yaml.Node) -> object:
        """The parsed value of a node (PyYAML's safe constructor)."""
        return self._loader.construct_object(node, deep=True)

    def line_start(self, pos: int) -> int:
        """Offset of the start of the line holding ``pos``."""
        return self.text.rfind("\n", 0, pos) + 1

    def line_end(self, pos: int) -> int:
        """Offset just after the line holding ``pos`` (after its newline)."""
        index = self.text.find("\n", pos)
        return len(self.text) if index < 0 else index + 1

    def has_comment(self, start: int, end: int) -> bool:
        """Whether a comment starts between ``start`` and ``end``."""
        index = bisect.bisect_left(self._comments, start)
        return index < len(self._comments) and self._comments[index] < end

    def _lines(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        pos = start
        while pos < end:
            stop = min(self.line_end(pos), end)
            yield pos, stop
            pos = stop

    def _is_low_comment_or_blank(self, start: int, end: int, column: int) -> bool:
        line = self.text[start:end]
        stripped = line.lstrip(" \t")
        if not stripped.strip():
            return True
        first = start + len(line) - len(stripped)
        return first - start <= column and self.has_comment(first, first + 1)

    # ---------------------------------------------------------------- paths
    def node_at(self, path: Path) -> tuple[yaml.Node | None, yaml.Node | None]:
        """The node at ``path`` (mapping keys compared as strings, last duplicate wins).

        Returns:
            ``(node, key_node)``: ``key_node`` is the key whose value ``node`` is (for a
            path ending in a key), ``(None, None)`` when the path does not exist.
        """
        node, key_node = self.root, None
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, yaml.SequenceNode) or part >= len(node.value):
                    return None, None
                node, key_node = node.value[part], None
                continue
            if not isinstance(node, yaml.MappingNode):
                return None, None
            pairs = [(k, v) for k, v in node.value if _as_key(self.value(k)) == part]
            if not pairs:
                return None, None
            key_node, node = pairs[-1]
        return node, key_node

    def is_flow(self, node: yaml.Node) -> bool:
        """Whether a collection node is written in flow style (``[...]``, ``{...}``)."""
        pos = node.start_mark.index
        text = self.text
        while pos < len(text) and text[pos] in "&!":  # skip an anchor or a tag
            while pos < len(text) and text[pos] not in " \t\r\n":
                pos += 1
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
        return pos < len(text) and text[pos] in "[{"

    def _dash(self, node: yaml.Node) -> int | None:
        """Offset of the ``-`` of a block sequence item (first on its line), else None."""
        pos = node.start_mark.index - 1
        while pos >= 0 and self.text[pos] in " \t\r\n":
            pos -= 1
        if pos < 0 or self.text[pos] != "-":
            return None
        if self.text[self.line_start(pos) : pos].strip():
            return None
        return pos

    def seq_layout(self, node: yaml.Node | None, region_start: int) -> SeqLayout | None:
        """The layout of a block sequence, or ``None`` if it is not one we can splice.

        Args:
            node: the sequence node.
            region_start: where the region of this sequence begins (0 for a file's root
                list, the end of the line of the key whose value it is otherwise).
        """
        if not isinstance(node, yaml.SequenceNode) or not node.value or self.is_flow(node):
            return None
        dashes = [self._dash(item) for item in node.value]
        if any(d is None for d in dashes):
            return None
        starts = [self.line_start(d) for d in dashes if d is not None]
        columns = {d - s for d, s in zip(dashes, starts, strict=True) if d is not None}
        if len(columns) != 1 or starts[0] < region_start:
            return None
        column = columns.pop()
        bound = node.end_mark.index
        if not self.text[self.line_start(bound) : bound].strip():
            bound = self.line_start(bound)
        bound = max(bound, starts[-1])
        items: list[ItemLayout] = []
        previous_end = region_start
        for index, item in enumerate(node.value):
            start = starts[index]
            limit = starts[index + 1] if index + 1 < len(starts) else bound
            end = self.line_end(start)
            for line_start, line_end in self._lines(start, limit):
                if not self._is_low_comment_or_blank(line_start, line_end, column):
                    end = line_end
            items.append(self._item(item, start, end, (previous_end, start), column))
            previous_end = end
        header = (region_start, region_start)
        if region_start == 0 and self.root is node:
            head_end = items[0].lead[1]
            split = head_end
            if isinstance(items[0].value, list):
                blanks = [s for s, e in self._lines(0, head_end) if not self.text[s:e].strip()]
                split = self.line_end(blanks[-1]) if blanks else head_end
            header = (0, split)
            items[0] = _with_lead(items[0], (split, head_end))
        return SeqLayout(column=column, header=header, items=tuple(items), tail=previous_end)

    def _item(
        self, node: yaml.Node, start: int, end: int, lead: tuple[int, int], column: int
    ) -> ItemLayout:
        key_line_end = self.line_end(start)
        common = {
            "start": start,
            "end": end,
            "lead": lead,
            "key_line_end": key_line_end,
            "has_comment": self.has_comment(start, end),
        }
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            return ItemLayout(key=None, value=self.value(node), body=None, **common)  # type: ignore[arg-type]
        ((key_node, value_node),) = node.value
        value = self.value(value_node)
        body = None
        if (
            isinstance(value_node, yaml.SequenceNode)
            and value_node.value
            and not self.is_flow(value_node)
            and value_node.start_mark.index >= key_node.end_mark.index  # not an alias
            and value_node.value[0].start_mark.index >= key_line_end
        ):
            body = self._body_text(value_node, key_line_end, end, value)
        return ItemLayout(key=_as_key(self.value(key_node)), value=value, body=body, **common)  # type: ignore[arg-type]

    def _body_text(self, node: yaml.Node, start: int, end: int, value: object) -> str | None:
        dash = self._dash(node.value[0])
        if dash is None:
            return None
        indent = dash - self.line_start(dash)
        lines = []
        for line_start, line_end in self._lines(start, end):
            line = self.text[line_start:line_end]
            spaces = len(line) - len(line.lstrip(" "))
            lines.append(line[min(spaces, indent) :])
        body = "".join(lines)
        if not body.endswith("\n"):
            body += "\n"
        try:
            again = parse_yaml(body, source=self.source)
        except Exception:
            return None
        return body if same_data(again, value) else None


def _with_lead(item: ItemLayout, lead: tuple[int, int]) -> ItemLayout:
    return ItemLayout(
        key=item.key,
        value=item.value,
        start=item.start,
        end=item.end,
        lead=lead,
        key_line_end=item.key_line_end,
        body=item.body,
        has_comment=item.has_comment,
    )


def _as_key(value: object) -> str:
    """A mapping key as the recipe loader names it."""
    return str(value)


# ------------------------------------------------------------------------ emitting


def _ruamel() -> Any:
    from ruamel.yaml import YAML  # noqa: PLC0415 - only export needs it

    dumper = YAML(typ="rt")
    dumper.version = (1, 1)  # quote what PyYAML (YAML 1.1) would read as a non-string
    dumper.width = 4096
    dumper.indent(mapping=2, sequence=2, offset=0)
    dumper.allow_duplicate_keys = True
    dumper.preserve_quotes = True
    return dumper


def _dump(data: object) -> str:
    stream = io.StringIO()
    _ruamel().dump(data, stream)
    text = stream.getvalue()
    return re.sub(r"\A%YAML 1\.1\n---\n?", "", text)


def _literal_ok(value: str) -> bool:
    from ruamel.yaml.scalarstring import LiteralScalarString  # noqa: PLC0415

    try:
        again = parse_yaml(_dump([LiteralScalarString(value)]), source="<literal>")
    except Exception:
        return False
    return same_data(again, [value])


def _styled(value: object, *, literal: bool) -> object:
    """Plain data with multi-line strings as ``|`` blocks (when they read back exactly)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq  # noqa: PLC0415
    from ruamel.yaml.scalarstring import LiteralScalarString  # noqa: PLC0415

    if isinstance(value, str):
        if literal and "\n" in value.rstrip("\n") and _literal_ok(value):
            return LiteralScalarString(value)
        return value
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = _styled(item, literal=literal)
        return mapping
    if isinstance(value, list):
        return CommentedSeq(_styled(item, literal=literal) for item in value)
    return value


def _emit(data: object) -> str:
    for literal in (True, False):
        text = _dump(_styled(copy.deepcopy(data), literal=literal))
        try:
            again = parse_yaml(text, source="<emitted>")
        except Exception:
            continue
        if same_data(again, data):
            return text
    raise ExportError(f"kameleon_nb cannot write this value as YAML: {data!r}")


def emit_items(items: Sequence[object]) -> str:
    r"""Items as a YAML block list at column 0 (multi-line strings as ``|`` blocks).

    >>> print(emit_items([{"exec_in": "echo a\necho b\n"}, {"exec_out": "yes"}]), end="")
    - exec_in: |
        echo a
        echo b
    - exec_out: 'yes'
    """
    return _emit(list(items))


def emit_scalar(value: str) -> str:
    """A string as a one-line YAML scalar (plain when it reads back, quoted otherwise).

    >>> emit_scalar("../base/base.yaml"), emit_scalar("on"), emit_scalar("a: b")
    ('../base/base.yaml', "'on'", "'a: b'")
    """
    text = _emit([value])
    if "\n" in text.rstrip("\n") or not text.startswith("- "):
        raise ExportError(f"kameleon_nb cannot write {value!r} on one line of YAML")
    return text[2:].rstrip("\n")


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line not in ("\n", "") else line for line in text.splitlines(True))


# ------------------------------------------------------------------------ editing


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to write into a sequence: a microstep (``key: [...]``) or a bare name.

    Attributes:
        key: the microstep's (or the entry's) name.
        value: the microstep's body items; ``None`` writes a bare ``- key`` entry.
        text: the body as YAML text (a block list at column 0), written as is; when
            ``None`` it is generated from ``value``.
        comments: Markdown for the comment lines above the item (``None``: keep the
            ones it has, none for a new item).
    """

    key: str
    value: list[object] | None = None
    text: str | None = None
    comments: str | None = None


@dataclass(slots=True)
class SeqEdit:
    """Changes to one sequence of a file.

    Attributes:
        path: where the sequence is (mapping keys, list indexes); ``()`` for the root.
        replace: item index → its new content (the item keeps its key).
        comments: item index → Markdown for its comments (``""`` removes them).
        append: new items, written after the last one.
        header: Markdown for a file's header comments (root sequences).
    """

    path: Path
    replace: dict[int, NewItem] = field(default_factory=dict)
    comments: dict[int, str] = field(default_factory=dict)
    append: list[NewItem] = field(default_factory=list)
    header: str | None = None

    @property
    def changes_data(self) -> bool:
        """Whether the edit changes what the file holds (not only its comments)."""
        return bool(self.replace or self.append)


@dataclass(frozen=True, slots=True)
class ScalarEdit:
    """A new string value at ``path`` (e.g. a re-pointed ``extend``)."""

    path: Path
    value: str


@dataclass(frozen=True, slots=True)
class Edited:
    """An edited file: its text, and why comments or layout could not all be kept."""

    text: str
    note: str | None = None


class _Fallback(Exception):
    """The text splice cannot express an edit."""


#: a replacement of ``text[start:end]``; at one offset, insertions of lower order go first
_Span = tuple[int, int, int, str]


def edit_yaml(
    text: str, source: str, seqs: Sequence[SeqEdit], scalars: Sequence[ScalarEdit] = ()
) -> Edited:
    """Apply edits to a YAML file's text, keeping every untouched byte when possible.

    Raises:
        ExportError: no way of writing the file gives the expected data.
        YamlError: ``text`` is not valid YAML.
    """
    if not any(s.changes_data or s.comments or s.header is not None for s in seqs) and not scalars:
        return Edited(text)
    doc = YamlDoc(text, source)
    expected = _apply_data(copy.deepcopy(doc.data), seqs, scalars, _plain_item)
    try:
        spliced = _splice(doc, seqs, scalars)
        if _holds(spliced, expected):
            return Edited(spliced)
    except _Fallback:
        pass
    try:
        roundtrip = _ruamel_edit(text, seqs, scalars)
        if _holds(roundtrip, expected):
            return Edited(roundtrip, f"{source}: rewritten by ruamel.yaml (layout may differ)")
    except Exception:
        pass
    dumped = _emit(expected)
    return Edited(dumped, f"{source}: comments could not be kept (the file was re-dumped)")


def _holds(text: str, expected: object) -> bool:
    try:
        return same_data(parse_yaml(text, source="<edited>"), expected)
    except Exception:
        return False


def _plain_item(new: NewItem) -> object:
    return new.key if new.value is None else {new.key: copy.deepcopy(new.value)}


def _container(data: object, path: Path, *, create: bool) -> tuple[object, list[object] | None]:
    """The list at ``path`` in parsed data (created under a mapping key if asked)."""
    if not path:
        return data, data if isinstance(data, list) else None
    parent: object = data
    for part in path[:-1]:
        parent = _child(parent, part)
    last = path[-1]
    target = _child(parent, last)
    if target is None and create and isinstance(parent, dict) and isinstance(last, str):
        key = next((k for k in parent if _as_key(k) == last), last)
        parent[key] = target = []
    return data, target if isinstance(target, list) else None


def _child(parent: object, part: PathItem) -> object:
    if isinstance(part, int):
        return parent[part] if isinstance(parent, list) and part < len(parent) else None
    if isinstance(parent, dict):
        keys = [k for k in parent if _as_key(k) == part]
        return parent[keys[-1]] if keys else None
    return None


def _apply_data(
    data: object,
    seqs: Sequence[SeqEdit],
    scalars: Sequence[ScalarEdit],
    make: Callable[[NewItem], object],
) -> object:
    if data is None and any(s.append for s in seqs):
        data = [] if any(not s.path for s in seqs) else {}
    for scalar in scalars:
        parent: object = data
        for part in scalar.path[:-1]:
            parent = _child(parent, part)
        last = scalar.path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            keys = [k for k in parent if _as_key(k) == last]
            parent[keys[-1] if keys else last] = scalar.value
    for edit in seqs:
        data, target = _container(data, edit.path, create=bool(edit.append))
        if target is None:
            if edit.changes_data:
                raise ExportError(f"no list at {'/'.join(map(str, edit.path))}")
            continue
        for index, new in edit.replace.items():
            item = target[index]
            made = make(new)
            if isinstance(item, dict) and isinstance(made, dict):
                updated = type(item)()
                for key, value in item.items():
                    updated[key] = made[new.key] if _as_key(key) == new.key else value
                target[index] = updated
            else:
                target[index] = made
        target.extend(make(new) for new in edit.append)
    return data


# ---- the text splice


def _splice(doc: YamlDoc, seqs: Sequence[SeqEdit], scalars: Sequence[ScalarEdit]) -> str:
    spans: list[_Span] = []
    for scalar in scalars:
        node, _ = doc.node_at(scalar.path)
        if not isinstance(node, yaml.ScalarNode):
            raise _Fallback
        spans.append((node.start_mark.index, node.end_mark.index, 0, emit_scalar(scalar.value)))
    for edit in seqs:
        spans.extend(_seq_spans(doc, edit))
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    out: list[str] = []
    pos = 0
    for start, end, _order, replacement in spans:
        if start < pos:
            raise _Fallback
        out.append(doc.text[pos:start])
        out.append(replacement)
        pos = end
    out.append(doc.text[pos:])
    return "".join(out)


def _seq_spans(doc: YamlDoc, edit: SeqEdit) -> list[_Span]:
    node, key_node = doc.node_at(edit.path)
    if node is None or (isinstance(node, yaml.ScalarNode) and doc.value(node) is None):
        return _new_seq_spans(doc, edit, node, key_node)
    region_start = 0 if not edit.path else doc.line_end(key_node.end_mark.index) if key_node else -1
    if region_start < 0:
        raise _Fallback
    layout = doc.seq_layout(node, region_start)
    if layout is None:
        raise _Fallback
    indent = " " * layout.column
    spans: list[_Span] = []
    if edit.header is not None:
        start, end = layout.header
        region = doc.text[start:end]
        if markdown_of_comments(region) != edit.header.strip("\n"):
            spans.append((start, end, 0, _replace_comments(region, edit.header, "", at_end=False)))
    comments = dict(edit.comments)
    for index, new in edit.replace.items():
        item = layout.items[index]
        if item.key != new.key:
            raise _Fallback
        spans.append((item.start, item.end, 0, _item_text(doc, item, layout.column, new)))
        if new.comments is not None:
            comments[index] = new.comments
    for index, markdown in comments.items():
        start, end = layout.items[index].lead
        region = doc.text[start:end]
        if markdown_of_comments(region) != markdown.strip("\n"):
            new_region = _replace_comments(region, markdown, indent, at_end=True)
            if not edit.path and index == 0 and markdown.strip():
                before = doc.text[:start]
                if not new_region.startswith("\n") and not (
                    before.endswith("\n\n") or before == "\n"
                ):
                    new_region = "\n" + new_region  # a blank line: not the file's header
            spans.append((start, end, 0, new_region))
    if edit.append:
        spaced = any(
            doc.text[i.lead[0] : i.lead[1]].startswith("\n") for i in layout.items[1:]
        ) and any(n.value is not None for n in edit.append)
        added = []
        for new in edit.append:
            lead = "\n" if spaced else ""
            lead += comment_lines(new.comments or "", indent)
            added.append(lead + _item_text(doc, None, layout.column, new))
        tail = layout.tail
        prefix = "" if doc.text[:tail].endswith("\n") else "\n"
        spans.append((tail, tail, 0, prefix + "".join(added)))
    return spans


def _new_seq_spans(
    doc: YamlDoc, edit: SeqEdit, node: yaml.Node | None, key_node: yaml.Node | None
) -> list[_Span]:
    """Appends to a list that is missing: a new step file, or a section not in the recipe."""
    if edit.replace or edit.comments or not edit.append:
        raise _Fallback
    if not edit.path:  # a new file
        if doc.root is not None and doc.text[_span(doc.root)].strip():
            raise _Fallback
        parts = [comment_lines(edit.header or "", "")]
        for index, new in enumerate(edit.append):
            if index or new.comments:  # a blank line sets a first comment off the header
                parts.append("\n")
            parts.append(comment_lines(new.comments or "", "") + _item_text(doc, None, 0, new))
        prefix = "" if not doc.text or doc.text.endswith("\n") else "\n"
        return [(len(doc.text), len(doc.text), 1, prefix + "".join(parts))]
    if len(edit.path) != 1:
        raise _Fallback
    root = doc.root
    if isinstance(root, yaml.ScalarNode) and not doc.text[_span(root)].strip():
        root = None  # an empty document ("---" and nothing else)
    if root is not None and (not isinstance(root, yaml.MappingNode) or doc.is_flow(root)):
        raise _Fallback
    entries = "".join(
        comment_lines(n.comments or "", "  ") + _item_text(doc, None, 2, n) for n in edit.append
    )
    if node is None:
        text = doc.text
        prefix = "" if not text or text.endswith("\n") else "\n"
        key = emit_scalar(str(edit.path[0]))
        return [(len(text), len(text), 1, f"{prefix}{key}:\n{entries}")]
    assert key_node is not None
    start, end = node.start_mark.index, node.end_mark.index
    if doc.text[start:end].strip():  # an explicit null: ~ or null
        colon = doc.text.find(":", key_node.end_mark.index, start)
        if colon < 0:
            raise _Fallback
        return [(colon + 1, end, 0, "\n" + entries.rstrip("\n"))]
    line_end = doc.line_end(key_node.end_mark.index)
    if doc.text[key_node.end_mark.index : line_end].split("#")[0].strip(" \t\r\n:"):
        raise _Fallback
    prefix = "" if doc.text[:line_end].endswith("\n") else "\n"
    return [(line_end, line_end, 0, prefix + entries)]


def _span(node: yaml.Node) -> slice:
    return slice(node.start_mark.index, node.end_mark.index)


def _item_text(doc: YamlDoc, item: ItemLayout | None, column: int, new: NewItem) -> str:
    indent = " " * column
    key = emit_scalar(new.key)
    if new.value is None:
        return f"{indent}- {key}\n"
    if not new.value and new.text is None:
        return f"{indent}- {key}: []\n"
    body = new.text if new.text is not None else emit_items(new.value)
    if not body.endswith("\n"):
        body += "\n"
    if item is not None and item.body is not None:  # keep its line: anchor, comment...
        first = doc.text[item.start : item.key_line_end]
        if not first.endswith("\n"):
            first += "\n"
    else:
        first = f"{indent}- {key}:\n"
    return first + _indent(body, column + 2)


# ---- the ruamel.yaml round trip


def _ruamel_edit(text: str, seqs: Sequence[SeqEdit], scalars: Sequence[ScalarEdit]) -> str:
    from ruamel.yaml.comments import CommentedMap  # noqa: PLC0415

    loader = _ruamel()
    document = loader.load(text)

    def make(new: NewItem) -> object:
        if new.value is None:
            return new.key
        value: object = _styled(copy.deepcopy(new.value), literal=True)
        if new.text is not None:
            value = loader.load(new.text)
        item = CommentedMap()
        item[new.key] = value
        return item

    document = _apply_data(document, seqs, scalars, make)
    stream = io.StringIO()
    loader.dump(document, stream)
    return re.sub(r"\A%YAML 1\.1\n---\n?", "", stream.getvalue())
