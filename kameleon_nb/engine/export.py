"""``kameleon export``: copy a recipe and every file it uses into a directory.

The files keep their paths relative to the workspace (the current directory), so the
exported tree builds as the original does. As upstream, a file outside the workspace
is an error, and so is an existing target unless ``--add`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kameleon_nb.engine.filecopy import Report, copy_file
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.engine.templates import all_files
from kameleon_nb.errors import ExportError

__all__ = ["export_recipe", "exported_files"]


def exported_files(
    recipe_path: str, workspace: Path, cli_globals: Mapping[str, str]
) -> tuple[str, list[str]]:
    """The recipe path (``.yaml`` added) and its files relative to the workspace, once each.

    Raises:
        ExportError: a file lies outside the workspace.
    """
    if not recipe_path.endswith(".yaml"):
        recipe_path += ".yaml"
    recipe = open_recipe(
        recipe_path,
        cli_globals=cli_globals,
        cwd=str(workspace),
        build_dir_uuid=False,
        strict_globals=False,
    )
    relative: list[str] = []
    for path in dict.fromkeys(all_files(recipe)):
        shown = os.path.relpath(path, workspace)
        if shown == ".." or shown.startswith("../"):
            raise ExportError(
                f"Recipe '{recipe_path}' depends on a file outside of the current "
                f"directory: '{shown}'"
            )
        relative.append(shown)
    return recipe_path, relative


def export_recipe(
    files: list[str], destination: str, workspace: Path, *, add: bool, report: Report
) -> None:
    """Copy ``files`` (relative to the workspace) under ``destination``."""
    target = Path(os.path.join(workspace, destination))
    if target.exists():
        if not add:
            raise ExportError(
                f"Target export directory '{destination}' already exists, use the --add "
                "option if you really want to export the recipe files to it (this may "
                "overwrite some existing files)"
            )
    else:
        target.mkdir(parents=True)
    for relative in files:
        copy_file(
            workspace / relative,
            Path(os.path.join(destination, relative)),
            workspace=workspace,
            keep_mode=False,
            report=report,
        )
