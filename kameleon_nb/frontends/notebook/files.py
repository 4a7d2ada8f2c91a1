"""Notebook ⇄ recipe: open a recipe as a notebook, export a notebook as a recipe.

The conversions themselves are pure (:mod:`notebook_import`, :mod:`notebook_export`:
cells in, cells or files out); this module holds the edges: ``.ipynb`` files read and
written as plain JSON (nbformat 4.5, no Jupyter needed, so the ``kameleon`` command
can use it), export directories written, and the entry points of the CLI
(``kameleon notebook``, ``kameleon export-recipe``) and of ``%kameleon export``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kameleon_nb.engine.recipes import load, resolve
from kameleon_nb.errors import (
    ExportError,
    KameleonError,
    MissingFileError,
    NotebookError,
    UsageError,
)
from kameleon_nb.frontends.notebook.export import ExportedFile, RecipeExport, plan_export
from kameleon_nb.frontends.notebook.import_recipe import recipe_cells
from kameleon_nb.frontends.notebook.model import CellKind, NotebookCell

__all__ = [
    "CellKind",
    "ExportReport",
    "ExportedFile",
    "NotebookCell",
    "NotebookReport",
    "RecipeExport",
    "cells_of_json",
    "cells_of_sources",
    "check_export",
    "export_notebook",
    "export_session",
    "notebook_json",
    "plan_export",
    "read_notebook",
    "recipe_cells",
    "recipe_notebook",
    "undo_export",
    "write_export",
    "write_notebook",
]

_LISTED = 12  # files named per line of a report

_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


# ------------------------------------------------------------------- .ipynb


def notebook_json(cells: Sequence[NotebookCell]) -> dict[str, object]:
    """An nbformat 4.5 notebook (as JSON data) holding ``cells``; cell ids are stable."""
    out: list[dict[str, object]] = []
    for index, cell in enumerate(cells):
        digest = hashlib.sha1(f"{index}\0{cell.source}".encode(), usedforsecurity=False)
        entry: dict[str, object] = {
            "cell_type": cell.kind.value,
            "id": digest.hexdigest()[:12],
            "metadata": dict(cell.metadata),
            "source": cell.source.splitlines(keepends=True),
        }
        if cell.kind is CellKind.CODE:
            entry["execution_count"] = None
            entry["outputs"] = []
        out.append(entry)
    return {
        "cells": out,
        "metadata": {"kernelspec": dict(_KERNELSPEC), "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def cells_of_json(data: object, origin: str) -> list[NotebookCell]:
    """The cells of a notebook's JSON data.

    Raises:
        NotebookError: it is not an nbformat 4 notebook.
    """
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(f"{origin}: not a Jupyter notebook (no 'cells' list)")
    if data.get("nbformat") != 4:
        raise NotebookError(
            f"{origin}: nbformat {data.get('nbformat')!r} is not supported; save it as "
            "nbformat 4 (jupyter nbconvert --to notebook)"
        )
    cells = []
    for index, raw in enumerate(data["cells"]):
        if not isinstance(raw, dict):
            raise NotebookError(f"{origin}, cell {index + 1}: not a cell")
        source = raw.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        kind = next((k for k in CellKind if k.value == raw.get("cell_type")), CellKind.RAW)
        metadata = raw.get("metadata")
        cells.append(NotebookCell(kind, text, metadata if isinstance(metadata, dict) else {}))
    return cells


def read_notebook(path: str) -> list[NotebookCell]:
    """The cells of an ``.ipynb`` file.

    Raises:
        MissingFileError: there is no such file.
        NotebookError: it is not a readable nbformat 4 notebook.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingFileError(f"No such file or directory - {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise NotebookError(f"{path}: cannot read the notebook ({err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(
            f"{path}:{err.lineno}:{err.colno}: not a Jupyter notebook (invalid JSON: {err.msg})"
        ) from None
    return cells_of_json(data, path)


def write_notebook(cells: Sequence[NotebookCell], path: str) -> None:
    """Write cells as an ``.ipynb`` file (as Jupyter writes them: sorted keys, indent 1)."""
    text = json.dumps(notebook_json(cells), indent=1, sort_keys=True, ensure_ascii=False)
    _write_text(path, text + "\n")


def cells_of_sources(sources: Sequence[str]) -> list[NotebookCell]:
    """Code cells from sources (what a live session ran)."""
    return [NotebookCell(CellKind.CODE, source) for source in sources]


# ------------------------------------------------------------------- writing


def _write_text(path: str, text: str) -> None:
    _replace(path, lambda temp: Path(temp).write_text(text, encoding="utf-8"))


def _replace(path: str, fill: Callable[[str], object]) -> None:
    """Write a file through a temporary one (a reader never sees half of it).

    A symbolic link is written through (the recipe overlays of a collection share
    their recipe file through links).
    """
    if os.path.islink(path):
        path = os.path.realpath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".kameleon-")
    os.close(handle)
    try:
        fill(temp)
        mode = os.stat(path).st_mode if os.path.exists(path) else 0o644
        os.chmod(temp, mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def write_export(
    export: RecipeExport, backups: dict[str, bytes | None] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Write an export's files (atomically, one by one).

    Args:
        export: what to write.
        backups: filled with what each written path held before (None: no file), so
            that :func:`undo_export` can put it back.

    Returns:
        The paths (relative to the export directory) written, copied, and left as
        they already were.

    Raises:
        ExportError: a file cannot be written.
    """
    written: list[str] = []
    copied: list[str] = []
    unchanged: list[str] = []
    for file in export.files:
        target = os.path.join(export.directory, file.path)
        try:
            old = _read(target) if os.path.isfile(target) else None  # read once
            if backups is not None:
                backups.setdefault(target, old)
            if file.text is not None:
                if old == file.text.encode():
                    unchanged.append(file.path)
                    continue
                _write_text(target, file.text)
                written.append(file.path)
                continue
            assert file.source is not None
            if old is not None and (
                os.path.samefile(file.source, target) or old == _read(file.source)
            ):
                unchanged.append(file.path)
                continue
            _replace(target, functools.partial(shutil.copyfile, file.source))
            copied.append(file.path)
        except OSError as err:
            raise ExportError(f"Cannot write {target}: {err.strerror or err}") from None
    return written, copied, unchanged


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _write_bytes(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


def undo_export(backups: Mapping[str, bytes | None]) -> None:
    """Put back what :func:`write_export` replaced (files it created are removed)."""
    for target, old in backups.items():
        real = os.path.realpath(target)
        if old is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(real)
        elif not os.path.isfile(real) or _read(real) != old:
            _replace(real, functools.partial(_write_bytes, data=old))


def check_export(export: RecipeExport, *, cwd: str) -> None:
    """Load the written recipe and check it has the notebook's microsteps.

    Raises:
        ExportError: it does not load, or its plan differs from the notebook's.
    """
    path = os.path.join(export.directory, export.recipe)
    try:
        recipe = resolve(
            load(path, cwd=cwd, cli_globals=export.plan.cli_globals),
            cwd=cwd,
            cli_globals=export.plan.cli_globals,
        )
    except KameleonError as err:
        raise ExportError(f"The exported recipe {path} does not load: {err}") from None
    want = [m.slug for m in export.plan.microsteps()]
    got = [m.slug for m in recipe.microsteps()]
    if got != want:
        first = next(
            (i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
            min(len(want), len(got)),
        )
        expected = want[first] if first < len(want) else "(nothing)"
        found = got[first] if first < len(got) else "(nothing)"
        raise ExportError(
            f"The exported recipe {path} does not give the notebook's plan: microstep "
            f"{first + 1} is {found}, the notebook has {expected} (a steps directory "
            f"around {export.directory} may shadow a step; export elsewhere)"
        )


# ------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export did (``str()`` is the text the CLI and the magic print)."""

    export: RecipeExport
    written: tuple[str, ...]
    copied: tuple[str, ...]
    unchanged: tuple[str, ...]

    def __str__(self) -> str:
        export = self.export
        lines = [
            f"Exported recipe '{export.name}' to {os.path.join(export.directory, export.recipe)}"
        ]
        for label, paths in (
            ("wrote", self.written),
            ("copied", self.copied),
            ("unchanged", self.unchanged),
        ):
            if paths:
                shown = ", ".join(paths[:_LISTED])
                more = f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
                lines.append(f"  {label}: {shown}{more}")
        if export.left_out:
            count = len(export.left_out)
            lines.append(
                f"Left out {count} cell{'s' if count > 1 else ''} that "
                f"{'are' if count > 1 else 'is'} not part of the recipe: "
                + ", ".join(export.left_out)
            )
        lines.extend(f"Note: {note}" for note in export.notes)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class NotebookReport:
    """What ``kameleon notebook`` wrote."""

    path: str
    recipe: str
    cells: int
    microsteps: int

    def __str__(self) -> str:
        return (
            f"Wrote {self.path}: {self.cells} cells, {self.microsteps} microstep cells "
            f"(recipe {self.recipe})"
        )


# ------------------------------------------------------------------- entry points


def _export(
    cells: Sequence[NotebookCell],
    directory: str,
    *,
    base_dir: str,
    cwd: str,
    name: str,
    origin: str,
    allow_redefinition: bool,
) -> ExportReport:
    export = plan_export(
        cells,
        directory,
        base_dir=base_dir,
        cwd=cwd,
        name=name,
        origin=origin,
        allow_redefinition=allow_redefinition,
    )
    backups: dict[str, bytes | None] = {}
    try:
        written, copied, unchanged = write_export(export, backups)
        check_export(export, cwd=cwd)
    except BaseException:
        undo_export(backups)  # never leave a recipe half rewritten
        raise
    return ExportReport(export, tuple(written), tuple(copied), tuple(unchanged))


def export_notebook(notebook: str, directory: str | None = None) -> ExportReport:
    """``kameleon export-recipe NOTEBOOK [-o DIR]``: write the notebook's recipe.

    The notebook's directory is where its recipe cell's path starts and the
    workspace it resolves in (as its kernel would); the recipe is written to
    ``directory`` (default: the notebook's directory).

    Raises:
        KameleonError: the notebook cannot be read or become a recipe (the cell is
            named), or the files cannot be written.
    """
    notebook = os.path.abspath(notebook)
    cells = read_notebook(notebook)
    base_dir = os.path.dirname(notebook)
    stem = os.path.splitext(os.path.basename(notebook))[0]
    return _export(
        cells,
        directory or base_dir,
        base_dir=base_dir,
        cwd=base_dir,
        name=stem,
        origin=os.path.basename(notebook),
        allow_redefinition=False,
    )


def export_session(
    sources: Sequence[str],
    directory: str,
    *,
    cwd: str | None = None,
    name: str = "notebook",
) -> ExportReport:
    """``%kameleon export DIR``: write the recipe of the cells a session ran.

    Args:
        sources: the session's cells: its recipe cell (if any), then one
            ``%%microstep`` cell per microstep it defined (a later one for the same
            microstep replaces an earlier one, as re-running a cell does).
        directory: where to write (relative to ``cwd``).
        cwd: the kernel's working directory (default: the process's).
        name: the recipe's name when the session loaded none.

    Raises:
        KameleonError: as :func:`export_notebook`.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    return _export(
        cells_of_sources(sources),
        os.path.join(cwd, directory),
        base_dir=cwd,
        cwd=cwd,
        name=name,
        origin="the session",
        allow_redefinition=True,
    )


def recipe_notebook(
    recipe: str,
    notebook: str | None = None,
    *,
    cli_globals: Mapping[str, str] | None = None,
    force: bool = False,
) -> NotebookReport:
    """``kameleon notebook RECIPE [-o NOTEBOOK]``: write a notebook for a recipe.

    The notebook (default: next to the recipe, ``<name>.ipynb``) resolves the recipe
    from its own directory, as its kernel will.

    Raises:
        UsageError: the notebook exists and ``force`` is not set (exit 15).
        KameleonError: the recipe does not load.
    """
    recipe_path = os.path.abspath(recipe)
    if not os.path.exists(recipe_path) and not recipe_path.endswith(".yaml"):
        recipe_path += ".yaml"
    if notebook is None:
        stem = os.path.basename(recipe_path)
        stem = stem[: -len(".yaml")] if stem.endswith(".yaml") else stem
        notebook = os.path.join(os.path.dirname(recipe_path), f"{stem}.ipynb")
    notebook = os.path.abspath(notebook)
    if os.path.exists(notebook) and not force:
        raise UsageError(f"{notebook} exists; pass --force to overwrite it")
    notebook_dir = os.path.dirname(notebook)
    cells = recipe_cells(
        recipe_path, notebook_dir=notebook_dir, cwd=notebook_dir, cli_globals=cli_globals
    )
    write_notebook(cells, notebook)
    microsteps = sum(1 for c in cells if c.source.startswith("%%microstep"))
    return NotebookReport(notebook, recipe_path, len(cells), microsteps)
