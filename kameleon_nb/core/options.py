"""Build options shared by ``kameleon build`` and ``%kameleon build``: one spelling."""

from __future__ import annotations

import argparse

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.core.retention import DEFAULT_KEEP, KEEP_ALL

__all__ = ["add_checkpoint_options", "build_options"]


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-c``, ``-F``, ``-B``, ``-E`` and ``--microstep-checkpoints`` to a parser."""
    parser.add_argument(
        "-F",
        "--from-checkpoint",
        metavar="ID|STEP|last",
        help="restart from this checkpoint (turns checkpointing on)",
    )
    parser.add_argument(
        "-B",
        "--begin-checkpoint",
        metavar="ID|STEP",
        help="create checkpoints only from this step on",
    )
    parser.add_argument(
        "-E", "--end-checkpoint", metavar="ID|STEP", help="create no checkpoints after this step"
    )
    parser.add_argument(
        "-c",
        "--enable-checkpointing",
        "--enable-checkpoint",
        dest="checkpointing",
        action="store_true",
        help="create and use checkpoints",
    )
    parser.add_argument(
        "--microstep-checkpoints",
        "--microstep-checkpoint",
        dest="microstep_checkpoints",
        choices=["first", "all"],
        default="all",
        help="'first': at most one checkpoint per macrostep",
    )
    parser.add_argument(
        "--until",
        metavar="ID|STEP",
        help="stop after this step (the tree is then at it; no later or clean step runs)",
    )
    parser.add_argument(
        "--keep-stale",
        type=_keep_stale,
        default=None,
        metavar="N|all",
        help=(
            "after a successful build, keep the stale checkpoints of the last N builds "
            f"(default {DEFAULT_KEEP}; 0 removes them all, 'all' keeps every one)"
        ),
    )


def _keep_stale(text: str) -> int:
    if text == "all":
        return KEEP_ALL
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number of builds or 'all', not {text!r}")


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The :class:`BuildOptions` of parsed arguments (``-F`` turns checkpointing on)."""
    return BuildOptions(
        checkpointing=bool(args.checkpointing or args.from_checkpoint),
        from_checkpoint=args.from_checkpoint,
        begin=args.begin_checkpoint,
        end=args.end_checkpoint,
        first_only=args.microstep_checkpoints == "first",
        keep_stale=DEFAULT_KEEP if args.keep_stale is None else args.keep_stale,
        keep_stale_given=args.keep_stale is not None,
        until=args.until,
    )
