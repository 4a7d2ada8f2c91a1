"""The ``kameleon`` command: Kameleon 2.11.0's options, plus the checkpoint doc's spellings.

Everything goes to stdout, as upstream does (errors too: ``Error: <message>``), and
each error class exits with upstream's status (semantics §1.4).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from kameleon_nb._version import UPSTREAM, VERSION
from kameleon_nb.core.limits import is_utf8, shown_path
from kameleon_nb.errors import BuildError, KameleonError, UsageError
from kameleon_nb.frontends import verbs
from kameleon_nb.frontends.arguments import add_cache_options, add_checkpoint_options

__all__ = ["main"]

FATAL_EXIT = 154  # upstream exits 666, which the OS truncates to 154


class _Parser(argparse.ArgumentParser):
    """argparse with upstream's usage-error status (15) instead of 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f'ERROR: {message}\nUsage: "{self.prog} --help" for the options')


def _global_pairs(values: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    pairs: dict[str, str] = {}
    rest: list[str] = []
    for value in values:
        if not is_utf8(value):
            raise UsageError(
                f"ERROR: -g '{shown_path(value)}' is not valid UTF-8 (the bytes shown as "
                "\\xNN); recipes are UTF-8 text: give the value in UTF-8"
            )
        if ":" in value:
            key, _, val = value.partition(":")
            if not key:
                raise UsageError(
                    f"ERROR: -g {value!r}: a global variable needs a name (-g name:value)"
                )
            pairs[key] = val
        else:
            rest.append(value)
    return pairs, rest


def _seconds(text: str) -> float:
    """A positive number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="colour output (off when stdout is not a terminal)",
    )
    parser.add_argument("--verbose", action="store_true", help="show extra [info] lines")
    parser.add_argument(
        "--debug", action="store_true", help="show [debug] lines and Python tracebacks"
    )
    parser.add_argument(
        "-s",
        "--script",
        action="store_true",
        help="never prompt: a failing command aborts the build",
    )


def _add_globals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-g",
        "--global",
        dest="global_",
        nargs="+",
        default=[],
        metavar="KEY:VALUE",
        help="override global variables",
    )


def _build_parser() -> _Parser:
    parser = _Parser(prog="kameleon", description="Build appliances from Kameleon recipes.")
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    _add_common(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    commands.add_parser("version", help="print the version")

    build = commands.add_parser("build", help="build a recipe (or dry-run, list, clean)")
    build.add_argument("recipe", nargs="?", help="the recipe file (.yaml may be omitted)")
    _add_common(build)
    _add_globals(build)
    build.add_argument("-b", "--build-path", help="build root (default: ./build)")
    build.add_argument(
        "--clean", action="store_true", help="remove checkpoints and run the clean microsteps"
    )
    build.add_argument("-d", "--dryrun", action="store_true", help="print the plan, run nothing")
    build.add_argument("--relative", action="store_true", help="dry run: relative paths")
    add_checkpoint_options(build)
    build.add_argument(
        "-l",
        "--list-checkpoints",
        "--checkpoints",
        dest="list_checkpoints",
        action="store_true",
        help="list the valid checkpoints",
    )
    add_cache_options(build)
    build.add_argument(
        "--log-json",
        metavar="FILE",
        help="also write every build event as one JSON object per line",
    )
    build.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="interrupt any single command that runs longer than this",
    )
    build.add_argument(
        "--strict",
        action="store_true",
        help="run 'kameleon lint' first and refuse to start on any finding (exit 6)",
    )

    info = commands.add_parser("info", help="describe a recipe")
    info.add_argument("recipes", nargs="*", help="recipe files")
    _add_common(info)
    _add_globals(info)
    info.add_argument("--relative", action="store_true", help="relative paths")
    info.add_argument(
        "--from-cache", metavar="ARCHIVE", help="describe the recipe a cache archive holds"
    )

    notebook = commands.add_parser("notebook", help="write a Jupyter notebook for a recipe")
    notebook.add_argument("recipe", nargs="?", help="the recipe file (.yaml may be omitted)")
    notebook.add_argument(
        "-o", "--output", metavar="NOTEBOOK.ipynb", help="default: <recipe name>.ipynb next to it"
    )
    notebook.add_argument("-f", "--force", action="store_true", help="overwrite the notebook")
    _add_common(notebook)
    _add_globals(notebook)

    diff = commands.add_parser("diff", help="what changed between two checkpoints")
    diff.add_argument("recipe", nargs="?", help="the recipe file (.yaml may be omitted)")
    diff.add_argument(
        "checkpoints",
        nargs="*",
        metavar="ID|STEP|last",
        help="A: what that step changed; A B: from A to B; none: what each step changed",
    )
    diff.add_argument("-b", "--build-path", help="build root (default: ./build)")
    diff.add_argument("--json", action="store_true", help="one JSON object (machine use)")
    _add_common(diff)
    _add_globals(diff)

    lint = commands.add_parser(
        "lint", help="report unknown keys, commands, values, unused globals... (exit 1 on findings)"
    )
    lint.add_argument("recipes", nargs="*", help="recipe files")
    _add_common(lint)
    _add_globals(lint)

    schema = commands.add_parser("schema", help="print the JSON Schema of a recipe file format")
    schema.add_argument(
        "kind",
        nargs="?",
        default="recipe",
        choices=("recipe", "steps", "aliases", "checkpoint"),
        help="which format (default: recipe)",
    )

    export = commands.add_parser("export-recipe", help="write the recipe of a notebook")
    export.add_argument("notebook", nargs="?", help="the .ipynb file")
    export.add_argument("-o", "--output", metavar="DIR", help="default: the notebook's directory")
    _add_common(export)
    verbs.add_parsers(commands, _add_common, _add_globals)
    return parser


def _recipe_argument(args: argparse.Namespace, stray: list[str]) -> str | None:
    recipe = args.recipe or (stray[0] if stray else None)
    if stray and args.recipe:
        raise UsageError(f"ERROR: unexpected arguments {stray!r}")
    if recipe is None and not getattr(args, "from_cache", None):
        raise BuildError(
            "A recipe file or a persistent cache archive is required to run this command."
        )
    return None if recipe is None else str(recipe)


def _run(argv: Sequence[str]) -> int:
    from kameleon_nb.frontends import commands  # noqa: PLC0415 - keeps --help fast

    args = _build_parser().parse_args(list(argv))
    if args.version or args.command == "version":
        print(f"Kameleon version {UPSTREAM} (kameleon_nb {VERSION})")
        return 0
    if args.command is None:
        _build_parser().print_help(sys.stdout)
        return 0
    cli_globals, stray = _global_pairs(getattr(args, "global_", []))
    if args.command in verbs.VERBS:
        return verbs.run(args, cli_globals, stray, _build_parser())
    if args.command == "info":
        recipes = list(args.recipes) + stray
        if not recipes and not args.from_cache:
            raise UsageError(
                'ERROR: "kameleon info" was called with no arguments\n'
                'Usage: "kameleon info [RECIPE_PATH]..."'
            )
        return commands.info(
            recipes, cli_globals, relative=args.relative, from_cache=args.from_cache
        )
    if args.command == "notebook":
        recipe = args.recipe or (stray[0] if stray else None)
        if recipe is None or (args.recipe and stray):
            raise UsageError(
                'ERROR: "kameleon notebook" takes one recipe\n'
                'Usage: "kameleon notebook RECIPE_PATH [-o NOTEBOOK.ipynb] [-g key:value ...]"'
            )
        return commands.notebook(recipe, cli_globals, output=args.output, force=args.force)
    if args.command == "lint":
        recipes = list(args.recipes) + stray
        if not recipes:
            raise UsageError(
                'ERROR: "kameleon lint" was called with no arguments\n'
                'Usage: "kameleon lint RECIPE_PATH... [-g key:value ...]"'
            )
        return commands.lint(recipes, cli_globals)
    if args.command == "schema":
        return commands.schema(args.kind)
    if args.command == "export-recipe":
        if not args.notebook:
            raise UsageError(
                'ERROR: "kameleon export-recipe" was called with no arguments\n'
                'Usage: "kameleon export-recipe NOTEBOOK.ipynb [-o DIR]"'
            )
        return commands.export_recipe(args.notebook, output=args.output)
    if args.command == "diff":
        wanted = list(args.checkpoints) + stray
        if args.recipe is None or len(wanted) > 2:
            raise UsageError(
                'ERROR: "kameleon diff" takes a recipe and at most two checkpoints\n'
                'Usage: "kameleon diff RECIPE_PATH [ID|STEP|last [ID|STEP|last]] [--json]"'
            )
        return commands.diff(args.recipe, wanted, cli_globals, args)
    recipe = _recipe_argument(args, stray)
    return commands.build(recipe, cli_globals, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kameleon`` command and return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or "KAMELEON_DEBUG" in os.environ
    try:
        return _run(argv)
    except KameleonError as err:
        if debug:
            traceback.print_exc(file=sys.stdout)
        for warning in err.warnings:  # upstream printed them before it failed
            print(shown_path(warning))
        # as Thor's say: no newline after one that ends a message; a file name that is
        # not UTF-8 shows its bytes escaped
        message = shown_path(str(err))
        print(f"Error: {message}", end="" if message.endswith("\n") else "\n", flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        print("Quitting...", flush=True)
        return 1
    except BrokenPipeError:
        return 1
    except Exception as err:
        if debug:
            raise
        print(f"Unfortunately, a fatal error has occurred : {shown_path(str(err))}.", flush=True)
        print("Use --debug option for more details", flush=True)
        return FATAL_EXIT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
