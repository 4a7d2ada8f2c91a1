"""Open a recipe for a build: load, restore the build dir's uuid, resolve.

This is the one entry point the front ends use to turn a recipe path into a
:class:`ResolvedRecipe`, so the CLI and the notebook resolve recipes identically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from kameleon_nb.core.loader import LoadedRecipe, load_recipe
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.resolve import ResolveOptions, check_loadable, resolve_recipe
from kameleon_nb.engine.builddir import stored_uuid
from kameleon_nb.errors import KameleonError

__all__ = [
    "BUILTIN_RECIPES_DIR",
    "BUILTIN_STEPS_DIR",
    "load",
    "loads_cleanly",
    "open_recipe",
    "resolve",
]

log = logging.getLogger(__name__)

#: kameleon_nb's own steps directory (mechanisms, backends, aliases), searched last.
BUILTIN_STEPS_DIR = str(Path(__file__).resolve().parent.parent / "data" / "steps")

#: kameleon_nb's own recipes (``extend: backends/chroot``), tried after the recipe's dir.
BUILTIN_RECIPES_DIR = str(Path(__file__).resolve().parent.parent / "data" / "recipes")


def load(
    path: str,
    *,
    cli_globals: Mapping[str, str] | None = None,
    cwd: str,
    text: str | None = None,
) -> LoadedRecipe:
    """Read a recipe and its ``extend`` chain (kameleon_nb's backends as a fallback)."""
    return load_recipe(
        path, cli_globals=cli_globals, cwd=cwd, fallback_dirs=(BUILTIN_RECIPES_DIR,), text=text
    )


def resolve(
    loaded: LoadedRecipe,
    *,
    cli_globals: Mapping[str, str] | None = None,
    build_path: str | None = None,
    checkpointing: bool = False,
    persistent_cache: bool = False,
    cwd: str,
    uuid: tuple[str, str] | None = None,
    build_dir_uuid: bool = True,
    require_checkpoint: bool = False,
    parent_proxy: str = "",
    cache_port: int | None = None,
    strict_globals: bool = True,
) -> ResolvedRecipe:
    """Resolve a loaded recipe for a build, with the uuid its build dir recorded.

    ``uuid`` pins ``(kameleon_uuid, kameleon_short_uuid)`` instead (a notebook
    session re-resolving its recipe keeps the uuid of its first resolution);
    ``build_dir_uuid=False`` ignores the build dir's (``kameleon info`` does).
    ``require_checkpoint`` makes a recipe without a mechanism a build error.
    ``parent_proxy`` and ``cache_port`` set the ``proxy_*`` globals (see
    :class:`~kameleon_nb.core.resolve.ResolveOptions`).
    """
    build_path = os.path.abspath(os.path.join(cwd, build_path or "build"))
    options = ResolveOptions(
        cli_globals=dict(cli_globals or {}),
        build_path=build_path,
        checkpointing=checkpointing,
        persistent_cache=persistent_cache,
        stored_uuid=uuid
        or (stored_uuid(os.path.join(build_path, loaded.name)) if build_dir_uuid else None),
        builtin_steps_dirs=(BUILTIN_STEPS_DIR,),
        require_checkpoint=require_checkpoint,
        parent_proxy=parent_proxy,
        cache_port=cache_port,
        strict_globals=strict_globals,
    )
    recipe = resolve_recipe(loaded, options, cwd=cwd)
    if (
        uuid is None
        and build_dir_uuid
        and recipe.kameleon_cwd != os.path.join(build_path, loaded.name)
    ):
        moved = stored_uuid(recipe.kameleon_cwd)  # the recipe moved its build dir
        if moved is not None and moved != options.stored_uuid:
            options = dataclasses.replace(options, stored_uuid=moved)
            recipe = resolve_recipe(loaded, options, cwd=cwd)
    return recipe


def open_recipe(
    path: str,
    *,
    cli_globals: Mapping[str, str] | None = None,
    build_path: str | None = None,
    checkpointing: bool = False,
    persistent_cache: bool = False,
    cwd: str | None = None,
    text: str | None = None,
    build_dir_uuid: bool = True,
    require_checkpoint: bool = False,
    parent_proxy: str = "",
    cache_port: int | None = None,
    strict_globals: bool = True,
) -> ResolvedRecipe:
    """Load and resolve a recipe as ``kameleon build`` does.

    Args:
        path: the recipe path as the user gave it.
        cli_globals: ``-g`` overrides.
        build_path: the build root (default ``<cwd>/build``).
        checkpointing: value of ``checkpointing_enabled``.
        persistent_cache: value of ``persistent_cache``.
        cwd: the workspace root (default: the process's cwd).
        text: the recipe's text when it is not read from ``path`` (notebook cells).
        build_dir_uuid: take the uuid the build dir recorded (not for ``info``).
        require_checkpoint: a recipe without a checkpoint mechanism is a build error.
        parent_proxy: ``[user:pass@]host:port`` of ``--proxy``, for every context.
        cache_port: the cache proxy's port (``-C``, ``--from-cache``).
        strict_globals: an undefined variable in the globals is an error (off for
            templates and ``export``, as upstream's ``resolve! :strict => false``).

    Returns:
        The resolved recipe.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    loaded = load(path, cli_globals=cli_globals, cwd=cwd, text=text)
    return resolve(
        loaded,
        cli_globals=cli_globals,
        build_path=build_path,
        checkpointing=checkpointing,
        persistent_cache=persistent_cache,
        cwd=cwd,
        build_dir_uuid=build_dir_uuid,
        require_checkpoint=require_checkpoint,
        parent_proxy=parent_proxy,
        cache_port=cache_port,
        strict_globals=strict_globals,
    )


def loads_cleanly(path: str, *, cwd: str) -> LoadedRecipe | None:
    """The recipe if upstream's non-strict load of it succeeds, else None (``list``).

    ``cwd`` is the root the recipe's steps directories are searched from (the
    workspace, or the repositories directory for templates).
    """
    try:
        loaded = load(path, cwd=cwd)
        options = ResolveOptions(
            build_path=os.path.join(cwd, "build"), builtin_steps_dirs=(BUILTIN_STEPS_DIR,)
        )
        check_loadable(loaded, options, cwd=cwd)
    except (KameleonError, OSError, ValueError, RecursionError) as err:  # upstream skips it
        log.debug("not listed: %s: %s", path, err)
        return None
    return loaded
