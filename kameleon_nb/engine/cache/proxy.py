"""Start and stop the cache proxy, a supervised child process.

The proxy (:mod:`kameleon_nb.engine.cache.server`) runs mitmproxy, whose exact version
pins do not fit every environment kameleon_nb runs in (a Jupyter stack wants newer
``tornado``, ``h11``, ``ruamel.yaml``), so it may run under another Python than the
build's: :func:`find_proxy_python` picks it. This module itself does not import
mitmproxy.

>>> with CacheProxy(cache_dir, CacheMode.RECORD) as proxy:   # doctest: +SKIP
...     run_build(http_proxy=proxy.url, ca_file=proxy.ca_certificate)
... stats = proxy.stats
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kameleon_nb.engine import processes
from kameleon_nb.engine.cache.server import (
    CA_DIR,
    CA_FILE,
    CREDENTIALS_VARIABLE,
    EXIT_NO_MITMPROXY,
    MESSAGE_PREFIX,
)
from kameleon_nb.engine.cache.store import CacheMode, CacheStats
from kameleon_nb.errors import CacheError

__all__ = [
    "LOG_NAME",
    "PYTHON_VARIABLE",
    "CacheProxy",
    "ParentProxy",
    "ca_certificate_path",
    "find_proxy_python",
]

log = logging.getLogger(__name__)

PYTHON_VARIABLE: Final = "KAMELEON_NB_PROXY_PYTHON"
"""Environment variable naming the Python that runs the proxy (it must have mitmproxy)."""
LOG_NAME: Final = "proxy.log"
_NESTED_VENV: Final = Path("mitmproxy") / "bin" / "python"
# the directory holding the kameleon_nb package (…/kameleon_nb/engine/cache/proxy.py)
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[3])
# -I: no cwd, user site or PYTHON* variables; the package is *appended* to the path,
# so that the interpreter's own mitmproxy dependencies win over the build's.
_BOOTSTRAP: Final = (
    "import sys; sys.path.append(sys.argv.pop(1)); "
    "from kameleon_nb.engine.cache.server import run; run()"
)
_POLL: Final = 0.01
_INSTALL_HINT: Final = (
    "install it with `pip install 'kameleon_nb[cache]'` (or scripts/setup.sh), "
    f"or set {PYTHON_VARIABLE} to a Python that has mitmproxy 11"
)


@dataclass(frozen=True, slots=True)
class ParentProxy:
    """A proxy the cache proxy goes through when recording (``--proxy``).

    Attributes:
        address: ``host:port`` (an ``http://`` prefix is allowed).
        credentials: ``user:password`` for its Basic authentication, or None.
    """

    address: str
    credentials: str | None = None


def find_proxy_python() -> str:
    """The Python interpreter that will run the proxy.

    In order: ``$KAMELEON_NB_PROXY_PYTHON``; this interpreter, if it has mitmproxy
    (``pip install 'kameleon_nb[cache]'``); ``<this venv>/mitmproxy/bin/python``, the
    separate environment ``scripts/setup.sh`` makes beside the development one.

    Raises:
        CacheError: none of them is there.
    """
    explicit = os.environ.get(PYTHON_VARIABLE)
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise CacheError(f"{PYTHON_VARIABLE}={explicit}: no such Python; {_INSTALL_HINT}")
        return found
    if importlib.util.find_spec("mitmproxy") is not None:
        return sys.executable
    nested = Path(sys.prefix) / _NESTED_VENV
    if os.access(nested, os.X_OK):
        return str(nested)
    raise CacheError(f"the cache proxy needs mitmproxy, which is not installed: {_INSTALL_HINT}")


def ca_certificate_path(cache_dir: Path) -> Path:
    """Where the proxy of ``cache_dir`` keeps its CA certificate (PEM), made at first start."""
    return Path(cache_dir) / CA_DIR / CA_FILE


class CacheProxy:
    """The cache proxy of one build: a child process, started and stopped from here.

    Args:
        cache_dir: the cache store (created if need be); its ``ca/`` holds the
            certificate authority, kept for later builds, and ``proxy.log`` the
            proxy's log of its last run (every hit, recording, miss and error).
        mode: record (fetch and store) or replay (answer from the store only).
        parent: a proxy to go through when recording.
        host: the address to listen on (the one every context can reach).
        port: the port; 0 picks a free one.
        upstream_ca: a PEM file of extra CAs to trust for origin servers.
        intercept_https: when recording, decrypt HTTPS to cache it (False: tunnel
            it untouched; its hosts are listed as not cached).
        start_timeout: seconds to wait for the proxy to listen.
        python: the interpreter to run it (default: :func:`find_proxy_python`).
        launcher: a command prefix that runs it elsewhere, say in the build's
            network namespace (``nsenter --net=... --``); the cache directory must be
            the same path there.

    The proxy runs under a supervisor (:func:`kameleon_nb.engine.processes.spawn`):
    it ends with this process, however this process ends.
    """

    def __init__(
        self,
        cache_dir: Path,
        mode: CacheMode,
        *,
        parent: ParentProxy | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_ca: Path | None = None,
        intercept_https: bool = True,
        start_timeout: float = 30.0,
        python: str | None = None,
        launcher: Sequence[str] = (),
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.mode = mode
        self.parent = parent
        self.host = host
        self.port = port
        self.upstream_ca = upstream_ca
        self.intercept_https = intercept_https
        self.start_timeout = start_timeout
        self.python = python
        self.launcher = tuple(launcher)
        self.stats: CacheStats | None = None
        """What the proxy did, once :meth:`stop` has returned."""
        self._child: processes.Supervised | None = None
        self._run_dir: Path | None = None
        self._address: tuple[str, int] | None = None

    # ------------------------------------------------------------------ public

    @property
    def log_path(self) -> Path:
        """The proxy's log file."""
        return self.cache_dir / LOG_NAME

    @property
    def ca_certificate(self) -> Path:
        """The PEM certificate of the cache's CA: what a client must trust for HTTPS."""
        return ca_certificate_path(self.cache_dir)

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the proxy listens on (after :meth:`start`)."""
        if self._address is None:
            raise CacheError("the cache proxy is not running")
        return self._address

    @property
    def url(self) -> str:
        """``http://host:port``, for ``http_proxy``/``https_proxy``."""
        host, port = self.address
        return f"http://{host}:{port}"

    def running(self) -> bool:
        """Whether the proxy process is alive."""
        return self._child is not None and self._child.poll() is None

    def start(self) -> CacheProxy:
        """Start the proxy and wait until it listens.

        Raises:
            CacheError: mitmproxy is missing, or the proxy did not start (the message
                says why, from its log) within ``start_timeout`` seconds.
        """
        if self._child is not None:
            raise CacheError("the cache proxy is already running")
        credentials = self.parent.credentials if self.parent is not None else None
        if credentials is not None and ":" not in credentials:
            raise CacheError("--proxy-credentials: give USER:PASSWORD")
        python = self.python or find_proxy_python()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # beside the store, which a launcher's namespaces must show at the same path
        self._run_dir = Path(tempfile.mkdtemp(prefix=".proxy-run-", dir=self.cache_dir))
        ready = self._run_dir / "ready.json"
        argv = [
            *self.launcher,
            python,
            "-I",
            "-c",
            _BOOTSTRAP,
            _PACKAGE_ROOT,
            "--cache-dir",
            str(self.cache_dir),
            "--mode",
            self.mode.value,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--ready-file",
            str(ready),
            "--stats-file",
            str(self._run_dir / "stats.json"),
        ]
        env = dict(os.environ)
        env.pop(CREDENTIALS_VARIABLE, None)
        if self.parent is not None:
            argv += ["--proxy", self.parent.address]
            if self.parent.credentials:
                env[CREDENTIALS_VARIABLE] = self.parent.credentials  # not on the command line
        if self.upstream_ca is not None:
            argv += ["--upstream-ca", str(self.upstream_ca)]
        if not self.intercept_https:
            argv.append("--no-https-intercept")
        started = time.monotonic()
        with open(self.log_path, "wb") as log_file:
            try:
                self._child = processes.spawn(
                    argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
                )
            except OSError as err:
                self._cleanup()
                raise CacheError(f"cannot start the cache proxy ({python}): {err}") from err
        try:
            self._wait_ready(ready, python)
        except BaseException:
            self._end()
            self._cleanup()
            raise
        log.debug(
            "cache proxy %s on %s:%d, ready in %.2f s",
            self.mode.value,
            *self.address,
            time.monotonic() - started,
        )
        return self

    def stop(self, timeout: float = processes.END_GRACE + 10.0) -> CacheStats:
        """Stop the proxy (it writes its statistics and index) and return its statistics.

        Raises:
            CacheError: the proxy had died, or ended without writing its statistics.
        """
        if self._child is None:
            if self.stats is None:
                raise CacheError("the cache proxy was not started")
            return self.stats
        assert self._run_dir is not None
        stats_file = self._run_dir / "stats.json"
        died = self._child.poll()
        # the supervisor sends SIGHUP+SIGTERM to the whole tree (the proxy may run in a
        # PID namespace of its own, behind a launcher): the proxy writes its statistics
        # and index at once, then has processes.END_GRACE seconds to exit
        self._end(timeout)
        try:
            self.stats = CacheStats.from_json(json.loads(stats_file.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            reason = f"it had died ({self._last_log_line()})" if died is not None else str(err)
            raise CacheError(
                f"the cache proxy ended without its statistics: {reason}; see {self.log_path}"
            ) from err
        finally:
            self._cleanup()
        return self.stats

    def __enter__(self) -> CacheProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._child is not None:
            try:
                self.stop()
            except CacheError:
                if exc_info[0] is None:
                    raise
                log.warning("cache proxy: could not stop cleanly", exc_info=True)

    # ----------------------------------------------------------------- private

    def _wait_ready(self, ready: Path, python: str) -> None:
        assert self._child is not None
        deadline = time.monotonic() + self.start_timeout
        while not ready.exists():
            status = self._child.poll()
            if status is not None:
                if status == EXIT_NO_MITMPROXY:
                    raise CacheError(
                        f"the cache proxy needs mitmproxy, which {python} lacks: {_INSTALL_HINT}"
                    )
                raise CacheError(
                    f"the cache proxy did not start: {self._last_log_line()} (see {self.log_path})"
                )
            if time.monotonic() > deadline:
                raise CacheError(
                    f"the cache proxy did not start within {self.start_timeout:g} s "
                    f"(see {self.log_path})"
                )
            time.sleep(_POLL)
        info = json.loads(ready.read_bytes())
        self._address = (str(info["host"]), int(info["port"]))

    def _end(self, timeout: float = processes.END_GRACE + 10.0) -> None:
        if self._child is not None:
            self._child.end(timeout=timeout)
            self._child = None
        self._address = None

    def _cleanup(self) -> None:
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def _last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        ours = [line[len(MESSAGE_PREFIX) :] for line in lines if line.startswith(MESSAGE_PREFIX)]
        if ours:
            return ours[-1].strip()
        meaningful = [line.strip() for line in lines if line.strip()]
        return meaningful[-1] if meaningful else "nothing logged"
