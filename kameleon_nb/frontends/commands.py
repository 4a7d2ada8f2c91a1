"""The CLI verbs: parse options into engine calls and print what comes back."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from kameleon_nb.core.plan import checkpoint_rows
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.frontends.arguments import build_options, cache_options
from kameleon_nb.frontends.render import checkpoint_table, dryrun_lines, info_lines

__all__ = ["build", "diff", "export_recipe", "info", "lint", "notebook", "schema"]


def _say(lines: list[str]) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def _say_overrides(cli_globals: Mapping[str, str]) -> None:
    _say([f"CLI Global variable override: {key} => {value}" for key, value in cli_globals.items()])


def info(
    recipes: list[str],
    cli_globals: Mapping[str, str],
    *,
    relative: bool,
    from_cache: str | None = None,
) -> int:
    """``kameleon info``: one block per recipe (``--from-cache``: the archive's recipe)."""
    if from_cache is not None and not recipes:
        import tempfile  # noqa: PLC0415

        from kameleon_nb.engine.cache.archive import unpack_archive  # noqa: PLC0415
        from kameleon_nb.errors import CacheError  # noqa: PLC0415

        if not os.path.isfile(from_cache):  # upstream's check and message, before anything
            raise CacheError(f'The specified cache file "{from_cache}" do not exists')
        _say(["Using the cached recipe"])
        with tempfile.TemporaryDirectory(prefix="kameleon-info-") as scratch:
            unpacked = unpack_archive(Path(from_cache), Path(scratch))
            return info([str(unpacked.recipe)], cli_globals, relative=relative)
    for path in recipes:
        _say_overrides(cli_globals)
        recipe = open_recipe(path, cli_globals=cli_globals, build_dir_uuid=False)
        _say(list(recipe.warnings))
        _say(info_lines(recipe, relative=relative))
    return 0


def build(path: str | None, cli_globals: Mapping[str, str], args: argparse.Namespace) -> int:
    """``kameleon build``: dry run, clean, list or a real build (in that precedence).

    ``path`` may be None with ``--from-cache`` (the archive's recipe is built).
    """
    options = build_options(args)
    cache = cache_options(args)
    listing = args.list_checkpoints and not args.dryrun and not args.clean
    _say(list(cache.notes))
    source = None
    if cache.mode is not None:
        from kameleon_nb.engine.cache.build_cache import open_cache_source  # noqa: PLC0415

        build_path = os.path.abspath(args.build_path or "build")
        source = open_cache_source(cache, build_path)
        if path is None:
            _say(["Using the cached recipe"])
            path = source.recipe
        cli_globals = {**source.cli_globals, **cli_globals}
    assert path is not None
    if getattr(args, "strict", False):
        _refuse_on_findings(path, cli_globals)
    if not listing:  # upstream lists at its error level: no override lines
        _say_overrides(cli_globals)
    recipe = open_recipe(
        path,
        cli_globals=cli_globals,
        build_path=args.build_path,
        checkpointing=options.checkpointing,
        persistent_cache=args.enable_cache,
        require_checkpoint=options.checkpointing,
        parent_proxy=cache.context_proxy,
        cache_port=source.port if source is not None else None,
    )
    if not listing:
        _say(list(recipe.warnings))
    if args.dryrun:
        if args.list_checkpoints:
            rows = checkpoint_rows(recipe)
            if not rows:
                _say([f"No checkpoints would be created by recipe '{recipe.name}':"])
            else:
                _say(
                    [
                        f"The following checkpoints would be created by recipe '{recipe.name}':",
                        *checkpoint_table(rows),
                    ]
                )
            return 0
        _say(dryrun_lines(recipe, relative=args.relative, cwd=os.getcwd()))
        return 0
    from kameleon_nb.frontends.console import run_build  # noqa: PLC0415

    build_cache = None
    if source is not None and not args.list_checkpoints and not args.clean:
        from kameleon_nb.engine.cache.build_cache import BuildCache  # noqa: PLC0415

        build_cache = BuildCache(source, recipe)
    return run_build(recipe, options, args, cache=build_cache)


def notebook(
    recipe: str, cli_globals: Mapping[str, str], *, output: str | None, force: bool
) -> int:
    """``kameleon notebook``: write a notebook whose cells are the recipe's microsteps."""
    from kameleon_nb.frontends.notebook.files import recipe_notebook  # noqa: PLC0415

    _say([str(recipe_notebook(recipe, output, cli_globals=cli_globals, force=force))])
    return 0


def export_recipe(notebook: str, *, output: str | None) -> int:
    """``kameleon export-recipe``: write the recipe (and its step files) of a notebook."""
    from kameleon_nb.frontends.notebook.files import export_notebook  # noqa: PLC0415

    _say([str(export_notebook(notebook, output))])
    return 0


def diff(
    recipe: str, wanted: list[str], cli_globals: Mapping[str, str], args: argparse.Namespace
) -> int:
    """``kameleon diff``: what one step changed, or from one checkpoint to another.

    With no checkpoint: one row per step, what it changed (``--json``: every diff).
    """
    import json  # noqa: PLC0415

    from kameleon_nb.engine.session import Session  # noqa: PLC0415
    from kameleon_nb.frontends.diff_view import diff_lines, every_step  # noqa: PLC0415

    with Session.open(
        recipe, cli_globals=dict(cli_globals), build_path=args.build_path, checkpointing=True
    ) as session:
        if not wanted:
            steps = every_step(session)
            data: object = [step.diff.to_json() for step in steps.steps]
            lines = repr(steps).splitlines()
        else:
            found = session.diff(*wanted)
            data, lines = found.to_json(), diff_lines(found)
    _say([json.dumps(data)] if args.json else lines)
    return 0


def lint(recipes: list[str], cli_globals: Mapping[str, str]) -> int:
    """``kameleon lint``: one line per finding, a summary; 1 when anything was found."""
    from kameleon_nb.core.limits import shown_path  # noqa: PLC0415
    from kameleon_nb.core.lint import summary  # noqa: PLC0415 - jsonschema loads slowly
    from kameleon_nb.engine.lint import lint_recipes  # noqa: PLC0415

    report = lint_recipes(recipes, cli_globals=cli_globals)
    lines = [shown_path(str(finding)) for finding in report.findings]
    _say([*lines, summary(report.findings, report.recipes)])
    return 1 if report.findings else 0


def schema(kind: str) -> int:
    """``kameleon schema``: print the JSON Schema of one file format (for editors)."""
    from kameleon_nb.core.lint import FileKind  # noqa: PLC0415
    from kameleon_nb.engine.lint import schema_text  # noqa: PLC0415

    sys.stdout.write(schema_text(FileKind(kind)))
    sys.stdout.flush()
    return 0


def _refuse_on_findings(path: str, cli_globals: Mapping[str, str]) -> None:
    """``build --strict``: lint first; any finding stops the build before it starts."""
    from kameleon_nb.core.limits import shown_path  # noqa: PLC0415
    from kameleon_nb.core.lint import summary  # noqa: PLC0415
    from kameleon_nb.engine.lint import lint_recipes  # noqa: PLC0415
    from kameleon_nb.errors import RecipeError  # noqa: PLC0415

    report = lint_recipes([path], cli_globals=cli_globals)
    if not report.findings:
        return
    _say([shown_path(str(finding)) for finding in report.findings])
    raise RecipeError(
        f"kameleon build --strict: {summary(report.findings, 1).split(': ', 1)[1]} for "
        f"{path}; fix them (see 'kameleon lint {path}'), or build without --strict"
    )
