"""YAML reading as upstream does it: ``YAML.unsafe_load`` of Psych 5.0.2.

PyYAML parses; Psych's scalar scanner decides what a plain (unquoted, untagged)
scalar is. The two disagree on real recipes: Psych reads ``1,000`` as 1000,
``:name`` as a Symbol, ``1:30`` as 5400, a timestamp as a ``Time`` in local time,
``=`` as a string, and an invalid date as a string. Quoted scalars are strings and
explicit tags keep PyYAML's meaning, except ``!!binary``, which is a string when its
bytes are ASCII (as Ruby's binary strings print).
"""

from __future__ import annotations

import base64
import datetime
import math
import re
from typing import Any, Final

import yaml

from kameleon_nb.core.limits import MAX_TEXT_CHARS
from kameleon_nb.core.rubytypes import RubyBinary, RubyTime, Symbol

__all__ = ["PsychLoader", "ScalarTooLargeError", "TooManyNodesError", "tokenize"]

_PLAIN_TAG: Final = "tag:kameleon-nb:psych-plain"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Ruby's \d and \s are ASCII; [[:alpha:]] is any Unicode letter.
_STRINGISH_RE: Final = re.compile(r"[^0-9.:\-]?(?:[^\W\d_]|[_ \t\r\n\f\v!@#$%^&*(){}<>|/\\~;=])+")
_NOT_SPECIAL_START_RE: Final = re.compile(r"[^ytonf~]", re.I)
_NULL_RE: Final = re.compile(r"null", re.I)
_TRUE_RE: Final = re.compile(r"yes|true|on", re.I)
_FALSE_RE: Final = re.compile(r"no|false|off", re.I)
_TIME_RE: Final = re.compile(
    r"-?[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t\r\n\f\v]+)[0-9]{1,2}:[0-9][0-9]:[0-9][0-9]"
    r"(?:\.[0-9]*)?(?:[ \t\r\n\f\v]*(?:Z|[-+][0-9]{1,2}:?(?:[0-9][0-9])?))?"
)
_DATE_RE: Final = re.compile(r"[0-9]{4}-(?:1[012]|0[0-9]|[0-9])-(?:[12][0-9]|3[01]|0[0-9]|[0-9])")
_SEXAGESIMAL_INT_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}")
_SEXAGESIMAL_FLOAT_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*")
_FLOAT_RE: Final = re.compile(r"[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?")
_INTEGER_RE: Final = re.compile(
    r"[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)|[-+]?0x[0-9a-fA-F_,]+"
)
_QUOTED_SYMBOL_RE: Final = re.compile(r":([\"'])(.*)\1", re.S)


def _ruby_to_i(text: str) -> int:
    """Ruby's ``String#to_i``: leading digits (underscores between them), else 0."""
    match = re.match(r"\s*([-+]?[0-9]+(?:_[0-9]+)*)", text)
    return int(match.group(1).replace("_", "")) if match else 0


def _ruby_to_f(text: str) -> float:
    match = re.match(r"\s*([-+]?[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?)", text)
    return float(match.group(1).replace("_", "")) if match else 0.0


def _ruby_integer(text: str) -> int | str:
    """Ruby's ``Integer(text)`` for what Psych's INTEGER pattern lets through."""
    digits = text.replace(",", "").replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("+-")
    try:
        if body[:2] in ("0b", "0B"):
            return sign * int(body[2:], 2)
        if body[:2] in ("0x", "0X"):
            return sign * int(body[2:], 16)
        if len(body) > 1 and body.startswith("0"):
            return sign * int(body[1:], 8)
        return sign * int(body, 10)
    except ValueError:
        return text


def _date_is_valid(year: int, month: int, day: int) -> bool:
    """Ruby's ``Date.strptime`` (Italian calendar reform): the 1582 gap is invalid."""
    if (year, month) == (1582, 10) and 5 <= day <= 14:
        return False
    if (year, month, day) < (1582, 10, 15):
        leap = year % 4 == 0
        days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return 1 <= month <= 12 and 1 <= day <= days[month - 1]
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _parse_time(text: str) -> RubyTime | str:
    date_part, time_part = re.split(r"[ tT]", text, maxsplit=1)
    found = re.match(r"(-?[0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", date_part)
    detail = re.search(
        r"([0-9]+:[0-9]+:[0-9]+)(?:\.([0-9]*))?\s*(Z|[-+][0-9]+(?::[0-9][0-9])?)?", time_part
    )
    if found is None or detail is None:
        return text
    year, month, day = (int(x) for x in found.groups())
    hour, minute, second = (int(x) for x in detail.group(1).split(":"))
    fraction = (detail.group(2) or "")[:9].ljust(9, "0")
    nanoseconds = int(fraction)
    zone = detail.group(3)
    try:
        utc = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError:
        return text
    if zone == "Z":
        return RubyTime(utc, nanoseconds, utc=True)
    if zone is None:  # Psych gives local time
        return RubyTime(utc.astimezone(), nanoseconds, utc=False)
    parts = re.fullmatch(r"([+\-]?[0-9]{1,2}):?([0-9]{1,2})?", zone)
    if parts is None:
        return text
    hours = int(parts.group(1))
    minutes = int(parts.group(2) or 0)
    offset = hours * 60 + (-minutes if hours < 0 else minutes)  # Psych: -00:30 is +00:30
    zone_info = datetime.timezone(datetime.timedelta(minutes=offset))
    try:
        local = datetime.datetime(year, month, day, hour, minute, second, tzinfo=zone_info)
    except ValueError:
        return text
    return RubyTime(local, nanoseconds, utc=False)


def tokenize(text: str) -> object:
    """What Psych's scalar scanner makes of a plain scalar.

    >>> [tokenize(t) for t in ("1,000", "1:30", "yes", "~", "0o17", "017", "=")]
    [1000, 5400, True, None, '0o17', 15, '=']
    """
    if not text:
        return None
    if _STRINGISH_RE.match(text) or "\n" in text:
        if len(text) > 5 or _NOT_SPECIAL_START_RE.match(text):
            return text
        if text == "~" or _NULL_RE.fullmatch(text):
            return None
        if _TRUE_RE.fullmatch(text):
            return True
        if _FALSE_RE.fullmatch(text):
            return False
        return text
    if _TIME_RE.fullmatch(text):
        return _parse_time(text)
    if _DATE_RE.fullmatch(text):
        year, month, day = (int(x) for x in text.split("-"))
        if not _date_is_valid(year, month, day):
            return text
        try:
            return datetime.date(year, month, day)
        except ValueError:  # a Julian-only day (e.g. 1500-02-29): keep the text
            return text
    lowered = text.lower()
    if lowered in (".inf", "+.inf"):
        return math.inf
    if lowered == "-.inf":
        return -math.inf
    if lowered == ".nan":
        return math.nan
    if len(text) > 1 and text.startswith(":"):
        quoted = _QUOTED_SYMBOL_RE.match(text)
        name = quoted.group(2) if quoted else text[1:]
        return Symbol(name[1:] if name.startswith(":") else name)
    if _SEXAGESIMAL_INT_RE.fullmatch(text):
        total = 0
        for position, part in enumerate(text.split(":")):
            total += _ruby_to_i(part) * 60 ** abs(position - 2)
        return total
    if _SEXAGESIMAL_FLOAT_RE.fullmatch(text):
        total_f = 0.0
        for position, part in enumerate(text.split(":")):
            total_f += _ruby_to_f(part) * 60 ** abs(position - 2)
        return total_f
    if _FLOAT_RE.fullmatch(text):
        if re.fullmatch(r"[-+]?\.", text):
            return text
        cleaned = re.sub(r"[,_]|\.([Ee]|$)", lambda m: m.group(1) or "", text)
        try:
            return float(cleaned)
        except ValueError:
            return text
    if _INTEGER_RE.fullmatch(text):
        return _ruby_integer(text)
    return text


class ScalarTooLargeError(Exception):
    """A scalar longer than :data:`MAX_TEXT_CHARS`, refused before it is scanned.

    Scanning one of several megabytes (Psych's regular expressions) takes
    hundreds of megabytes; the caller names the file.
    """

    def __init__(self, size: int, line: int) -> None:
        super().__init__(f"a YAML value of {size:,} characters at line {line}")
        self.size = size
        self.line = line


class TooManyNodesError(Exception):
    """A document with more nodes than the loader may read; the caller names the file."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit:,} YAML nodes")
        self.limit = limit


class _NotPlain(Exception):
    """A document that :func:`_read_plainly` leaves to PyYAML's composer and constructor."""


_NO_KEY: Final = object()
_STREAM_END: Final = yaml.StreamEndEvent
_DOCUMENT_END: Final = yaml.DocumentEndEvent
_SCALAR: Final = yaml.ScalarEvent
_ALIAS: Final = yaml.AliasEvent
_MAPPING_START: Final = yaml.MappingStartEvent
_MAPPING_END: Final = yaml.MappingEndEvent
_SEQUENCE_START: Final = yaml.SequenceStartEvent
_SEQUENCE_END: Final = yaml.SequenceEndEvent
#: deeper documents go through PyYAML's (recursive) composer, which reports them
_PLAIN_DEPTH: Final = 100


def _read_plainly(loader: PsychLoader) -> object:
    """The data of a plain document, built from the parser's events.

    A recipe file is made of mappings, sequences and untagged (plain or quoted)
    scalars. For such a document this gives what PyYAML's composer and constructor
    give (:func:`tokenize` for plain scalars, one object per anchor for its aliases, in
    document order) in half their time, and without their node graph: a node with its
    two marks takes about 500 bytes, ten times the data it stands for, so a
    100,000-microstep step file (600,000 nodes) needed 320 MB to load.

    Raises:
        _NotPlain: anything else (a tag, a merge key, a complex key, an anchor
            defined twice or unknown, a scalar too large to scan, a second document,
            a YAML error...); the caller reads the text again the usual way, which
            gives PyYAML's data or error.
        TooManyNodesError: more nodes than the loader's ``node_limit``.
    """
    get_event = loader.get_event
    get_event()  # StreamStartEvent
    if type(get_event()) is _STREAM_END:  # else a DocumentStartEvent
        return None
    anchors: dict[str, object] = {}
    open_nodes: list[dict[object, object] | list[object]] = []
    keys: list[object] = []  # per open node: the key waiting for its value (mappings)
    document: object = None
    nodes, limit = loader.nodes, loader.node_limit
    while True:
        event = get_event()
        kind = type(event)
        value: object
        if kind is _SCALAR:
            if event.tag is not None or len(event.value) > MAX_TEXT_CHARS:
                raise _NotPlain
            value = event.value
            if event.implicit[0]:
                if value == "<<":
                    raise _NotPlain
                value = tokenize(event.value)
        elif kind is _MAPPING_START or kind is _SEQUENCE_START:
            if event.tag is not None or len(open_nodes) >= _PLAIN_DEPTH:
                raise _NotPlain
            value = {} if kind is _MAPPING_START else []
        elif kind is _ALIAS:
            if event.anchor not in anchors:
                raise _NotPlain
            value = anchors[event.anchor]
        elif kind is _MAPPING_END or kind is _SEQUENCE_END:
            open_nodes.pop()
            keys.pop()
            continue
        elif kind is _DOCUMENT_END:
            break
        else:
            raise _NotPlain
        if kind is not _ALIAS:
            nodes += 1
            if nodes > limit:
                raise TooManyNodesError(limit)
            if event.anchor is not None:
                if event.anchor in anchors:
                    raise _NotPlain
                anchors[event.anchor] = value
        if not open_nodes:
            document = value
        else:
            parent = open_nodes[-1]
            if type(parent) is list:
                parent.append(value)
            elif keys[-1] is _NO_KEY:
                if type(value) is dict or type(value) is list:
                    raise _NotPlain
                keys[-1] = value
            else:
                parent[keys[-1]] = value  # type: ignore[call-overload]
                keys[-1] = _NO_KEY
        if kind is _MAPPING_START or kind is _SEQUENCE_START:
            open_nodes.append(value)  # type: ignore[arg-type]
            keys.append(_NO_KEY)
    if type(get_event()) is not _STREAM_END:  # a second document
        raise _NotPlain
    loader.nodes = nodes
    return document


class PsychLoader(_Base):  # type: ignore[valid-type, misc]
    """PyYAML's parser with Psych's reading of plain scalars and ``!!binary``.

    Args:
        stream: the YAML text.
        node_limit: how many nodes (scalars, sequences, mappings) it may read; one
            more raises :class:`TooManyNodesError`. ``nodes`` tells how many it read.
    """

    def __init__(self, stream: str, node_limit: int = 2**62) -> None:
        super().__init__(stream)
        self.text = stream
        self.node_limit = node_limit
        self.nodes = 0

    def get_single_data(self) -> Any:
        """The document's data: from its events when it is plain, else as PyYAML reads it.

        Raises:
            TooManyNodesError: the document has more than ``node_limit`` nodes.
        """
        try:
            return _read_plainly(self)
        except (_NotPlain, yaml.YAMLError):
            pass  # read again the usual way, for PyYAML's own data or error
        again = _NodeLoader(self.text, self.node_limit)
        try:
            return again.get_single_data()
        finally:
            self.nodes = again.nodes
            again.dispose()

    def construct_scalar(self, node: Any) -> Any:
        """A scalar's text, refused when longer than :data:`MAX_TEXT_CHARS`.

        Raises:
            ScalarTooLargeError: with the scalar's size and line.
        """
        if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_TEXT_CHARS:
            raise ScalarTooLargeError(len(node.value), node.start_mark.line + 1)
        return super().construct_scalar(node)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """Send every plain scalar to :func:`tokenize` (``<<`` stays a merge key).

        PyYAML's composer calls it once per node it makes: they are counted here.
        """
        self.nodes += 1
        if self.nodes > self.node_limit:
            raise TooManyNodesError(self.node_limit)
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE_TAG if value == "<<" else _PLAIN_TAG
        return super().resolve(kind, value, implicit)


class _NodeLoader(PsychLoader):
    """PsychLoader reading through PyYAML's node graph, composer and constructor."""

    get_single_data = yaml.constructor.BaseConstructor.get_single_data


def _construct_plain(loader: PsychLoader, node: yaml.ScalarNode) -> object:
    return tokenize(loader.construct_scalar(node))


def _construct_binary(loader: PsychLoader, node: yaml.ScalarNode) -> object:
    raw = base64.decodebytes(str(loader.construct_scalar(node)).encode("ascii"))
    if raw.isascii():
        return raw.decode("ascii")
    return RubyBinary(raw)


def _construct_merge_value(loader: PsychLoader, node: yaml.ScalarNode) -> object:
    return loader.construct_scalar(node)  # ``<<`` as a value is the string ``<<``


PsychLoader.add_constructor(_PLAIN_TAG, _construct_plain)
PsychLoader.add_constructor(_MERGE_TAG, _construct_merge_value)
PsychLoader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
