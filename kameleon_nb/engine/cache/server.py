"""The cache proxy process: ``python -m kameleon_nb.engine.cache.server``.

Runs mitmproxy as a forward proxy (plain HTTP, ``CONNECT``, HTTPS interception) with
:class:`~kameleon_nb.engine.cache.addon.CacheAddon`, in record or replay mode, until
``SIGTERM`` (or ``SIGHUP``/``SIGINT``). It is normally started by
:class:`~kameleon_nb.engine.cache.proxy.CacheProxy`; run by hand it is a tool to
inspect a cache::

    python -m kameleon_nb.engine.cache.server --cache-dir DIR --mode replay --port 8080

Once it listens it writes ``--ready-file`` (JSON: ``pid``, ``host``, ``port``,
``ca_certificate``); when it is told to stop it writes ``--stats-file`` (JSON, see
:class:`~kameleon_nb.engine.cache.store.CacheStats`), folds the journal into the
index and exits. Its certificate authority lives in ``DIR/ca`` and is made on first
use, so every build that uses the cache directory gets the same one. The parent
proxy's credentials may come from ``KAMELEON_NB_PROXY_CREDENTIALS`` rather than the
command line, where any local user could read them.

Exit status: 0 after a stop; 2 for bad arguments or settings; 3 when mitmproxy is not
installed; 1 when the proxy cannot start. The reason is on stderr, on a line that
starts with :data:`MESSAGE_PREFIX`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kameleon_nb.engine.cache.store import CacheMode, CacheStore, atomic_write

if TYPE_CHECKING:
    from kameleon_nb.engine.cache.addon import CacheAddon

__all__ = [
    "CA_DIR",
    "CA_FILE",
    "CREDENTIALS_VARIABLE",
    "EXIT_NO_MITMPROXY",
    "MESSAGE_PREFIX",
    "main",
    "run",
]

log = logging.getLogger(__name__)

CA_DIR: Final = "ca"
CA_FILE: Final = "mitmproxy-ca-cert.pem"
CREDENTIALS_VARIABLE: Final = "KAMELEON_NB_PROXY_CREDENTIALS"
EXIT_NO_MITMPROXY: Final = 3
MESSAGE_PREFIX: Final = "kameleon_nb cache: "
"""Starts each line of the log that says, in one line, why the proxy failed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kameleon_nb.engine.cache.server",
        description="The kameleon_nb cache proxy (mitmproxy): record or replay HTTP(S).",
    )
    parser.add_argument("--cache-dir", type=Path, required=True, help="the cache store")
    parser.add_argument("--mode", choices=["record", "replay"], required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--ready-file", type=Path, help="JSON written once listening")
    parser.add_argument("--stats-file", type=Path, help="JSON written when stopped")
    parser.add_argument("--proxy", metavar="HOST:PORT", help="parent HTTP proxy (record)")
    parser.add_argument("--proxy-credentials", metavar="USER:PASS", help="for the parent proxy")
    parser.add_argument(
        "--upstream-ca", type=Path, help="PEM file of extra CAs trusted for origin servers"
    )
    parser.add_argument(
        "--no-https-intercept",
        action="store_true",
        help="record: tunnel HTTPS untouched (not cached) instead of decrypting it",
    )
    parser.add_argument("--verbose", action="store_true", help="log mitmproxy's own messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until it is told to stop; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("kameleon_nb").setLevel(logging.INFO)
    try:
        from kameleon_nb.engine.cache.addon import CacheAddon  # noqa: PLC0415
    except ImportError as err:
        print(f"{MESSAGE_PREFIX}mitmproxy is not installed ({err})", file=sys.stderr)
        return EXIT_NO_MITMPROXY
    credentials = args.proxy_credentials or os.environ.get(CREDENTIALS_VARIABLE) or None
    if credentials is not None and ":" not in credentials:
        print(
            f"{MESSAGE_PREFIX}the parent proxy's credentials must be USER:PASSWORD", file=sys.stderr
        )
        return 2
    if args.proxy and args.mode == "replay":
        log.warning("replay contacts no server: the parent proxy %s is not used", args.proxy)
    try:
        store = CacheStore.open(args.cache_dir)
    except (OSError, ValueError) as err:
        print(f"{MESSAGE_PREFIX}cannot open the cache store: {err}", file=sys.stderr)
        return 1
    addon = CacheAddon(store, CacheMode(args.mode), intercept_https=not args.no_https_intercept)
    status = asyncio.run(_serve(args, addon, credentials))
    _finish(args.stats_file, addon)
    return status


def _finish(stats_file: Path | None, addon: CacheAddon) -> None:
    """Write the stats and fold the journal into the index (idempotent)."""
    if stats_file is not None:
        atomic_write(stats_file, json.dumps(addon.stats().to_json(), indent=1).encode())
    try:
        addon.store.compact()
    except (OSError, ValueError) as err:
        log.warning("could not compact the cache index: %s", err)


async def _serve(args: argparse.Namespace, addon: CacheAddon, credentials: str | None) -> int:
    # mitmproxy may be missing where mypy runs (it may live in another environment)
    from mitmproxy import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
        exceptions,
        master,
        options,
    )
    from mitmproxy.addons import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
        errorcheck,
        next_layer,
        proxyserver,
        tlsconfig,
        upstream_auth,
    )
    from mitmproxy.net import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
        server_spec,
    )

    confdir = args.cache_dir / CA_DIR
    confdir.mkdir(parents=True, exist_ok=True)
    mode = "regular"
    if args.proxy and args.mode == "record":
        parent = args.proxy if "://" in args.proxy else f"http://{args.proxy}"
        try:
            server_spec.parse(parent, default_scheme="http")
        except ValueError:
            print(f"{MESSAGE_PREFIX}--proxy {args.proxy}: give HOST:PORT", file=sys.stderr)
            return 2
        mode = f"upstream:{parent}"
    try:
        opts = options.Options(listen_host=args.host, listen_port=args.port, mode=[mode])
        checker = errorcheck.ErrorCheck(repeat_errors_on_stderr=True)
        proxy = master.Master(opts)
        server = proxyserver.Proxyserver()
        proxy.addons.add(
            server,
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            upstream_auth.UpstreamAuth(),
            checker,
            addon,
            _Ready(args.ready_file, server.listen_addrs, confdir / CA_FILE),
        )
        opts.update(
            confdir=str(confdir),
            connection_strategy="lazy",  # a hit (and every replay) opens no connection
            http2=False,
            http3=False,
            upstream_cert=False,
            ssl_verify_upstream_trusted_ca=str(args.upstream_ca) if args.upstream_ca else None,
            upstream_auth=credentials,
        )
    except exceptions.OptionsError as err:
        # never the option's value: it may hold the parent proxy's password
        print(f"{MESSAGE_PREFIX}invalid settings: {str(err).split(':')[0]}", file=sys.stderr)
        return 2

    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:  # SIGHUP and SIGTERM come together from the supervisor
            stopping = True
            _finish(args.stats_file, addon)  # first: the stats must survive a later SIGKILL
            proxy.shutdown()

    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(number, stop)
    try:
        await proxy.run()
    except SystemExit as exit_:  # errorcheck: an error was logged during start-up
        for record in checker.logger.has_errored[:1]:
            error = record.exc_info[1] if record.exc_info else None
            text = str(error) if error is not None else record.getMessage()
            print(f"{MESSAGE_PREFIX}cannot start: {text.splitlines()[0]}", file=sys.stderr)
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


class _Ready:
    """Write the ready file once the proxy listens."""

    def __init__(
        self,
        path: Path | None,
        listen_addrs: Callable[[], Sequence[tuple[Any, ...]]],
        ca_certificate: Path,
    ) -> None:
        self.path = path
        self.listen_addrs = listen_addrs
        self.ca_certificate = ca_certificate

    def running(self) -> None:
        """Hook: the servers are up."""
        host, port = self.listen_addrs()[0][:2]
        log.info("listening on %s:%d", host, port)
        if self.path is not None:
            ready = {
                "pid": os.getpid(),
                "host": host,
                "port": port,
                "ca_certificate": str(self.ca_certificate),
            }
            atomic_write(self.path, json.dumps(ready).encode())


def run() -> None:
    """Run :func:`main` and exit without tearing the interpreter down.

    Freeing mitmproxy's modules one by one takes longer than the rest of a stop; the
    statistics and the index are written by then, and the standard streams are flushed.
    """
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
