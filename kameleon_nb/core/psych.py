"""Byte-exact emulation of Ruby's ``YAML.dump`` (Psych 5.0.2 on libyaml 0.2.5).

Kameleon hashes the YAML text that Psych produces for each command, so checkpoint
ids can only be reproduced if that text is reproduced byte for byte. This module is
an independent Python implementation of the relevant behaviour of both layers:

* **Psych** (the Ruby side) picks a *requested* style for every ``String``: literal
  block, single-quoted, double-quoted or plain, depending on newlines, a leading
  non-word character, and whether Psych's scalar scanner would read the text back as
  something other than a string (booleans, null, numbers, dates, times, symbols).
  Integers, floats, booleans and nil are emitted as plain scalars.
* **libyaml** (the C emitter, width 80, indent 2, unicode on) analyses every scalar
  and may upgrade the requested style (plain -> single-quoted -> double-quoted, block
  -> double-quoted), folds plain and quoted scalars longer than 80 columns at spaces,
  escapes non-printable characters in double quotes, writes block scalar indicators
  (``|2``, ``|-``, ``|+``), lays out block mappings and sequences, and ends the
  stream with ``...`` after a ``|+`` block.

Behaviour that neither corpus covers is documented where it is implemented; see in
particular :func:`_ruby_float_to_s`, :func:`_tokenizes_to_string` and :func:`dump`.
"""

from __future__ import annotations

import base64
import datetime
import math
import re
import unicodedata
from functools import cache, lru_cache
from typing import Final

from kameleon_nb.core.rubytypes import RubyBinary, RubyTime, Symbol

__all__ = ["dump"]

_BEST_WIDTH: Final = 80
_BEST_INDENT: Final = 2

# Scalar styles (the requested one, then the one libyaml settles on).
_PLAIN: Final = 0
_SINGLE: Final = 1
_DOUBLE: Final = 2
_LITERAL: Final = 3

# libyaml's notion of a line break, and of "blank or end of string" (IS_BLANKZ).
_BREAK_CHARS: Final = "\r\n\x85\u2028\u2029"
_BLANKZ_CHARS: Final = " \t\r\n\x85\u2028\u2029\x00"

# Characters libyaml can print unescaped (IS_PRINTABLE in 0.2.5): LF, printable
# ASCII, U+00A0..U+D7FF and U+E000..U+FFFD except the BOM. Everything outside the
# BMP is *not* printable for libyaml 0.2.5 and gets a ``\U`` escape.
# The full classes cost tens of milliseconds to compile (their ranges span the BMP):
# ASCII text, nearly every command, is checked with the ASCII part only, and the full
# pattern is compiled the first time a text needs it.
_NOT_PRINTABLE_ASCII_RE: Final = re.compile(r"[^\n\x20-\x7e]")
_NOT_PRINTABLE: Final = r"[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
_BREAK_RE: Final = re.compile("[\r\n\x85\u2028\u2029]")
_BREAK_SPACE_RE: Final = re.compile("[\r\n\x85\u2028\u2029] ")
_SPACE_BREAK_RE: Final = re.compile(" [\r\n\x85\u2028\u2029]")
# ``: `` (or ``:`` at the end) anywhere, and `` #`` after a blank, forbid plain style.
_BLOCK_INDICATOR_RE: Final = re.compile(
    ":(?:[ \t\r\n\x85\u2028\u2029\x00]|\\Z)|[ \t\r\n\x85\u2028\u2029\x00]#"
)
_FIRST_CHAR_INDICATORS: Final = frozenset("#,[]{}&*!|>'\"%@`")
# Characters that need an escape inside double quotes (non-printable, BOM, line
# breaks, the quote and the backslash).
_DQ_ESCAPE_ASCII_RE: Final = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_DQ_ESCAPE: Final = (
    r"[^\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
)


@cache
def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _not_printable(text: str) -> bool:
    """Whether ``text`` holds a character libyaml does not print as is."""
    if text.isascii():
        return _NOT_PRINTABLE_ASCII_RE.search(text) is not None
    return _full(_NOT_PRINTABLE).search(text) is not None


def _dq_escaped(text: str) -> bool:
    """Whether ``text`` holds a character that double quotes escape."""
    if text.isascii():
        return _DQ_ESCAPE_ASCII_RE.search(text) is not None
    return _full(_DQ_ESCAPE).search(text) is not None


_DQ_SHORT_ESCAPES: Final = {
    0x00: "0",
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x1B: "e",
    0x22: '"',
    0x5C: "\\",
    0x85: "N",
    0xA0: "_",
    0x2028: "L",
    0x2029: "P",
}
_LITERAL_SPLIT_RE: Final = re.compile("([\r\n\x85\u2028\u2029])")

# ---------------------------------------------------------------------------
# Psych's side: which style does Psych request for a String?
# ---------------------------------------------------------------------------

# Ruby: ``o =~ /\n(?!\Z)/`` (a newline that is not the last character, and not the
# first of two final newlines). Ruby's ``\Z`` is "end, or before a final newline".
_PSYCH_LITERAL_RE: Final = re.compile("\n(?!\n?\\Z)")
_LEADING_OCTAL_89_RE: Final = re.compile("0[0-7]*[89]")

# Psych::ScalarScanner, default (legacy integer) mode. Ruby's ``\d`` and ``\s`` are
# ASCII-only, hence re.ASCII. Inputs reaching these never contain a newline, so
# Ruby's ``^...$`` are full matches.
_TIME_RE: Final = re.compile(
    r"-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?"
    r"(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?",
    re.ASCII,
)
_DATE_RE: Final = re.compile(r"\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)", re.ASCII)
_SEXAGESIMAL_INT_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}")
_SEXAGESIMAL_FLOAT_RE: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*")
_FLOAT_RE: Final = re.compile(r"[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?")
_INTEGER_RE: Final = re.compile(
    r"[-+]?0b[0-1_,]+"
    r"|[-+]?0[0-7_,]+"
    r"|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)"
    r"|[-+]?0x[0-9a-fA-F_,]+"
)
_RUBY_INTEGER_RE: Final = re.compile(
    r"[-+]?(?:0b[01]+(?:_[01]+)*|0o?[0-7]+(?:_[0-7]+)*|0x[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*"
    r"|0d?[0-9]+(?:_[0-9]+)*|[1-9][0-9]*(?:_[0-9]+)*|0)",
)
_NULL_RE: Final = re.compile("null\n?", re.IGNORECASE)
_TRUE_RE: Final = re.compile("(?:yes|true|on)\n?", re.IGNORECASE)
_FALSE_RE: Final = re.compile("(?:no|false|off)\n?", re.IGNORECASE)
_TIME_SPLIT_RE: Final = re.compile("[ tT]")
_TIME_DATE_PART_RE: Final = re.compile(r"(-?\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_TIME_TIME_PART_RE: Final = re.compile(
    r"(\d+:\d+:\d+)(?:\.(\d*))?\s*(Z|[-+]\d+(?::\d\d)?)?", re.ASCII
)
_TIME_ZONE_RE: Final = re.compile(r"([+\-]?\d{1,2}):?(\d{1,2})?", re.ASCII)
_SCANNER_CLASS_EXTRA: Final = frozenset("_ \t\n\v\f\r!@#$%^&*(){}<>|/\\~;=")

_WORD_CATEGORIES: Final = frozenset(
    ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc")
)


def _is_word_char(ch: str) -> bool:
    """Tell whether Onigmo's ``[[:word:]]`` matches ``ch`` (Unicode semantics).

    Onigmo defines it as Alphabetic + Mark + Decimal_Number + Connector_Punctuation.
    Alphabetic adds to the letters the letter numbers (Nl) and a few symbols that
    carry Other_Alphabetic (the circled and squared Latin letters).
    """
    if ch.isascii():
        return ch.isalnum() or ch == "_"
    if unicodedata.category(ch) in _WORD_CATEGORIES:
        return True
    cp = ord(ch)
    return (
        0x24B6 <= cp <= 0x24E9
        or 0x1F130 <= cp <= 0x1F149
        or 0x1F150 <= cp <= 0x1F169
        or 0x1F170 <= cp <= 0x1F189
    )


def _in_scanner_class(ch: str) -> bool:
    r"""``[[:alpha:]_\s!@#$%^&*(){}<>|/\\~;=]`` of Psych's string short-cut."""
    return ch in _SCANNER_CLASS_EXTRA or ch.isalpha() or unicodedata.category(ch)[0] == "M"


def _julian_or_gregorian_date_valid(year: int, month: int, day: int) -> bool:
    """Whether Ruby's ``Date`` (default start: ITALY) accepts year-month-day.

    Dates before 1582-10-15 use the Julian calendar (a leap year every 4 years);
    1582-10-05 to 1582-10-14 do not exist.
    """
    if not 1 <= month <= 12 or day < 1:
        return False
    if (year, month) == (1582, 10) and 5 <= day <= 14:
        return False
    if (year, month, day) < (1582, 10, 15):
        leap = year % 4 == 0
    else:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return day <= days


def _ruby_time_parses(text: str) -> bool:
    """Emulate ``ScalarScanner#parse_time``; False where Ruby raises ArgumentError.

    The validation is that of Ruby's ``Time.utc``/``Time.new``: month 1..12, day
    1..31 (days past the end of a month roll over), hour 0..24, minutes 0..59 and
    seconds 0..60 (both 0 when the hour is 24), and a UTC offset strictly within a
    day. A dot without fraction digits is accepted (``Rational("0.")`` is 0).
    Assumption: when the date and time are separated by a tab or other non-space
    whitespace, Ruby raises NoMethodError (not rescued, so ``YAML.dump`` fails);
    such strings contain a control character, are double-quoted by libyaml anyway,
    and are treated here as if the time parsed.
    """
    parts = _TIME_SPLIT_RE.split(text, maxsplit=1)
    if len(parts) < 2:
        return True
    date_match = _TIME_DATE_PART_RE.match(parts[0])
    time_match = _TIME_TIME_PART_RE.search(parts[1])
    if date_match is None or time_match is None:  # pragma: no cover - implied by _TIME_RE
        return True
    month, day = int(date_match.group(2)), int(date_match.group(3))
    hour, minute, second = (int(x) for x in time_match.group(1).split(":"))
    max_min_sec = 0 if hour == 24 else 59
    if not (
        1 <= month <= 12
        and 1 <= day <= 31
        and hour <= 24
        and minute <= max_min_sec
        and second <= (0 if hour == 24 else 60)
    ):
        return False
    zone = time_match.group(3)
    if zone is None or zone == "Z":
        return True
    zone_match = _TIME_ZONE_RE.fullmatch(zone)
    if zone_match is None:  # pragma: no cover - implied by _TIME_RE
        return True
    hours = int(zone_match.group(1))
    minutes = int(zone_match.group(2) or 0)
    offset = hours * 3600
    offset = offset - minutes * 60 if offset < 0 else offset + minutes * 60
    return -86400 < offset < 86400


def _tokenizes_to_string(text: str) -> bool:
    """Tell whether ``Psych::ScalarScanner#tokenize`` returns ``text`` as a String.

    Only called for non-empty texts without a newline other than a single final
    one. Assumption: where Ruby's ``Integer()`` raises on a text the integer
    regexp accepted (e.g. ``0x_``), ``YAML.dump`` itself raises in Ruby; the text
    is treated here as a string.
    """
    first = text[0]
    if (
        "\n" in text
        or _in_scanner_class(first)
        or (first not in "0123456789.:-" and len(text) > 1 and _in_scanner_class(text[1]))
    ):
        if len(text) > 5 or first not in "ytonfYTONF~":
            return True
        if text == "~" or _NULL_RE.fullmatch(text):
            return False
        return not (_TRUE_RE.fullmatch(text) or _FALSE_RE.fullmatch(text))
    if _TIME_RE.fullmatch(text):
        return not _ruby_time_parses(text)
    if _DATE_RE.fullmatch(text):
        year, month, day = (int(x) for x in text.split("-"))
        return not _julian_or_gregorian_date_valid(year, month, day)
    lowered = text.lower()
    if lowered in (".inf", "+.inf", "-.inf", ".nan"):
        return False
    if first == ":" and len(text) > 1:  # a Symbol
        return False
    if _SEXAGESIMAL_INT_RE.fullmatch(text) or _SEXAGESIMAL_FLOAT_RE.fullmatch(text):
        return False
    if _FLOAT_RE.fullmatch(text):
        return text.lstrip("+-") == "."
    if _INTEGER_RE.fullmatch(text):
        return _RUBY_INTEGER_RE.fullmatch(text.replace(",", "").replace("_", "")) is None
    return True


@lru_cache(maxsize=8192)
def _psych_string_style(text: str) -> int:
    """Return the style Psych 5.0.2 requests for the Ruby String ``text``.

    The ``<<`` special case (single-quoted with an explicit ``!!str`` tag) is
    handled by the caller.
    """
    if "\n" in text and _PSYCH_LITERAL_RE.search(text):
        return _LITERAL
    if text in ("y", "n"):
        return _DOUBLE
    # Ruby: o =~ /^[^[:word:]][^"]*$/ (^ and $ are line anchors). For the texts
    # left here, a line starts at 0, or just before the last of two final newlines.
    if text.endswith("\n\n"):
        return _DOUBLE
    if text and not _is_word_char(text[0]) and '"' not in text[1:]:
        return _DOUBLE
    if not text or not _tokenizes_to_string(text) or _LEADING_OCTAL_89_RE.match(text):
        return _SINGLE
    return _PLAIN


# ---------------------------------------------------------------------------
# libyaml's side: scalar analysis.
# ---------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _analyze(text: str) -> tuple[bool, bool, bool, bool]:
    """Run libyaml's scalar analysis, for block context.

    Returns:
        ``(multiline, plain_allowed, single_quoted_allowed, block_allowed)``.
    """
    if not text:
        return (False, True, True, False)
    special = _not_printable(text)
    line_breaks = _BREAK_RE.search(text) is not None
    first, last = text[0], text[-1]
    leading = first == " " or first in _BREAK_CHARS
    trailing_space = last == " "
    trailing = trailing_space or last in _BREAK_CHARS
    break_space = line_breaks and _BREAK_SPACE_RE.search(text) is not None
    space_break = line_breaks and _SPACE_BREAK_RE.search(text) is not None
    followed_by_blank = len(text) == 1 or text[1] in _BLANKZ_CHARS
    indicators = (
        text.startswith(("---", "..."))
        or first in _FIRST_CHAR_INDICATORS
        or (first in "?-" and followed_by_blank)
        or _BLOCK_INDICATOR_RE.search(text) is not None
    )
    no_single = break_space or space_break or special
    return (
        line_breaks,
        not (leading or trailing or no_single or line_breaks or indicators),
        not no_single,
        not (trailing_space or space_break or special),
    )


# ---------------------------------------------------------------------------
# Ruby scalar texts for the non-String types.
# ---------------------------------------------------------------------------


def _ruby_float_to_s(value: float) -> str:
    """Return Psych's text for a Float: ``Float#to_s``, or ``.inf``/``-.inf``/``.nan``.

    Ruby prints the shortest round-tripping digits (as Python's ``repr`` does) in
    fixed notation when the decimal exponent is in ``-4 < e <= 16`` (``1.5``,
    ``0.0001``, ``1.0e+16`` has e = 17), else as ``d.ddde+XX``.
    """
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0.0"
    mantissa, _, exponent = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    decpt = len(int_part) + (int(exponent) if exponent else 0) - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    if 0 < decpt <= 16:
        if len(digits) <= decpt:
            body = digits + "0" * (decpt - len(digits)) + ".0"
        else:
            body = digits[:decpt] + "." + digits[decpt:]
    elif -4 < decpt <= 0:
        body = "0." + "0" * (-decpt) + digits
    else:
        exp = decpt - 1
        body = f"{digits[0]}.{digits[1:] or '0'}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    return sign + body


# ---------------------------------------------------------------------------
# The emitter.
# ---------------------------------------------------------------------------


def _double_quote_escape(ch: str) -> str:
    """Return libyaml's escape sequence (without the backslash) for ``ch``."""
    cp = ord(ch)
    short = _DQ_SHORT_ESCAPES.get(cp)
    if short is not None:
        return short
    if cp <= 0xFF:
        return f"x{cp:02X}"
    if cp <= 0xFFFF:
        return f"u{cp:04X}"
    return f"U{cp:08X}"


class _Emitter:
    """State of one libyaml emitter run, restricted to what Psych's dump needs.

    Flow collections are only ever the empty ``[]`` and ``{}``, so scalars are
    always emitted in block context.
    """

    __slots__ = (
        "anchors",
        "column",
        "emitted",
        "indent",
        "indention",
        "indents",
        "open_ended",
        "out",
        "whitespace",
    )

    def __init__(self, anchors: dict[int, int]) -> None:
        # State right after the document start marker "---".
        self.out: list[str] = ["---"]
        self.column = 3
        self.whitespace = False
        self.indention = False
        self.indent = -1
        self.indents: list[int] = []
        self.open_ended = 0
        self.anchors = anchors
        self.emitted: set[int] = set()

    # -- low-level writers ---------------------------------------------------

    def write_indent(self) -> None:
        indent = self.indent if self.indent >= 0 else 0
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.out.append("\n")
            self.column = 0
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True
        self.indention = True

    def write_indicator(
        self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.out.append(" ")
            self.column += 1
        self.out.append(indicator)
        self.column += len(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    def _write_break(self, ch: str) -> None:
        """WRITE_BREAK: a line feed ends the line, other breaks are copied raw."""
        self.out.append(ch)
        self.column = 0

    # -- scalar writers ------------------------------------------------------

    def write_plain(self, text: str, allow_breaks: bool) -> None:
        if not self.whitespace and text:
            self.out.append(" ")
            self.column += 1
        # No space can reach column 81 (where folding starts) on a short text.
        fits = not allow_breaks or self.column + len(text) <= _BEST_WIDTH + 1
        if fits and _BREAK_RE.search(text) is None:
            self.out.append(text)
            self.column += len(text)
            self.whitespace = False
            self.indention = False
            return
        out = self.out
        spaces = breaks = False
        n = len(text)
        for i, ch in enumerate(text):
            if ch == " ":
                if (
                    allow_breaks
                    and not spaces
                    and self.column > _BEST_WIDTH
                    and not (i + 1 < n and text[i + 1] == " ")
                ):
                    self.write_indent()
                else:
                    out.append(ch)
                    self.column += 1
                spaces = True
            elif ch in _BREAK_CHARS:
                if not breaks and ch == "\n":
                    self._write_break("\n")
                self._write_break(ch)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                out.append(ch)
                self.column += 1
                self.indention = False
                spaces = breaks = False
        self.whitespace = False
        self.indention = False

    def write_single_quoted(self, text: str, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        escaped = text.replace("'", "''")
        if (not allow_breaks or self.column + len(escaped) <= _BEST_WIDTH) and (
            _BREAK_RE.search(text) is None
        ):
            self.out.append(escaped)
            self.column += len(escaped)
        else:
            out = self.out
            spaces = breaks = False
            last = len(text) - 1
            for i, ch in enumerate(text):
                if ch == " ":
                    if (
                        allow_breaks
                        and not spaces
                        and self.column > _BEST_WIDTH
                        and 0 < i < last
                        and text[i + 1] != " "
                    ):
                        self.write_indent()
                    else:
                        out.append(ch)
                        self.column += 1
                    spaces = True
                elif ch in _BREAK_CHARS:
                    if not breaks and ch == "\n":
                        self._write_break("\n")
                    self._write_break(ch)
                    self.indention = True
                    breaks = True
                else:
                    if breaks:
                        self.write_indent()
                    if ch == "'":
                        out.append("''")
                        self.column += 2
                    else:
                        out.append(ch)
                        self.column += 1
                    self.indention = False
                    spaces = breaks = False
            if breaks:
                self.write_indent()
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def write_double_quoted(self, text: str, allow_breaks: bool) -> None:
        self.write_indicator('"', True, False, False)
        needs_escape = _dq_escaped(text)
        if not needs_escape and (not allow_breaks or self.column + len(text) <= _BEST_WIDTH):
            self.out.append(text)
            self.column += len(text)
        else:
            out = self.out
            spaces = False
            last = len(text) - 1
            for i, ch in enumerate(text):
                if needs_escape and _dq_escaped(ch):
                    escape = "\\" + _double_quote_escape(ch)
                    out.append(escape)
                    self.column += len(escape)
                    spaces = False
                elif ch == " ":
                    if allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < last:
                        self.write_indent()
                        if text[i + 1] == " ":
                            out.append("\\")
                            self.column += 1
                    else:
                        out.append(ch)
                        self.column += 1
                    spaces = True
                else:
                    out.append(ch)
                    self.column += 1
                    spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", True, False, False)
        # Block scalar hints: indentation indicator, then chomping indicator.
        if text and (text[0] == " " or text[0] in _BREAK_CHARS):
            self.write_indicator(str(_BEST_INDENT), False, False, False)
        self.open_ended = 0
        chomp = ""
        if not text or text[-1] not in _BREAK_CHARS:
            chomp = "-"
        elif len(text) == 1 or text[-2] in _BREAK_CHARS:
            chomp = "+"
            self.open_ended = 2
        if chomp:
            self.write_indicator(chomp, False, False, False)
        self._write_break("\n")
        self.indention = True
        self.whitespace = True
        breaks = True
        out = self.out
        for piece in _LITERAL_SPLIT_RE.split(text):
            if not piece:
                continue
            if len(piece) == 1 and piece in _BREAK_CHARS:
                self._write_break(piece)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                out.append(piece)
                self.column += len(piece)
                self.indention = False
                breaks = False

    # -- nodes ---------------------------------------------------------------

    def scalar(
        self,
        text: str,
        style: int,
        *,
        tag: tuple[str, str] | None = None,
        plain_implicit: bool = True,
        quoted_implicit: bool = True,
        simple_key: bool,
    ) -> None:
        """Emit one scalar (libyaml's select_scalar_style, process_tag/scalar)."""
        multiline, plain_ok, single_ok, block_ok = _analyze(text)
        if simple_key and multiline:
            style = _DOUBLE
        if style == _PLAIN and (
            not plain_ok or (not text and simple_key) or (tag is None and not plain_implicit)
        ):
            style = _SINGLE
        if style == _SINGLE and not single_ok:
            style = _DOUBLE
        if style == _LITERAL and (not block_ok or simple_key):
            style = _DOUBLE
        if tag is None and not quoted_implicit and style != _PLAIN:
            tag = ("!", "")
        if tag is not None:
            handle, suffix = tag
            if not self.whitespace:
                self.out.append(" ")
                self.column += 1
            self.out.append(handle + suffix)
            self.column += len(handle) + len(suffix)
            self.whitespace = False
            self.indention = False
        self.increase_indent(True, False)
        if style == _PLAIN:
            self.write_plain(text, not simple_key)
        elif style == _SINGLE:
            self.write_single_quoted(text, not simple_key)
        elif style == _DOUBLE:
            self.write_double_quoted(text, not simple_key)
        else:
            self.write_literal(text)
        self.indent = self.indents.pop()

    def node(self, value: object, mapping: bool, simple_key: bool) -> None:
        """Emit any value (libyaml's emit_node, with Psych's visitors)."""
        if isinstance(value, Symbol | RubyTime | datetime.date):
            self.scalar(
                _ruby_plain_text(value), _PLAIN, quoted_implicit=False, simple_key=simple_key
            )
        elif isinstance(value, RubyBinary):
            text = base64.b64encode(value).decode("ascii")
            self.scalar(
                text,
                _LITERAL,
                tag=("!", "binary"),
                plain_implicit=False,
                quoted_implicit=False,
                simple_key=simple_key,
            )
        elif isinstance(value, str):
            if type(value) is not str:
                value = str.__str__(value)
            if value == "<<":
                self.scalar(
                    value,
                    _SINGLE,
                    tag=("!!", "str"),
                    plain_implicit=False,
                    quoted_implicit=False,
                    simple_key=simple_key,
                )
            else:
                self.scalar(value, _psych_string_style(value), simple_key=simple_key)
        elif value is None:
            self.scalar("", _PLAIN, quoted_implicit=False, simple_key=simple_key)
        elif isinstance(value, bool):
            text = "true" if value else "false"
            self.scalar(text, _PLAIN, quoted_implicit=False, simple_key=simple_key)
        elif isinstance(value, int):
            text = int.__repr__(value)
            self.scalar(text, _PLAIN, quoted_implicit=False, simple_key=simple_key)
        elif isinstance(value, float):
            text = _ruby_float_to_s(float(value))
            self.scalar(text, _PLAIN, quoted_implicit=False, simple_key=simple_key)
        elif isinstance(value, (list, tuple, dict)):
            key = id(value)
            anchor = self.anchors.get(key)
            if anchor is not None:
                if key in self.emitted:
                    self.write_indicator("*", True, False, False)
                    self.out.append(str(anchor))
                    self.column += len(str(anchor))
                    self.whitespace = False
                    self.indention = False
                    if simple_key:
                        self.out.append(" ")
                        self.column += 1
                    return
                self.emitted.add(key)
                self.write_indicator("&", True, False, False)
                self.out.append(str(anchor))
                self.column += len(str(anchor))
                self.whitespace = False
                self.indention = False
            if isinstance(value, dict):
                self.mapping(value)
            else:
                self.sequence(value, mapping)
        else:
            raise TypeError(f"cannot dump {type(value).__name__} as Psych would")

    def sequence(self, items: list[object] | tuple[object, ...], mapping: bool) -> None:
        if not items:
            self.write_indicator("[", True, True, False)
            self.write_indicator("]", False, False, False)
            return
        self.increase_indent(False, mapping and not self.indention)
        for item in items:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            self.node(item, False, False)
        self.indent = self.indents.pop()

    def mapping(self, items: dict[object, object]) -> None:
        if not items:
            self.write_indicator("{", True, True, False)
            self.write_indicator("}", False, False, False)
            return
        self.increase_indent(False, False)
        for key, value in items.items():
            self.write_indent()
            if self.is_simple_key(key):
                self.node(key, True, True)
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.node(key, True, False)
                self.write_indent()
                self.write_indicator(":", True, False, True)
            self.node(value, True, False)
        self.indent = self.indents.pop()

    def is_simple_key(self, key: object) -> bool:
        """Apply libyaml's check_simple_key: one line, at most 128 bytes with its tag."""
        if isinstance(key, (list, tuple, dict)):
            return not key or (id(key) in self.anchors and id(key) in self.emitted)
        if isinstance(key, str):
            if _analyze(key)[0]:
                return False
            extra = 5 if key == "<<" else 0  # "!!" + "str"
            return len(key.encode("utf-8")) + extra <= 128
        if isinstance(key, int) and not isinstance(key, bool):
            return len(int.__repr__(key)) <= 128
        return True

    def finish(self) -> str:
        """Emit the implicit document end and the stream end; return the text."""
        self.write_indent()
        if self.open_ended == 2:
            self.write_indicator("...", True, False, False)
            self.write_indent()
        return "".join(self.out)


def _ruby_plain_text(value: Symbol | RubyTime | datetime.date) -> str:
    """Psych's text for a Symbol (``:name``), a Time or a Date."""
    if isinstance(value, Symbol):
        return ":" + str.__str__(value)
    if isinstance(value, RubyTime):
        return value.psych()
    return value.isoformat()


def _find_anchors(value: object) -> dict[int, int]:
    """Number the arrays and hashes Psych would emit as anchors/aliases.

    Psych registers every Array and Hash it visits; visiting one again (same
    object) emits an alias, and anchors are numbered in the order the aliases are
    first met. Strings are never aliased.
    """
    seen: set[int] = set()
    anchors: dict[int, int] = {}

    def visit(node: object) -> None:
        if isinstance(node, (list, tuple, dict)):
            key = id(node)
            if key in seen:
                if key not in anchors:
                    anchors[key] = len(anchors) + 1
                return
            seen.add(key)
            if isinstance(node, dict):
                for k, v in node.items():
                    visit(k)
                    visit(v)
            else:
                for item in node:
                    visit(item)

    visit(value)
    return anchors


def _has_containers(value: dict[object, object]) -> bool:
    """Tell whether a mapping holds any array or hash (as a key or a value)."""
    return any(
        isinstance(k, (list, tuple, dict)) or isinstance(v, (list, tuple, dict))
        for k, v in value.items()
    )


def _one_plain_line(key: str, value: str) -> bool:
    """Whether the emitter writes ``{key: value}`` as the line ``key: value``.

    That is: Psych asks for the plain style for both strings, libyaml allows it
    (:meth:`_Emitter.scalar`), the key is a simple key, and ``write_plain`` does not
    fold the value (it starts folding past column 80).
    """
    if key == "<<" or value == "<<" or len(key) + 2 + len(value) > _BEST_WIDTH + 1:
        return False
    if _psych_string_style(key) != _PLAIN or _psych_string_style(value) != _PLAIN:
        return False
    key_multiline, key_plain, _, _ = _analyze(key)
    value_multiline, value_plain, _, _ = _analyze(value)
    return (
        key_plain
        and value_plain
        and not key_multiline
        and not value_multiline
        and len(key.encode("utf-8")) <= 128
    )


@lru_cache(maxsize=16384)
def _dump_command(key: str, value: str) -> str:
    """Cached dump of the common one-entry mapping ``{key: value}``.

    Most commands are one plain line (``exec_in: echo hi``), written without the
    emitter: a recipe of 100,000 microsteps dumps 100,000 of them.
    """
    if _one_plain_line(key, value):
        return f"---\n{key}: {value}\n"
    emitter = _Emitter({})
    emitter.mapping({key: value})
    return emitter.finish()


def dump(value: object) -> str:
    r"""Exactly Ruby Psych 5.0.2's ``YAML.dump(value)`` text.

    The text includes the leading ``---`` and the final newline (and a final
    ``...`` line after a ``|+`` block scalar).

    Args:
        value: a ``str``, ``int``, ``float``, ``bool``, ``None``, ``list``/``tuple``
            (Ruby Array) or ``dict`` (Ruby Hash, insertion order kept), nested
            arbitrarily. A list or dict that occurs more than once (the same object)
            is emitted once with an anchor (``&1``) and then as aliases (``*1``),
            as Psych does.

    Returns:
        The YAML document, e.g. ``"---\nexec_local: echo hello\n"``.

    Raises:
        TypeError: for any other type (Psych would emit a Ruby-specific tag).

    Assumption (not covered by the corpora): a top-level ``None`` gives ``"---\n"``,
    since libyaml 0.2.5 writes no trailing space for an empty plain scalar.
    """
    if type(value) is dict and len(value) == 1:
        ((key, item),) = value.items()
        if type(key) is str and type(item) is str:
            return _dump_command(key, item)
    anchors = (
        _find_anchors(value)
        if isinstance(value, (list, tuple)) or (isinstance(value, dict) and _has_containers(value))
        else {}
    )
    emitter = _Emitter(anchors)
    emitter.node(value, False, False)
    return emitter.finish()
