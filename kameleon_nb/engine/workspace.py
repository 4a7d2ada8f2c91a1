"""Find the recipes of a directory tree (``kameleon list``, ``kameleon template list``).

As upstream: every ``*.yaml`` file, recursively, skipping directories named ``steps``
and ``.steps``; a ``.filter`` file holds a regular expression that the recipes below it
(their paths from that directory, without ``.yaml``) must match, unless ``-f`` gives one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from kameleon_nb.core.listing import ListedRecipe
from kameleon_nb.engine.recipes import loads_cleanly
from kameleon_nb.errors import UsageError

__all__ = ["compile_filter", "find_recipes", "load_listed"]

log = logging.getLogger(__name__)


def compile_filter(pattern: str, where: str) -> re.Pattern[str]:
    """A ``-f``/``.filter`` regular expression, or a usage error naming where it came from."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise UsageError(
            f"ERROR: {where}: {pattern!r} is not a valid regular expression ({err})"
        ) from err


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir(), key=str)
    except OSError:
        return []


def find_recipes(
    path: Path, pattern: re.Pattern[str] | None = None, base: Path | None = None
) -> list[Path]:
    """The ``*.yaml`` files under ``path`` that the filter in force lets through, in order."""
    base = path if base is None else base
    if pattern is None:
        filter_file = path / ".filter"
        try:
            text = filter_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            pass
        else:
            pattern = compile_filter(text, str(filter_file))
            base = path
            log.debug("found filter %s in %s", text, path)
    children = _children(path)
    found = []
    for child in children:
        if child.suffix == ".yaml" and child.is_file():
            name = str(child).replace(str(base) + "/", "").removesuffix(".yaml")
            if pattern is None or pattern.search(name):
                found.append(child)
    for child in children:
        if child.is_dir() and child.name not in ("steps", ".steps"):
            found.extend(find_recipes(child, pattern, base))
    return found


def load_listed(root: Path, files: list[Path]) -> Iterator[ListedRecipe | None]:
    """Each file as a listed recipe, or None when upstream's load of it fails (skipped)."""
    for path in files:
        loaded = loads_cleanly(str(path), cwd=str(root))
        if loaded is None:
            yield None
            continue
        name = str(path).replace(str(root) + "/", "").removesuffix(".yaml")
        yield ListedRecipe(name, loaded.description or "")
