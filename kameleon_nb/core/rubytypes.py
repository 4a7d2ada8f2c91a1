"""The Ruby values Psych produces that have no exact Python counterpart.

Upstream reads recipes with ``YAML.unsafe_load``: a plain ``:name`` is a Symbol, a
timestamp is a ``Time`` that remembers whether it was written in UTC and keeps
nanoseconds, and ``!!binary`` is a byte string. These small types carry what Ruby's
``to_s``, ``inspect`` and Psych's dump need (see :mod:`kameleon_nb.core.variables`
and :mod:`kameleon_nb.core.psych`).
"""

from __future__ import annotations

import datetime
import re

__all__ = ["INSPECT_ESCAPES", "RubyBinary", "RubyTime", "Symbol", "date_inspect", "inspect_str"]

_SIMPLE_SYMBOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[?!=]?")


class Symbol(str):
    """A Ruby Symbol; the ``str`` value is its name (``to_s``), without the colon."""

    __slots__ = ()

    def inspect(self) -> str:
        """Ruby's ``inspect``: ``:name``, or ``:"two words"`` when it needs quotes."""
        name = str.__str__(self)
        if _SIMPLE_SYMBOL_RE.fullmatch(name):
            return ":" + name
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return ':"' + escaped + '"'


class RubyBinary(bytes):
    """A ``!!binary`` value that is not ASCII text (Ruby: a binary ``String``)."""

    __slots__ = ()

    def to_s(self) -> str:
        """The bytes as text, as close as Python can (invalid UTF-8 replaced)."""
        return self.decode("utf-8", "replace")


class RubyTime:
    """A Ruby ``Time`` read from a YAML timestamp.

    Attributes:
        moment: the time, with its UTC offset.
        nanoseconds: the fraction of the second, in nanoseconds (Ruby keeps them).
        utc: whether Ruby holds it in UTC mode (a timestamp written with ``Z``).
    """

    __slots__ = ("moment", "nanoseconds", "utc")

    def __init__(self, moment: datetime.datetime, nanoseconds: int, *, utc: bool) -> None:
        self.moment = moment
        self.nanoseconds = nanoseconds
        self.utc = utc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RubyTime) and (self.moment, self.nanoseconds, self.utc) == (
            other.moment,
            other.nanoseconds,
            other.utc,
        )

    def __hash__(self) -> int:
        return hash((self.moment, self.nanoseconds, self.utc))

    def _zone(self, colon: bool) -> str:
        if self.utc:
            return "UTC"
        offset = self.moment.utcoffset() or datetime.timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        return f"{sign}{hours:02d}{':' if colon else ''}{rest:02d}"

    def to_s(self) -> str:
        """Ruby's ``Time#to_s``: ``2024-01-02 03:04:05 +0000`` (``UTC`` in UTC mode)."""
        return f"{self.moment:%Y-%m-%d %H:%M:%S} {self._zone(False)}"

    def inspect(self) -> str:
        """Ruby's ``Time#inspect``: ``to_s`` with the fraction, trailing zeros cut."""
        fraction = f"{self.nanoseconds:09d}".rstrip("0")
        dot = f".{fraction}" if fraction else ""
        return f"{self.moment:%Y-%m-%d %H:%M:%S}{dot} {self._zone(False)}"

    def psych(self) -> str:
        """Psych's dump text: nine fraction digits, ``Z`` in UTC mode, else ``+hh:mm``."""
        zone = "Z" if self.utc else self._zone(True)
        return f"{self.moment:%Y-%m-%d %H:%M:%S}.{self.nanoseconds:09d} {zone}"


def date_inspect(value: datetime.date) -> str:
    """Ruby's ``Date#inspect`` for a date Psych read (proleptic Gregorian)."""
    julian_day = value.toordinal() + 1721425
    return f"#<Date: {value.isoformat()} (({julian_day}j,0s,0n),+0s,-Infj)>"


#: how Ruby's ``String#inspect`` writes these characters
INSPECT_ESCAPES = {
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\x1b": "\\e",
    "\x07": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def inspect_str(text: str, escapes: dict[str, str] = INSPECT_ESCAPES) -> str:
    r"""A string in double quotes, as Ruby's ``String#inspect`` writes it.

    ``escapes`` are the characters written as escapes; other control characters become
    ``\xNN``, and ``#`` before ``{``, ``$`` or ``@`` becomes ``\#``.

    >>> print(inspect_str('say "hi"\n'))
    "say \"hi\"\n"
    """
    out = []
    for index, char in enumerate(text):
        if char in escapes:
            out.append(escapes[char])
        elif char == "#" and text[index + 1 : index + 2] in ("{", "$", "@"):
            out.append("\\#")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
