"""Option parsing shared by the ``kameleon`` command and the ``%kameleon`` magics.

Both front ends spell the build's checkpoint, cache and proxy options the same way;
this module adds them to a parser and turns the parsed values into the engine's
:class:`~kameleon_nb.core.plan.BuildOptions` and
:class:`~kameleon_nb.core.cache_options.CacheOptions`, checking them on the way.
"""

from __future__ import annotations

import argparse
import re

from kameleon_nb.core.cache_options import COMPRESSIONS, CacheMode, CacheOptions
from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.core.retention import DEFAULT_KEEP, KEEP_ALL
from kameleon_nb.errors import UsageError

__all__ = [
    "add_cache_options",
    "add_checkpoint_options",
    "add_globals_option",
    "build_options",
    "cache_options",
    "new_parser",
    "parse_global",
]

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+):([0-9]{1,5})$")


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise UsageError(message or f"{self.prog}: exit {status}")


def new_parser(prog: str, description: str = "") -> argparse.ArgumentParser:
    """An argument parser that raises :class:`UsageError` instead of exiting."""
    return _Parser(prog=prog, add_help=False, description=description or None)


def add_globals_option(parser: argparse.ArgumentParser) -> None:
    """``-g``/``--global key:value ...`` (repeatable), into ``args.globals``."""
    parser.add_argument(
        "-g",
        "--global",
        dest="globals",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY:VALUE",
        help="override global variables",
    )


def parse_global(item: str) -> tuple[str, str]:
    """Split one ``key:value`` of ``-g`` (the value may hold more colons).

    Raises:
        UsageError: no colon, or an empty key.
    """
    key, sep, value = item.partition(":")
    if not sep or not key:
        raise UsageError(f"-g expects key:value, got '{item}'")
    return key, value


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


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-C``, ``--cache-path``, ``--from-cache`` and the proxy options to a parser."""
    parser.add_argument(
        "-C",
        "--enable-cache",
        action="store_true",
        help="record every download of the build; pack them with the recipe at the end",
    )
    parser.add_argument(
        "--cache-path", help="the cache directory (default: <build path>/cache/<recipe name>)"
    )
    parser.add_argument(
        "--from-cache",
        metavar="ARCHIVE",
        help="build again from a cache archive, offline (the recipe may then be omitted)",
    )
    parser.add_argument(
        "--cache-archive-compression",
        choices=COMPRESSIONS,
        default=None,
        help="compression of the archive -C packs (default gzip)",
    )
    parser.add_argument(
        "--polipo-path", help="accepted for compatibility: kameleon_nb's cache needs no polipo"
    )
    parser.add_argument("--proxy", default="", metavar="HOST:PORT", help="parent HTTP proxy")
    parser.add_argument(
        "--proxy-credentials", default="", metavar="USER:PASSWORD", help="for --proxy"
    )
    parser.add_argument(
        "--proxy-offline",
        action="store_true",
        help="with -C: answer from the cache directory only, never from the network",
    )


def cache_options(args: argparse.Namespace) -> CacheOptions:
    """Check the parsed cache options and gather them.

    Raises:
        UsageError: a malformed ``--proxy``/``--proxy-credentials``, or options that
            contradict each other.
    """
    proxy = args.proxy.strip()
    if proxy and not _HOST_PORT.match(proxy):
        raise UsageError(
            f"ERROR: --proxy expects HOST:PORT (for example squid.lan:3128), not {proxy!r}"
        )
    if proxy and not 0 < int(proxy.rsplit(":", 1)[1]) < 65536:
        raise UsageError(f"ERROR: --proxy: {proxy!r} has no valid port (1-65535)")
    credentials = args.proxy_credentials
    if credentials and ":" not in credentials:
        raise UsageError("ERROR: --proxy-credentials expects USER:PASSWORD")
    if credentials and not proxy:
        raise UsageError("ERROR: --proxy-credentials needs --proxy HOST:PORT")
    if args.enable_cache and args.from_cache:
        raise UsageError(
            "ERROR: -C records a new cache and --from-cache replays one: use one of them"
        )
    notes: list[str] = []
    if args.polipo_path:
        notes.append(
            "Note: --polipo-path is ignored: kameleon_nb's cache is its own proxy (mitmproxy), "
            "it needs no polipo"
        )
    mode: CacheMode | None = None
    if args.from_cache:
        mode = CacheMode.REPLAY
    elif args.enable_cache:
        mode = CacheMode.REPLAY if args.proxy_offline else CacheMode.RECORD
        if args.proxy_offline:
            notes.append(
                "Note: --proxy-offline: the cache answers from what it recorded only; a "
                "request it does not hold fails the build"
            )
    elif args.proxy_offline:
        raise UsageError("ERROR: --proxy-offline works with -C (the cache answers offline)")
    if mode is None and args.cache_path:
        raise UsageError("ERROR: --cache-path works with -C or --from-cache")
    if not args.enable_cache and args.cache_archive_compression:
        raise UsageError("ERROR: --cache-archive-compression works with -C (it packs the archive)")
    return CacheOptions(
        mode=mode,
        cache_path=args.cache_path,
        archive=args.from_cache,
        pack=bool(args.enable_cache),
        compression=args.cache_archive_compression or "gzip",
        parent_proxy=proxy,
        credentials=credentials,
        notes=tuple(notes),
    )
