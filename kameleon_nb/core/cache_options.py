"""The persistent-cache and proxy options of ``kameleon build``, checked in one place.

``-C`` records every download of the build (and the output of the pipes that read
from the host) into a cache directory and packs it with the recipe into
``<kameleon_cwd>/<name>-cache.tar.gz``; ``--from-cache ARCHIVE`` builds again from
that archive alone. ``--proxy``/``--proxy-credentials`` name a parent proxy.
"""

from __future__ import annotations

import argparse
import enum
import re
from dataclasses import dataclass

from kameleon_nb.errors import UsageError

__all__ = [
    "COMPRESSIONS",
    "CacheMode",
    "CacheOptions",
    "add_cache_options",
    "cache_options",
]

#: ``--cache-archive-compression`` values (upstream's, plus zstd).
COMPRESSIONS = ("none", "gzip", "bz2", "xz", "zstd")

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+):([0-9]{1,5})$")


class CacheMode(enum.Enum):
    """What the cache proxy does with a request."""

    RECORD = "record"  # fetch (or answer from what is recorded) and record
    REPLAY = "replay"  # answer from the recorded responses only


@dataclass(frozen=True, slots=True)
class CacheOptions:
    """The cache and proxy settings of one build.

    Attributes:
        mode: ``None`` without a cache.
        cache_path: ``--cache-path`` (default: ``<build path>/cache/<recipe name>``).
        archive: ``--from-cache`` archive.
        pack: ``-C``: pack the cache archive at the end of a successful build.
        compression: of that archive.
        parent_proxy: ``host:port`` of ``--proxy`` (empty: none).
        credentials: ``user:password`` of ``--proxy-credentials``.
        notes: one-line remarks the build prints (options kept for compatibility).
    """

    mode: CacheMode | None = None
    cache_path: str | None = None
    archive: str | None = None
    pack: bool = False
    compression: str = "gzip"
    parent_proxy: str = ""
    credentials: str = ""
    notes: tuple[str, ...] = ()

    @property
    def context_proxy(self) -> str:
        """What ``proxy_*`` is without a cache: ``[user:pass@]host:port`` (or empty)."""
        if not self.parent_proxy:
            return ""
        return f"{self.credentials}@{self.parent_proxy}" if self.credentials else self.parent_proxy


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
