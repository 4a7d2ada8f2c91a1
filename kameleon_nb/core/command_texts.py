"""Upstream's command objects, kept as their texts.

Upstream stores a command as ``string_cmd``, the stripped Psych dump of its YAML
item, and derives everything else by parsing that text again: its key, its value
(scalars as Ruby strings, lists as sub-commands dumped one by one), alias
arguments, and the re-dump after an alias argument is put in (``remaster``). Each
round trip through stripped text has visible effects that ids and appliances
depend on: a ``|`` block at the very end of a command loses its final newline (so
the last block argument of ``write_in`` does), nested scalars become strings, and
a bare name inside a list becomes ``name:`` (a key with no value). This module
applies the same operations to texts, so these effects follow from the mechanism
rather than from special cases.

Every function takes ``keep``: ``False`` gives upstream's text, with every ``---``
deleted (what ids hash); ``True`` keeps them (what kameleon_nb runs, semantics
§0.3 #1).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

from kameleon_nb.core import psych
from kameleon_nb.core.limits import Budget
from kameleon_nb.core.psych_load import tokenize
from kameleon_nb.core.variables import ruby_str
from kameleon_nb.errors import RecipeError, YamlError

__all__ = [
    "CommandValue",
    "NotACommandError",
    "alias_arity",
    "expand_aliases",
    "initial_text",
    "key_of",
    "parse",
    "ruby_gsub",
    "to_array",
    "value_of",
]

#: A command's value: sub-command texts, a Ruby string, or ``None`` (a bare name).
CommandValue = list[str] | str | None

Parse = Callable[[str], object]

_ALIAS_ARG_RE = re.compile(r"@\d+")
_REPLACEMENT_RE = re.compile(r"\\(.)", re.S)


# A one-line ``key: value`` (or a bare ``name``) that YAML can only read as a mapping of
# one plain scalar to one plain scalar: printable ASCII, no ``#`` (a comment), no ``:``
# before a blank or at the end (another mapping), no indicator first (``-``, ``[``,
# ``&``, ``'``...), no trailing blank. Most command texts are of this shape.
_PLAIN_SCALAR = (
    r"(?![-?:,\[\]{}#&*!|>'\"%@`])[\x21-\x7e]"
    r"(?:(?:[\x20-\x22\x24-\x39\x3b-\x7e]|:(?=[\x21-\x7e]))*[\x21-\x22\x24-\x39\x3b-\x7e])?"
)
_SIMPLE_COMMAND_RE = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)(?:: +({_PLAIN_SCALAR}))?")
_SIMPLE_COMMAND_MAX = 4096
# Resolution goes over all the texts of a recipe three times (aliases, variables, the
# final check): an LRU cache smaller than a recipe misses every time. This one holds
# the texts of 100,000-microstep recipes.
_TEXTS_CACHED = 2**18


@functools.lru_cache(maxsize=_TEXTS_CACHED)
def parse(text: str) -> object:
    """Parse a command text as upstream does (``YAML.unsafe_load``).

    A simple ``key: value`` text is read without the YAML parser, with the same scalar
    rules (:func:`~kameleon_nb.core.psych_load.tokenize`): a recipe's commands are
    parsed several times each, and a YAML parse costs a hundred times more.

    The same texts come back again and again (every alias instance, every re-dump),
    so results are cached: callers must not change what they get.

    >>> parse("exec_in: echo 1:30"), parse("exec_in: 1:30"), parse("on")
    ({'exec_in': 'echo 1:30'}, {'exec_in': 5400}, True)
    """
    if len(text) <= _SIMPLE_COMMAND_MAX:
        simple = _SIMPLE_COMMAND_RE.fullmatch(text)
        if simple is not None:
            key, value = simple.groups()
            return tokenize(key) if value is None else {tokenize(key): tokenize(value)}
    from kameleon_nb.core.loader import parse_yaml  # noqa: PLC0415 - loader imports us

    return parse_yaml(text, source="<unknown>")


def initial_text(item: object, *, keep: bool) -> str:
    r"""A command item's ``string_cmd``: its Psych dump, stripped (``---`` removed).

    >>> initial_text({"exec_in": "a\nb\n"}, keep=False)
    'exec_in: |\n  a\n  b'
    """
    dumped = psych.dump(item)
    if keep:
        return dumped[3:].strip() if dumped.startswith("---") else dumped.strip()
    return dumped.replace("---", "").strip()


class NotACommandError(YamlError):
    """A text that is no command at all: upstream cannot even tell its key."""

    def __init__(self, text: str) -> None:
        super().__init__(f"not a command: {text!r}")
        self.text = text


def key_of(text: str) -> object:
    """The command's key (its name for a bare command).

    Raises:
        NotACommandError: the text is neither a mapping nor a string.
    """
    try:
        parsed = parse(text)
    except YamlError as err:
        raise NotACommandError(text) from err
    if isinstance(parsed, dict) and parsed:
        return next(iter(parsed))
    if isinstance(parsed, str):
        return parsed
    raise NotACommandError(text)


@functools.lru_cache(maxsize=_TEXTS_CACHED)
def value_of(text: str, *, keep: bool) -> CommandValue:
    """The command's value: sub-command texts, a Ruby string, or ``None``.

    Raises:
        YamlError: the text is not one command (upstream's syntax error).

    The result is cached: callers must not change it.
    """
    parsed = parse(text)
    if isinstance(parsed, str):
        return None
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise YamlError(f"not a one-key command: {text!r}")
    value = next(iter(parsed.values()))
    if isinstance(value, list):
        return [initial_text(item, keep=keep) for item in value]
    return ruby_str(value)


def to_array(text: str, *, keep: bool) -> dict[object, object]:
    """The plain structure upstream re-dumps a command from (``to_array``)."""
    key = key_of(text)
    value = value_of(text, keep=keep)
    if isinstance(value, list):
        return {key: [to_array(child, keep=keep) for child in value]}
    return {key: value}


def ruby_gsub(text: str, pattern: str, replacement: str) -> str:
    r"""Ruby's ``String#gsub(pattern_string, replacement_string)``.

    The replacement's backslash sequences are interpreted as Ruby does: ``\\0`` and
    ``\\&`` insert the match, ``\\``` and ``\\'`` what precedes and follows it,
    ``\\1``-``\\9`` an (absent) group, ``\\\\`` one backslash; any other is kept.

    >>> ruby_gsub("a@1b", "@1", r"x\\y\0\\\\z")
    'ax\\\\y@1\\\\zb'
    """
    if "\\" not in replacement:
        return text.replace(pattern, replacement)

    def expand(match: re.Match[str]) -> str:
        def one(escape: re.Match[str]) -> str:
            char = escape.group(1)
            if char in "0&":
                return match.group(0)
            if char == "`":
                return match.string[: match.start()]
            if char == "'":
                return match.string[match.end() :]
            if char.isdigit():
                return ""
            if char == "\\":
                return "\\"
            return escape.group(0)

        return _REPLACEMENT_RE.sub(one, replacement)

    return re.sub(re.escape(pattern), expand, text)


@functools.lru_cache(maxsize=65536)
def _gsub_command(text: str, pattern: str, replacement: str, *, keep: bool) -> str:
    key = key_of(text)
    value = value_of(text, keep=keep)
    if isinstance(value, list):
        children = [_gsub_command(c, pattern, replacement, keep=keep) for c in value]
        return initial_text({key: [to_array(c, keep=keep) for c in children]}, keep=keep)
    return initial_text({key: ruby_gsub(value or "", pattern, replacement)}, keep=keep)


def alias_arity(commands: list[object]) -> int:
    """How many arguments an alias takes: its distinct ``@N`` tokens."""
    return len(set(_ALIAS_ARG_RE.findall(psych.dump(commands))))


def _flatten(value: object) -> list[object]:
    if not isinstance(value, list):
        return [value]
    flat: list[object] = []
    for item in value:
        flat.extend(_flatten(item))
    return flat


def expand_aliases(
    text: str,
    aliases: Mapping[str, list[object]],
    *,
    keep: bool,
    source: str,
    depth: int = 0,
    budget: Budget | None = None,
) -> list[str]:
    """Expand the aliases of one command text, recursively, as upstream's alias pass.

    Args:
        text: the command's ``string_cmd``.
        aliases: alias name to its command items.
        keep: keep ``---`` (the text that runs) or not (the text ids hash).
        source: the file the command comes from, for errors.
        depth: how deep the expansion is (an alias that uses itself is an error).
        budget: what the recipe's expansions spent so far (a fresh one if not given).

    Returns:
        The command texts that replace it.

    Raises:
        RecipeError: an alias got the wrong number of arguments, or expands forever.
        ExpansionLimitError: the aliases expand beyond the budgets of
            :mod:`~kameleon_nb.core.limits`.
    """
    spent = Budget() if budget is None else budget
    if depth == 0:
        spent.new_text()
    if depth > 50:
        raise RecipeError(f"{source}: aliases expand into each other without end")
    name = key_of(text)
    alias = aliases.get(name) if isinstance(name, str) else None
    if alias is not None:
        parsed = parse(text)
        args = _flatten(parsed[name]) if isinstance(parsed, dict) else []
        expected = alias_arity(alias)
        if len(args) != expected:
            given = len(args)
            problem = (
                f"{name} takes no arguments ({given} given)"
                if expected == 0
                else f"{name} takes exactly {expected} arguments ({given} given)"
            )
            raise RecipeError(problem)
        expanded: list[str] = []
        for template in alias:
            instance = initial_text(template, keep=keep)
            for index, arg in enumerate(args, start=1):
                token, replacement = f"@{index}", ruby_str(arg)
                growth = instance.count(token) * max(0, len(replacement) - len(token))
                Budget.check_text(source, "aliases", len(instance) + growth)
                instance = _gsub_command(instance, token, replacement, keep=keep)
            spent.spend(source, "aliases", len(instance))
            expanded.extend(
                expand_aliases(
                    instance, aliases, keep=keep, source=source, depth=depth + 1, budget=spent
                )
            )
        return expanded
    value = value_of(text, keep=keep)
    if isinstance(value, list):
        children = [
            expanded
            for child in value
            for expanded in expand_aliases(
                child, aliases, keep=keep, source=source, depth=depth + 1, budget=spent
            )
        ]
        spent.spend(source, "aliases", sum(map(len, children)), count=False)
        return [initial_text({name: [to_array(c, keep=keep) for c in children]}, keep=keep)]
    return [text]
