"""The persistent-cache and proxy settings of one build, as data.

``-C`` records every download of the build (and the output of the pipes that read
from the host) into a cache directory and packs it with the recipe into
``<kameleon_cwd>/<name>-cache.tar.gz``; ``--from-cache ARCHIVE`` builds again from
that archive alone. ``--proxy``/``--proxy-credentials`` name a parent proxy. The
options are parsed and checked by the front ends (:mod:`kameleon_nb.frontends.arguments`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["COMPRESSIONS", "CacheMode", "CacheOptions"]

#: ``--cache-archive-compression`` values (upstream's, plus zstd).
COMPRESSIONS = ("none", "gzip", "bz2", "xz", "zstd")


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
