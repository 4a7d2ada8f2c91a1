"""Kameleon's ``$${name}`` variables: Ruby string forms, substitution, overloads.

Substitution is textual and recursive, exactly as upstream does it: the first
reference is replaced by its value's string form and the search restarts on
*value + rest of text*. Unlike upstream, a reference cycle is reported instead of
recursing until the stack overflows.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping

from kameleon_nb.core.limits import Budget
from kameleon_nb.core.rubytypes import RubyBinary, RubyTime, Symbol, date_inspect, inspect_str
from kameleon_nb.errors import RecipeError

__all__ = [
    "VARIABLE_RE",
    "UndefinedVariableError",
    "VariableCycleError",
    "overload",
    "references",
    "ruby_inspect",
    "ruby_str",
    "substitute",
    "warn_bare",
]

#: ``$${name}`` or ``$$name``; group 1 is the braced name, group 2 the bare one.
VARIABLE_RE = re.compile(r"\$\$\{([a-zA-Z0-9_-]+)\}|\$\$([a-zA-Z0-9_-]+)")
_BARE_RE = re.compile(r"\$\$([a-zA-Z0-9_-]+)")


def _boundary(tail: str) -> int:
    """How much of ``tail`` a name that starts before it can still reach."""
    match = re.match(r"\$?\$?[a-zA-Z0-9_-]*", tail)
    return match.end() if match else 0


def warn_bare(text: str, on_unbraced: Callable[[str], None] | None) -> None:
    """Report every ``$$name`` written without braces in ``text``, in order.

    Upstream scans each text it substitutes into for such names before it replaces
    anything, so every one is reported, even after an error further on.
    """
    if on_unbraced is not None and "$$" in text:
        for match in _BARE_RE.finditer(text):
            on_unbraced(match.group(1))


class UndefinedVariableError(RecipeError):
    """A variable is used but defined nowhere (strict substitution)."""

    def __init__(self, written: str, name: str, source: str) -> None:
        self.name = name
        self.source = source
        super().__init__(
            f"{source}: variable {written} not found in local or global "
            f"(define it under 'global:' or pass -g {name}:VALUE)"
        )


class VariableCycleError(RecipeError):
    """A variable refers to itself, directly or through others."""

    def __init__(self, chain: list[str], source: str) -> None:
        self.chain = chain
        self.source = source
        arrows = " -> ".join(f"$${{{name}}}" for name in chain)
        super().__init__(
            f"{source}: variable cycle {arrows}: a variable cannot refer to itself; "
            "give one of them a value that does not use the others"
        )


def ruby_str(value: object) -> str:
    """Ruby's ``to_s`` of a YAML value, which is what substitution inserts.

    >>> [ruby_str(v) for v in (12.5, True, None, 493, "x")]
    ['12.5', 'true', '', '493', 'x']
    >>> ruby_str({"cmd": "bash"})
    '{"cmd"=>"bash"}'
    """
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)  # a Symbol: its name
    if value is None:
        return ""
    if isinstance(value, list | dict | tuple):
        return ruby_inspect(value)
    return _ruby_scalar(value)


def _ruby_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _ruby_float(value)
    if isinstance(value, RubyTime | RubyBinary):
        return value.to_s()
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %z").strip()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _ruby_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


def ruby_inspect(value: object) -> str:
    """Ruby's ``inspect`` of a YAML value (lists, hashes, strings, nil...).

    >>> ruby_inspect(["a", 1, None, {"k": True}])
    '["a", 1, nil, {"k"=>true}]'
    """
    if isinstance(value, Symbol):
        return value.inspect()
    if isinstance(value, str):
        return inspect_str(value)
    if value is None:
        return "nil"
    if isinstance(value, RubyTime):
        return value.inspect()
    if isinstance(value, RubyBinary):
        return inspect_str(value.to_s())
    if isinstance(value, dict):
        items = ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return date_inspect(value)
    return _ruby_scalar(value)


def references(text: str) -> list[str]:
    """Names of the variables referenced in ``text``, in order.

    >>> references("$${a} $$b-c $$ $${d}")
    ['a', 'b-c', 'd']
    """
    return [m.group(1) or m.group(2) for m in VARIABLE_RE.finditer(text)]


def substitute(
    text: str,
    lookup: Callable[[str], str | None],
    *,
    source: str,
    on_unbraced: Callable[[str], None] | None = None,
    strict: bool = False,
    budget: Budget | None = None,
) -> str:
    """Replace every variable reference in ``text``, recursively.

    Args:
        text: the text (a YAML dump, or a path).
        lookup: gives a name's string form, or ``None`` when it is undefined.
        source: the file the text comes from, for error messages.
        on_unbraced: called with each name written as ``$$name`` without braces.
        strict: an undefined name is an error (else it becomes the empty string).
        budget: what the recipe's expansions spent so far (a fresh one if not given).

    Returns:
        The text with every reference expanded.

    Raises:
        VariableCycleError: a variable expands (directly or not) to itself.
        UndefinedVariableError: ``strict`` and a name is undefined.
        ExpansionLimitError: the text, or the recipe's expansions, exceed the budgets
            of :mod:`~kameleon_nb.core.limits`.

    >>> substitute("a $${x} b", {"x": "[$${y}]", "y": "1"}.get, source="r.yaml")
    'a [1] b'
    """
    warn_bare(text, on_unbraced)
    match = VARIABLE_RE.search(text)
    if match is None:
        return text
    out: list[str] = []
    rest = text
    produced = 0  # characters already in ``out``
    spent = Budget() if budget is None else budget
    spent.new_text()
    # Each entry: (name, length of the text after its expansion). While the scan is
    # still inside an expansion of ``name``, meeting ``name`` again is a cycle.
    open_expansions: list[tuple[str, int]] = []
    while match is not None:
        name = match.group(1) or match.group(2)
        position = len(rest) - match.start()  # measured from the end: stable across edits
        while open_expansions and open_expansions[-1][1] >= position:
            open_expansions.pop()
        if any(open_name == name for open_name, _ in open_expansions):
            chain = [open_name for open_name, _ in open_expansions]
            raise VariableCycleError([*chain[chain.index(name) :], name], source)
        value = lookup(name)
        if value is None:
            if strict:
                raise UndefinedVariableError(match.group(0), name, source)
            value = ""
        out.append(rest[: match.start()])
        produced += match.start()
        tail = rest[match.end() :]
        # checked before the text is built: a doubling variable stops here, small
        Budget.check_text(source, "variables", produced + len(value) + len(tail))
        spent.spend(source, "variables", len(value) + len(tail))
        # upstream scans the value and what follows it: a bare name may now straddle both
        warn_bare(value + tail[: _boundary(tail)], on_unbraced)
        open_expansions.append((name, len(tail)))
        rest = value + tail
        match = VARIABLE_RE.search(rest)
    out.append(rest)
    return "".join(out)


def overload(
    child: str,
    key: str,
    parent_value: object,
    on_unbraced: Callable[[str], None] | None = None,
) -> str:
    """Apply upstream's overload rule to a child value that refers to its own key.

    When a child value for ``key`` contains ``$${key}``, its *first* reference is
    replaced by the parent's value (``pkgs: $${pkgs} extra``). If that first
    reference is another variable, upstream replaces it by the empty string and
    keeps the self-reference, which later shows up as a cycle.

    >>> overload("$${pkgs} vim", "pkgs", "curl")
    'curl vim'
    """
    if f"$${key}" not in child and f"$${{{key}}}" not in child:
        return child
    warn_bare(child, on_unbraced)
    match = VARIABLE_RE.search(child)
    assert match is not None  # at least the self-reference exists
    name = match.group(1) or match.group(2)
    replacement = ruby_str(parent_value) if name == key else ""
    return child[: match.start()] + replacement + child[match.end() :]


def lookup_in(*scopes: Mapping[str, object]) -> Callable[[str], str | None]:
    """A lookup over scopes, the first having the name winning."""

    def lookup(name: str) -> str | None:
        for scope in scopes:
            if name in scope:
                return ruby_str(scope[name])
        return None

    return lookup
