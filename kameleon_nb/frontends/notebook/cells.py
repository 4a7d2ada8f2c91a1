"""The notebook cell language: what a ``%%microstep`` or recipe cell says, as data.

The magics run these cells and the notebook converter exports them; both read them
through this module, so a cell means the same thing in a kernel and in a file.

Cell forms::

    %kameleon load RECIPE [-g key:value ...] [-c] [--build-path P]

    %%kameleon recipe PATH [-g key:value ...] [-c] [--build-path P]
    <the text of the recipe file that lives (or would live) at PATH>

    %%microstep NAME [--context local|out|in] [--section S] [--macrostep M]
                     [--on-checkpoint VALUE]
    <shell for that context, or Kameleon commands when it starts with "- ">

A shell body becomes one ``exec_<context>`` command. Its value is the body without
trailing blank lines: a single line as is (``- exec_in: echo hi``), several lines
with one final newline (a ``|`` block), as a recipe would hold them.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, field

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.loader import parse_yaml
from kameleon_nb.core.model import SECTIONS, CheckpointPolicy
from kameleon_nb.core.placement import DEFAULT_MACROSTEP, DEFAULT_SECTION
from kameleon_nb.errors import RecipeError, UsageError
from kameleon_nb.frontends.arguments import add_globals_option, new_parser, parse_global

__all__ = [
    "MicrostepLine",
    "RecipeLine",
    "body_commands",
    "format_microstep_line",
    "is_yaml_body",
    "magic_of",
    "microstep_parser",
    "parse_microstep_line",
    "parse_recipe_line",
    "recipe_parser",
    "shell_body",
    "shell_value",
    "split_cell",
]

# letters, digits, "_", then also ".", "+", "-": a name is also a file name (steps/S/M.yaml)
_NAME = re.compile(r"\w[\w.+-]*")
_POLICIES = tuple(p.value for p in CheckpointPolicy)


def microstep_parser() -> argparse.ArgumentParser:
    """The parser of a ``%%microstep`` line (also gives the magic's ``--help``)."""
    parser = new_parser(
        "%%microstep", "Run the cell as one microstep of the session's recipe and keep it there."
    )
    parser.add_argument("name", help="the microstep's name (re-running the cell replaces it)")
    parser.add_argument(
        "--context",
        choices=[c.value for c in ContextName],
        help="the context a shell body runs in (default: in)",
    )
    parser.add_argument("--section", choices=SECTIONS, help=f"default: {DEFAULT_SECTION}")
    parser.add_argument(
        "--macrostep",
        help=f"default: the macrostep that already has NAME, else '{DEFAULT_MACROSTEP}'",
    )
    parser.add_argument(
        "--on-checkpoint", dest="on_checkpoint", choices=_POLICIES, help="default: use_cache"
    )
    return parser


def recipe_parser(kind: str) -> argparse.ArgumentParser:
    """The parser of ``%kameleon load`` (``kind='load'``) or ``%%kameleon recipe``."""
    parser = new_parser(f"%kameleon {kind}")
    what = "the recipe file" if kind == "load" else "where the recipe file lives (or would)"
    parser.add_argument("path", help=what)
    add_globals_option(parser)
    parser.add_argument(
        "-c",
        "--enable-checkpoint",
        "--enable-checkpointing",
        dest="checkpointing",
        action="store_true",
        help="create a checkpoint after each microstep",
    )
    parser.add_argument("--build-path", dest="build_path", help="build root (default: ./build)")
    return parser


def _split(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageError(f"{prog}: {err} in '{line}'") from None


@dataclass(frozen=True, slots=True)
class MicrostepLine:
    """What a ``%%microstep`` line says; ``None`` means "not given"."""

    name: str
    context: ContextName | None = None
    section: str | None = None
    macrostep: str | None = None
    on_checkpoint: str | None = None


def parse_microstep_line(line: str) -> MicrostepLine:
    """Parse the arguments of a ``%%microstep`` line (the text after the magic's name).

    Raises:
        UsageError: an unknown option, a bad choice, a missing or invalid name.
    """
    args = microstep_parser().parse_args(_split(line, "%%microstep"))
    if not _NAME.fullmatch(args.name):
        raise UsageError(
            f"%%microstep: '{args.name}' is not a microstep name (letters, digits, '_', then "
            "also '.', '+', '-')"
        )
    if args.macrostep is not None and not _NAME.fullmatch(args.macrostep):
        raise UsageError(
            f"%%microstep: '{args.macrostep}' is not a macrostep name (letters, digits, '_', "
            "then also '.', '+', '-')"
        )
    return MicrostepLine(
        name=args.name,
        context=ContextName(args.context) if args.context else None,
        section=args.section,
        macrostep=args.macrostep,
        on_checkpoint=args.on_checkpoint,
    )


def format_microstep_line(line: MicrostepLine) -> str:
    """The canonical ``%%microstep`` line (options in a fixed order)."""
    parts = ["%%microstep", line.name]
    if line.context is not None:
        parts += ["--context", line.context.value]
    if line.section is not None:
        parts += ["--section", line.section]
    if line.macrostep is not None:
        parts += ["--macrostep", line.macrostep]
    if line.on_checkpoint is not None:
        parts += ["--on-checkpoint", line.on_checkpoint]
    return " ".join(shlex.quote(p) if p != "%%microstep" else p for p in parts)


@dataclass(frozen=True, slots=True)
class RecipeLine:
    """What ``%kameleon load`` or ``%%kameleon recipe`` says."""

    path: str
    cli_globals: dict[str, str] = field(default_factory=dict)
    checkpointing: bool = False
    build_path: str | None = None


def parse_recipe_line(kind: str, line: str) -> RecipeLine:
    """Parse the arguments of ``%kameleon load`` or ``%%kameleon recipe``."""
    parser = recipe_parser(kind)
    args = parser.parse_args(_split(line, parser.prog))
    return RecipeLine(
        path=args.path,
        cli_globals=dict(parse_global(g) for g in args.globals),
        checkpointing=args.checkpointing,
        build_path=args.build_path,
    )


def is_yaml_body(body: str) -> bool:
    """Whether a cell body is Kameleon commands: its first real line is a list item."""
    for raw in body.splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        return text == "-" or text.startswith("- ")
    return False


def shell_value(body: str) -> str:
    """The ``exec_*`` value of a shell body (see the module's docstring)."""
    lines = body.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return "\n".join(lines) + "\n"


def shell_body(value: str) -> str | None:
    """The cell body whose :func:`shell_value` is ``value``, or ``None`` if there is none."""
    body = value[:-1] if "\n" in value else value
    return body if body and shell_value(body) == value else None


def body_commands(
    body: str, context: ContextName | None, on_checkpoint: str | None, *, source: str
) -> list[object]:
    """A microstep's Kameleon body (commands, maybe an ``on_checkpoint`` item) from a cell.

    Raises:
        RecipeError: the body is empty, or its YAML is not a list.
        YamlError: the YAML body does not parse (the message names ``source``).
    """
    items: list[object]
    if is_yaml_body(body):
        # a cell may lack the final newline a file has: a closing "|" block needs it
        data = parse_yaml(body if body.endswith("\n") else body + "\n", source=source)
        if not isinstance(data, list):
            raise RecipeError(f"{source}: a YAML body must be a list of commands")
        if context is not None:
            raise UsageError(
                f"{source}: --context applies to shell bodies; a YAML body names its "
                "contexts in its commands (exec_in, exec_out, ...)"
            )
        items = list(data)
    else:
        value = shell_value(body)
        if not value:
            raise RecipeError(f"{source}: the cell has no commands")
        items = [{f"exec_{(context or ContextName.IN).value}": value}]
    if on_checkpoint is not None:
        items = [{"on_checkpoint": on_checkpoint}, *items]
    return items


def split_cell(source: str) -> tuple[str, str]:
    """A cell's first line and the rest (the body)."""
    first, _, rest = source.partition("\n")
    return first, rest


def magic_of(first_line: str) -> tuple[str, str] | None:
    """``("%%microstep", args)`` for a magic line, ``None`` for anything else."""
    match = re.match(r"^\s*(%%?[A-Za-z_]\w*)(?:\s+(.*))?$", first_line)
    if match is None:
        return None
    return match.group(1), (match.group(2) or "").strip()
