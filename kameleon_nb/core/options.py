"""Build options shared by ``kameleon build`` and ``%kameleon build``: one spelling."""

from __future__ import annotations

import argparse

from kameleon_nb.core.plan import BuildOptions

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


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The :class:`BuildOptions` of parsed arguments (``-F`` turns checkpointing on)."""
    return BuildOptions(
        checkpointing=bool(args.checkpointing or args.from_checkpoint),
        from_checkpoint=args.from_checkpoint,
        begin=args.begin_checkpoint,
        end=args.end_checkpoint,
        first_only=args.microstep_checkpoints == "first",
    )
