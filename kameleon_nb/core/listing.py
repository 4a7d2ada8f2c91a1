"""The recipe and template listings of ``kameleon list`` and ``kameleon template list``.

Pure text: the names and descriptions come in, upstream's lines come out (its
column widths, its ``...`` cut at the terminal width, its progress bar as drawn on a
stream that is not a terminal).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ListedRecipe", "ProgressBar", "listing_text"]

_REPOSITORY_NAME = re.compile(r"^([^/]+/)(.+/)?([^/]+)$")


@dataclass(frozen=True, slots=True)
class ListedRecipe:
    """One row: the recipe's name (path without ``.yaml``) and its description."""

    name: str
    description: str


def _say(message: str) -> str:
    """A message as Thor's ``say`` prints it: no newline after a trailing blank."""
    return message if message.endswith((" ", "\t", "\n")) else message + "\n"


def _cut(description: str, width: int) -> str:
    """Upstream's cut: beyond ``width - 4`` characters, keep ``width - 3`` and ``...``.

    >>> _cut("abcdefghij", 8)
    'abcde...'
    >>> _cut("abcd", 8)
    'abcd'
    """
    if len(description) > width - 4:
        stop = width - 3 if width - 3 > 0 else len(description) + width - 3
        return description[: max(stop, 0)] + "..."
    return description


def listing_text(
    recipes: Sequence[ListedRecipe], terminal_width: int, *, by_repository: bool
) -> str:
    """The rows, names padded to the longest, a rule between repositories.

    ``by_repository`` (templates): the first path component is the repository, and a
    ``----- | -----`` rule separates two repositories.
    """
    if not recipes:
        return ""
    name_width = max(len(r.name) for r in recipes)
    desc_width = terminal_width - name_width - 3
    if desc_width < 0:
        desc_width = 80 - name_width - 3
    out: list[str] = []
    previous: str | None = None
    for recipe in recipes:
        repository = ""
        if by_repository:
            match = _REPOSITORY_NAME.match(recipe.name)
            repository = match.group(1) if match else ""
        if previous is not None and previous != repository:
            out.append(_say(f"{'-' * name_width} | {'-' * desc_width}"))
        previous = repository
        out.append(recipe.name.ljust(name_width) + " | ")
        out.append(_say(_cut(recipe.description, desc_width)))
    return "".join(out)


class ProgressBar:
    """Upstream's ``Resolving recipes: |....`` bar, as ruby-progressbar draws it off a terminal.

    The bar starts at 10 of ``count + 10`` and gains one step per recipe that loads;
    each :meth:`advance` returns the characters to print now. It ends with ``|`` and a
    newline only when every recipe loaded (100 %).
    """

    def __init__(self, title: str, count: int, width: int) -> None:
        self._prefix = f"{title}: |"
        self._length = max(width - len(self._prefix) - 1, 0)
        self._total = count + 10
        self._progress = 10
        self._printed = 0

    def _text(self) -> str:
        percent = self._progress * 100 // self._total
        dots = "." * (self._length * percent // 100)
        text = f"{self._prefix}{dots}"
        return text + "|" if self._progress >= self._total else text

    def start(self) -> str:
        """The first drawing (upstream starts the bar on a new line)."""
        return "\n" + self._delta()

    def advance(self) -> str:
        """One more recipe loaded."""
        self._progress += 1
        return self._delta() + ("\n" if self._progress >= self._total else "")

    def _delta(self) -> str:
        text = self._text()
        new = text[self._printed :]
        self._printed = len(text)
        return new
