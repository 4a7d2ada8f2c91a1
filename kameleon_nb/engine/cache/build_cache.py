"""The persistent cache of one build: its proxy, its recorded pipes, its archive.

``kameleon build -C`` starts a recording proxy for the build's contexts, records the
output of the ``pipe`` commands that read from the host, and after a successful
build packs ``<kameleon_cwd>/<name>-cache.tar.gz``: the recipe, every file it uses,
and every response and pipe output the build needed. ``--from-cache ARCHIVE``
unpacks it and builds again with a proxy that answers from the archive only; as
root, the contexts and that proxy run in a network namespace of their own with no
interface but loopback, so the rebuild is offline for certain.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kameleon_nb.core.cache_options import CacheMode, CacheOptions
from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.engine.cache.archive import (
    Compression,
    pack_archive,
    recipe_layout,
    unpack_archive,
)
from kameleon_nb.engine.cache.proxy import CacheProxy, ParentProxy, ca_certificate_path
from kameleon_nb.engine.cache.store import CacheStats, CacheStore
from kameleon_nb.errors import CacheError

__all__ = ["BuildCache", "CacheSource", "free_port", "open_cache_source"]

#: Where kameleon_nb keeps its own recipe parts: not packed (the installed ones serve).
_PACKAGE_DATA = str(Path(__file__).resolve().parents[2] / "data")

#: Beside ``metadata/header``: what kameleon_nb adds (the ``-g`` overrides).
_EXTRA_METADATA = "kameleon_nb.json"

#: Hosts a context may use for ``proxy_cache`` that reach a proxy on 127.0.0.1.
_LOOPBACK_NAMES = {"localhost", "10.0.2.2"}  # 10.0.2.2: the host, seen from qemu's user net


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the proxy listens on it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class CacheSource:
    """Where a build's cache comes from, known before the recipe is resolved.

    Attributes:
        options: the command line's cache options.
        recipe: the recipe to build (``--from-cache`` without a recipe: the
            archive's), or None to take the user's.
        store_dir: the store to record into or replay from, once known.
        cli_globals: ``-g`` overrides recorded in the archive (``--from-cache``).
        port: the port the proxy will listen on (the ``proxy_*`` globals name it).
    """

    options: CacheOptions
    recipe: str | None
    store_dir: Path | None
    cli_globals: Mapping[str, str]
    port: int


def open_cache_source(options: CacheOptions, build_path: str) -> CacheSource:
    """Unpack ``--from-cache``'s archive (into ``<build path>/<archive name>/``), pick a port.

    Raises:
        CacheError: the archive is missing, unreadable, unsafe or incomplete.
    """
    recipe = None
    store_dir = None
    cli_globals: dict[str, str] = {}
    if options.archive is not None:
        archive = Path(options.archive)
        base = archive.name.split(".tar", 1)[0] or archive.name
        unpacked = unpack_archive(archive, Path(build_path) / base)
        recipe = str(unpacked.recipe)
        store_dir = unpacked.store_dir
        cli_globals, not_cached = _read_extra_metadata(unpacked.metadata_dir, archive)
        if not_cached:
            raise CacheError(
                f"The cache archive {archive} lacks the HTTPS traffic to "
                f"{', '.join(not_cached)}: its client did not trust the cache's certificate "
                "authority when it was recorded, so this build cannot be replayed offline; "
                "make that client trust it (SSL_CERT_FILE, CURL_CA_BUNDLE... are set in the "
                "contexts) and build again with -C"
            )
    elif options.cache_path is not None:
        store_dir = Path(options.cache_path).resolve()
    return CacheSource(options, recipe, store_dir, cli_globals, free_port())


def _read_extra_metadata(metadata_dir: Path, archive: Path) -> tuple[dict[str, str], list[str]]:
    """The ``-g`` overrides of the recorded build, and the HTTPS hosts it did not cache."""
    path = metadata_dir / _EXTRA_METADATA
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as err:
        raise CacheError(f"{archive}: metadata/{_EXTRA_METADATA} is unreadable ({err})") from err
    if not isinstance(data, dict):
        return {}, []
    values = data.get("globals")
    hosts = data.get("not_cached")
    return (
        {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {},
        [str(h) for h in hosts] if isinstance(hosts, list) else [],
    )


class BuildCache:
    """The cache of one build: start with :meth:`start`, end with :meth:`finish`.

    It is also the builder's :class:`~kameleon_nb.engine.commands.PipeRecorder`.
    """

    def __init__(
        self,
        source: CacheSource,
        recipe: ResolvedRecipe,
        *,
        say: Callable[[str], None] = print,
    ) -> None:
        self.source = source
        self.recipe = recipe
        self._say = say
        options = source.options
        self.mode = options.mode
        self.store_dir = source.store_dir or Path(
            os.path.dirname(recipe.kameleon_cwd), "cache", recipe.name
        )
        self.proxy: CacheProxy | None = None
        self.stats: CacheStats | None = None
        self.archive: Path | None = None
        self._store: CacheStore | None = None
        self._pipes = 0
        self._pipe_bytes = 0
        self._pipe_dir: Path | None = None

    def tell(self, say: Callable[[str], None]) -> None:
        """Send what the cache has to say to ``say`` (the builder's event stream)."""
        self._say = say

    @property
    def offline(self) -> bool:
        """Whether the build must reach no server (a replay): its own network namespace."""
        return self.mode is CacheMode.REPLAY

    # ------------------------------------------------------------------ proxy
    def listen_host(self) -> str:
        """The address the proxy listens on: 127.0.0.1, or the contexts' ``proxy_cache``.

        A context that reaches this machine through loopback (a chroot, proot, bash, or
        qemu's user network at 10.0.2.2) needs nothing else; a VM on a bridge names one
        of this machine's addresses as its ``proxy_cache``, and the proxy listens there
        (not on every address: that would open the proxy to the whole network).
        """
        hosts = {str(self.recipe.global_vars.get("proxy_" + n, "")) for n in ("out", "in")}
        names = sorted({h.rsplit(":", 1)[0].strip("[]") for h in hosts if h})
        for name in names:
            if name in _LOOPBACK_NAMES:
                continue
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(name).is_loopback:
                    continue
            return name
        return "127.0.0.1"

    def start(self, launcher: Sequence[str] = ()) -> None:
        """Start the proxy (inside ``launcher``'s namespaces, if any).

        Raises:
            CacheError: the proxy could not start.
        """
        assert self.mode is not None
        options = self.source.options
        parent = (
            ParentProxy(options.parent_proxy, options.credentials or None)
            if options.parent_proxy
            else None
        )
        host = self.listen_host()
        # the origins the user's own environment trusts (a company CA...), the proxy too
        trusted = os.environ.get("SSL_CERT_FILE")
        self.proxy = CacheProxy(
            self.store_dir,
            self.mode,
            parent=parent,
            host=host,
            port=self.source.port,
            launcher=tuple(launcher),
            upstream_ca=Path(trusted) if trusted and os.path.isfile(trusted) else None,
        )
        self.proxy.start()
        kind = "replaying" if self.mode is CacheMode.REPLAY else "recording"
        self._say(f"Persistent cache: {kind} on port {self.source.port}, store {self.store_dir}")

    @property
    def ca_certificate(self) -> Path:
        """The PEM file of the CA the contexts trust for HTTPS (made when the proxy starts)."""
        return ca_certificate_path(self.store_dir)

    # ------------------------------------------------------------------ pipes
    def _opened_store(self) -> CacheStore:
        if self._store is None:
            self._store = CacheStore.open(self.store_dir)
        return self._store

    def files(self, key: str, source: ContextName) -> tuple[str | None, str | None]:
        """Record (``-C``) or replay (``--from-cache``) a pipe reading from the host."""
        if source is ContextName.IN:  # the appliance's own output: the rebuild makes it
            return None, None
        if self.mode is CacheMode.REPLAY:
            path = self._opened_store().pipe_output(key)
            if path is None:
                where = self.source.options.archive or str(self.store_dir)
                raise CacheError(
                    f"The cache {where} has no recorded output for the pipe {key!r} (of "
                    f"the {source.value} context): it was not recorded by the build that "
                    "made it; build again with -C"
                )
            return None, str(path)
        if self._pipe_dir is None:
            self._pipe_dir = Path(tempfile.mkdtemp(prefix=".pipes.", dir=self.store_dir))
        return str(self._pipe_dir / f"{self._pipes}.out"), None

    def recorded(self, key: str, path: str) -> None:
        """Keep a pipe's output in the store."""
        store = self._opened_store()
        with store.object_writer() as writer, open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                writer.write(chunk)
            sha, size = writer.commit()
        store.index_pipe(key, sha, size)
        self._pipes += 1
        self._pipe_bytes += size
        with contextlib.suppress(OSError):
            os.unlink(path)

    # ------------------------------------------------------------------ end
    def finish(self, *, success: bool) -> list[str]:
        """Stop the proxy, say what it did, pack the archive after a successful ``-C``.

        Returns the lines it said.

        Raises:
            CacheError: the proxy ended badly, a replay missed requests, or packing failed.
        """
        if self._pipe_dir is not None:
            shutil.rmtree(self._pipe_dir, ignore_errors=True)
            self._pipe_dir = None
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            self.stats = proxy.stats if proxy.stats is not None else proxy.stop()
        stats = self.stats
        said: list[str] = []
        if stats is not None:
            said = summary_lines(stats, self._pipes, self._pipe_bytes)
            for line in said:
                self._say(line)
            if stats.tls_not_cached and self.mode is CacheMode.REPLAY:
                raise CacheError(
                    "The build's HTTPS traffic to "
                    f"{', '.join(stats.tls_not_cached)} could not be answered from the cache: "
                    "its client did not trust the cache's certificate authority"
                )
            if stats.misses and self.mode is CacheMode.REPLAY:
                where = self.source.options.archive or str(self.store_dir)
                shown = ", ".join(stats.misses[:5])
                more = f" and {len(stats.misses) - 5} more" if len(stats.misses) > 5 else ""
                raise CacheError(
                    f"The cache {where} does not hold {len(stats.misses)} request(s) the "
                    f"build made: {shown}{more}; build again with -C to record them"
                )
        if success and self.source.options.pack and self.mode is not None:
            self.archive = self._pack()
            said.append(f"Cache archive: {self.archive}")
            self._say(said[-1])
        return said

    def _pack(self) -> Path:
        recipe = self.recipe
        files = _recipe_files(recipe)
        layout = recipe_layout(files, Path(recipe.abspath))
        path = pack_archive(
            Path(recipe.kameleon_cwd),
            recipe.name,
            recipe_files=layout,
            recipe_path=layout[Path(os.path.abspath(recipe.abspath))],
            store_dir=self.store_dir,
            compression=Compression.parse(self.source.options.compression),
            extra_metadata={
                _EXTRA_METADATA: json.dumps(
                    {
                        "globals": dict(recipe.cli_globals),
                        "not_cached": list(self.stats.tls_not_cached if self.stats else ()),
                    }
                ).encode()
            },
        )
        return path


def _recipe_files(recipe: ResolvedRecipe) -> list[Path]:
    """The recipe's own files (every file of a data directory), kameleon_nb's left out."""
    given = recipe.files
    found: list[Path] = []
    for name in (*given.parents, *given.steps, *given.env, *given.data):
        if os.path.commonpath([os.path.abspath(name), _PACKAGE_DATA]) == _PACKAGE_DATA:
            continue
        found.extend(_walk(Path(name)))
    return found


def _walk(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for root, _dirs, names in os.walk(path):
            for name in sorted(names):
                yield Path(root, name)
    elif path.exists():
        yield path


def summary_lines(stats: CacheStats, pipes: int, pipe_bytes: int) -> list[str]:
    """What the cache did, for the end of the build."""
    lines = [
        f"Cache: {stats.requests} request(s), {stats.hits} answered from the cache "
        f"({_size(stats.bytes_served)}), {stats.recorded} recorded "
        f"({_size(stats.bytes_recorded)}), {pipes} pipe output(s) recorded "
        f"({_size(pipe_bytes)})"
    ]
    if stats.tls_not_cached:
        lines.append(
            "Cache: HTTPS not cached (the client did not trust the cache's CA): "
            + ", ".join(stats.tls_not_cached)
        )
    if stats.not_recorded:
        lines.append(
            "Cache: answers not recorded: "
            + ", ".join(f"{url} ({status})" for status, url in stats.not_recorded[:10])
        )
    if stats.errors:
        lines.append("Cache: failed requests: " + "; ".join(stats.errors[:10]))
    return lines


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count} B"
