"""The workspace verbs of Kameleon 2.11.0: repository, template, new, list, dag, export.

:func:`add_parsers` declares them on the ``kameleon`` parser and :func:`run` carries
one out; the work itself is in ``engine`` (repositories, templates, workspace, export,
graphviz) and ``core`` (listing, dag). Output and errors are upstream's, on stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kameleon_nb.errors import UsageError

__all__ = ["VERBS", "add_parsers", "run"]

VERBS = ("repository", "template", "new", "list", "ls", "dag", "export", "help")

_Adder = Callable[[argparse.ArgumentParser], None]


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _line(text: str) -> None:
    _say(text + "\n")


def _arity(command: str, usage: str, given: Sequence[str], expected: int) -> None:
    """Thor's usage error when a verb gets the wrong number of arguments (exit 15)."""
    if len(given) == expected:
        return
    called = (
        "no arguments" if not given else "arguments [" + ", ".join(f'"{a}"' for a in given) + "]"
    )
    raise UsageError(
        f'ERROR: "kameleon {command}" was called with {called}\nUsage: "kameleon {usage}"'
    )


def _terminal_width() -> int:
    """Thor's terminal width: ``THOR_COLUMNS``, the terminal, ``COLUMNS``, else 80."""
    width = 0
    if os.environ.get("THOR_COLUMNS"):
        width = _int(os.environ["THOR_COLUMNS"])
    elif sys.stdin.isatty():
        width = os.get_terminal_size(sys.stdin.fileno()).columns
    else:
        width = _int(os.environ.get("COLUMNS", "")) or 80
    return 80 if width < 10 else width


def _bar_width() -> int:
    """ruby-progressbar's width: its override, the terminal, ``COLUMNS``, else 80."""
    width = _int(os.environ.get("RUBY_PROGRESS_BAR_LENGTH", ""))
    if not width:
        width = shutil.get_terminal_size((80, 24)).columns
    return 80 if width < 20 else width


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


# ------------------------------------------------------------------ parsers


def add_parsers(
    commands: argparse._SubParsersAction[Any],
    add_common: _Adder,
    add_globals: _Adder,
) -> None:
    """Declare the verbs (``commands`` is the ``kameleon`` parser's subparsers)."""
    repository = commands.add_parser("repository", help="manage repositories of recipes")
    add_common(repository)
    repo_verbs = repository.add_subparsers(dest="verb", parser_class=type(repository))
    add = repo_verbs.add_parser("add", help="clone a git repository of recipes as NAME")
    add.add_argument("names", nargs="*", metavar="NAME GIT_URL")
    add.add_argument("-b", "--branch", help="check out BRANCH")
    listing = repo_verbs.add_parser("list", aliases=["ls"], help="list the repositories")
    listing.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    listing.add_argument(
        "--git",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show where each repository comes from (default)",
    )
    for verb, aliases, text in (
        ("update", [], "git pull --ff-only in repository NAME"),
        ("remove", ["rm"], "delete repository NAME"),
    ):
        sub = repo_verbs.add_parser(verb, aliases=aliases, help=text)
        sub.add_argument("names", nargs="*", metavar="NAME")
    for sub in {id(p): p for p in repo_verbs.choices.values()}.values():  # aliases: once
        add_common(sub)

    template = commands.add_parser("template", help="list, describe and import templates")
    add_common(template)
    tpl_verbs = template.add_subparsers(dest="verb", parser_class=type(template))
    tpl_list = tpl_verbs.add_parser("list", aliases=["ls"], help="list the templates")
    tpl_list.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    tpl_list.add_argument(
        "-p",
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar while loading the templates (default)",
    )
    tpl_list.add_argument("-f", "--filter", help="only templates matching this regexp")
    for verb, text in (
        ("import", "copy template NAME and its files into the current directory"),
        ("info", "describe template NAME"),
    ):
        sub = tpl_verbs.add_parser(verb, help=text)
        sub.add_argument("names", nargs="*", metavar="TEMPLATE_NAME")
        add_globals(sub)
    erb = tpl_verbs.add_parser("erb", help="write the default extend ERB at PATH")
    erb.add_argument("names", nargs="*", metavar="PATH")
    for sub in {id(p): p for p in tpl_verbs.choices.values()}.values():
        add_common(sub)

    new = commands.add_parser("new", help="create a recipe that extends a template")
    new.add_argument("names", nargs="*", metavar="RECIPE_PATH TEMPLATE_NAME")
    add_common(new)
    add_globals(new)

    ls = commands.add_parser("list", aliases=["ls"], help="list the recipes of this directory")
    ls.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    ls.add_argument(
        "-p",
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show a progress bar while loading the recipes",
    )
    ls.add_argument("-f", "--filter", help="only recipes matching this regexp")
    add_common(ls)

    dag = commands.add_parser("dag", help="draw the steps of recipes as a GraphViz graph")
    dag.add_argument("names", nargs="*", metavar="RECIPE_PATH")
    dag.add_argument("--file", default="/tmp/kameleon.dag", help="output file")
    dag.add_argument("--format", help="GraphViz format (default: the file's extension, or canon)")
    dag.add_argument(
        "--relative",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="accepted, as upstream; the graph's paths are always relative",
    )
    dag.add_argument(
        "--recipes-only",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show the recipes' inheritance only",
    )
    add_common(dag)
    add_globals(dag)

    export = commands.add_parser("export", help="copy a recipe and every file it uses to DIR")
    export.add_argument("names", nargs="*", metavar="RECIPE_PATH EXPORT_PATH")
    export.add_argument(
        "-A",
        "--add",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="export into an existing directory (may overwrite files)",
    )
    add_common(export)
    add_globals(export)

    helper = commands.add_parser("help", help="describe a command")
    helper.add_argument("names", nargs="*", metavar="COMMAND")


# ------------------------------------------------------------------ verbs


def run(
    args: argparse.Namespace,
    cli_globals: Mapping[str, str],
    stray: list[str],
    parser: argparse.ArgumentParser,
) -> int:
    """Carry out one verb; returns the exit status."""
    names = list(getattr(args, "names", [])) + stray
    command = "ls" if args.command == "ls" else args.command
    if command == "help":
        return _help(parser, names)
    if command in ("repository", "template"):
        if args.verb is None:
            _subparser(parser, command).print_help(sys.stdout)
            return 0
        verb = {"ls": "list", "rm": "remove"}.get(args.verb, args.verb)
        handler = _REPOSITORY if command == "repository" else _TEMPLATE
        return handler[verb](args, names, cli_globals)
    if command in ("list", "ls"):
        _arity("list", "list", names, 0)
        return _list(args)
    return _MAIN[command](args, names, cli_globals)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps its subparsers there
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            chosen: argparse.ArgumentParser = action.choices[name]
            return chosen
    raise UsageError(f'ERROR: Could not find command "{name}".')


def _help(parser: argparse.ArgumentParser, names: list[str]) -> int:
    target = parser
    for name in names:
        target = _subparser(target, name)
    target.print_help(sys.stdout)
    return 0


def _repositories() -> Path:
    from kameleon_nb.engine.userconf import user_config  # noqa: PLC0415

    return user_config().repositories_path


def _repository_add(args: argparse.Namespace, names: list[str], _: object) -> int:
    from kameleon_nb.engine import repositories  # noqa: PLC0415

    _arity("repository add", "repository add <NAME> <GIT_URL>", names, 2)
    repositories.add(_repositories(), names[0], names[1], branch=args.branch)
    return 0


def _repository_list(args: argparse.Namespace, names: list[str], _: object) -> int:
    from kameleon_nb.engine import repositories  # noqa: PLC0415

    _arity("repository list", "repository list", names, 0)
    for path in repositories.names(_repositories()):
        _line(repositories.describe(path) if args.git else path.name)
    return 0


def _repository_update(args: argparse.Namespace, names: list[str], _: object) -> int:
    from kameleon_nb.engine import repositories  # noqa: PLC0415

    _arity("repository update", "repository update <NAME>", names, 1)
    repositories.update(_repositories(), names[0])
    return 0


def _repository_remove(args: argparse.Namespace, names: list[str], _: object) -> int:
    from kameleon_nb.engine import repositories  # noqa: PLC0415

    _arity("repository remove", "repository remove <NAME>", names, 1)
    _line("Removing: " + repositories.remove(_repositories(), names[0]))
    return 0


def _listing(root: Path, pattern: str | None, progress: bool, *, templates: bool) -> None:
    from kameleon_nb.core.listing import ProgressBar, listing_text  # noqa: PLC0415
    from kameleon_nb.engine.workspace import (  # noqa: PLC0415
        compile_filter,
        find_recipes,
        load_listed,
    )

    compiled = None if pattern is None else compile_filter(pattern, "-f/--filter")
    files = find_recipes(root, compiled)
    if not files:
        _line("  <None>")
        return
    bar = None
    if progress:
        title = "Resolving templates" if templates else "Resolving recipes"
        bar = ProgressBar(title, len(files), _bar_width())
        _say(bar.start())
    listed = []
    for entry in load_listed(root, files):
        if entry is not None:
            listed.append(entry)
            if bar is not None:
                _say(bar.advance())
    _say(listing_text(listed, _terminal_width(), by_repository=templates))


def _list(args: argparse.Namespace) -> int:
    _line("Workspace recipes:")
    _listing(Path.cwd(), args.filter, args.progress, templates=False)
    return 0


def _template_list(args: argparse.Namespace, names: list[str], _: object) -> int:
    _arity("template list", "template list", names, 0)
    repositories = _repositories()
    _line(f"Recipe templates available in: {repositories}")
    _listing(repositories, args.filter, args.progress, templates=True)
    return 0


def _template_import(
    args: argparse.Namespace, names: list[str], cli_globals: Mapping[str, str]
) -> int:
    from kameleon_nb.engine.templates import import_template  # noqa: PLC0415

    _arity("template import", "template import <TEMPLATE_NAME>", names, 1)
    _say_overrides(cli_globals)
    import_template(
        _repositories(), Path.cwd(), names[0], cli_globals, verbose=args.verbose, report=_line
    )
    return 0


def _template_info(
    args: argparse.Namespace, names: list[str], cli_globals: Mapping[str, str]
) -> int:
    from kameleon_nb.engine.templates import load_template  # noqa: PLC0415
    from kameleon_nb.frontends.render import info_lines  # noqa: PLC0415

    _arity("template info", "template info <TEMPLATE_NAME>", names, 1)
    _say_overrides(cli_globals)
    recipe = load_template(_repositories(), Path.cwd(), names[0], cli_globals)
    for line in [*recipe.warnings, *info_lines(recipe)]:
        _line(line)
    return 0


def _template_erb(args: argparse.Namespace, names: list[str], _: object) -> int:
    from kameleon_nb.engine.filecopy import copy_file  # noqa: PLC0415
    from kameleon_nb.engine.templates import (  # noqa: PLC0415
        DEFAULT_EXTEND_ERB,
        template_erb_path,
    )
    from kameleon_nb.engine.userconf import user_config  # noqa: PLC0415

    _arity("template erb", "template erb <PATH>", names, 1)
    target = template_erb_path(names[0], user_config().extend_yaml_erb)
    copy_file(DEFAULT_EXTEND_ERB, target, workspace=Path.cwd(), keep_mode=False, report=_line)
    return 0


def _say_overrides(cli_globals: Mapping[str, str]) -> None:
    for key, value in cli_globals.items():
        _line(f"CLI Global variable override: {key} => {value}")


def _new(args: argparse.Namespace, names: list[str], cli_globals: Mapping[str, str]) -> int:
    from kameleon_nb.engine.templates import new_recipe  # noqa: PLC0415
    from kameleon_nb.engine.userconf import user_config  # noqa: PLC0415

    _arity("new", "new <RECIPE_PATH> <TEMPLATE_NAME>", names, 2)
    config = user_config()
    _say_overrides(cli_globals)
    new_recipe(
        config.repositories_path,
        Path.cwd(),
        names[0],
        names[1],
        cli_globals,
        erb_name=config.extend_yaml_erb,
        verbose=args.verbose,
        report=_line,
    )
    return 0


def _dag(args: argparse.Namespace, names: list[str], cli_globals: Mapping[str, str]) -> int:
    from kameleon_nb.core.dag import choose_format, dag_recipe, dag_text  # noqa: PLC0415
    from kameleon_nb.engine.graphviz import write_graph  # noqa: PLC0415
    from kameleon_nb.engine.recipes import open_recipe  # noqa: PLC0415

    if not names:
        raise UsageError(
            'ERROR: "kameleon dag" was called with no arguments\n'
            'Usage: "kameleon dag <RECIPE_PATH> [<RECIPE_PATH> [<...>]]"'
        )
    cwd = os.getcwd()
    recipes = []
    for path in names:
        _say_overrides(cli_globals)
        recipe = open_recipe(path, cli_globals=cli_globals, build_dir_uuid=False)
        for warning in recipe.warnings:
            _line(warning)
        recipes.append(dag_recipe(recipe, cwd))
        _line(f"-> Draw DAG for {recipes[-1].path}")
    output_format, fallback = choose_format(args.format, args.file)
    if fallback:
        _line(fallback)
    write_graph(dag_text(recipes, recipes_only=args.recipes_only), output_format, Path(args.file))
    _line(f"Generated GraphViz {output_format} file: {args.file}")
    return 0


def _export(args: argparse.Namespace, names: list[str], cli_globals: Mapping[str, str]) -> int:
    from kameleon_nb.engine.export import export_recipe, exported_files  # noqa: PLC0415

    _arity("export", "export <RECIPE_PATH> <EXPORT_PATH>", names, 2)
    workspace = Path.cwd()
    _say_overrides(cli_globals)
    recipe_path, files = exported_files(names[0], workspace, cli_globals)
    _line(f"Export recipe {recipe_path} to directory: {names[1]}")
    export_recipe(files, names[1], workspace, add=args.add, report=_line)
    return 0


_Handler = Callable[[argparse.Namespace, list[str], Mapping[str, str]], int]

_REPOSITORY: dict[str, _Handler] = {
    "add": _repository_add,
    "list": _repository_list,
    "update": _repository_update,
    "remove": _repository_remove,
}
_TEMPLATE: dict[str, _Handler] = {
    "list": _template_list,
    "import": _template_import,
    "info": _template_info,
    "erb": _template_erb,
}
_MAIN: dict[str, _Handler] = {"new": _new, "dag": _dag, "export": _export}
