"""The mitmproxy addon that records responses into a cache store and replays them.

It runs inside the proxy process (:mod:`kameleon_nb.engine.cache.server`), the only
part of kameleon_nb that imports mitmproxy.

* ``record``: a request whose key (:func:`~kameleon_nb.engine.cache.store.request_key`)
  is in the store is answered from it (a *hit*, no network). Any other request goes to
  its origin (or to the parent proxy) without the headers that would make the answer
  depend on the client (``Range``, conditional headers; ``Accept-Encoding`` becomes
  ``identity``), and the response streams to the client while its body is written to
  the store; once complete it is indexed. Server errors (5xx), ``206``, ``304``,
  ``407``, ``408`` and ``429`` answers are passed on but not recorded, so a retry
  can still fetch the real thing.
* ``replay``: requests are answered from the store only. A request that is not in it
  gets a ``504 Not in cache archive`` answer naming the URL (the status an HTTP cache
  gives when it may not contact the origin, RFC 9111 §5.2.1.7), and is listed as a miss.

HTTPS is intercepted with the cache's own certificate authority. A client that does
not trust it fails its handshake; its host is listed as not cached, and while
recording, later connections to that host are tunnelled untouched (so a retry works,
uncached). A replay never opens a tunnel: it has no network to tunnel to.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

from mitmproxy import http, tls  # type: ignore[import-not-found, unused-ignore]

from kameleon_nb.engine.cache.store import (
    CacheMode,
    CacheStats,
    CacheStore,
    ObjectWriter,
    RecordedResponse,
    request_key,
)

__all__ = ["CACHE_HEADER", "MISS_HEADER", "CacheAddon", "miss_message"]

log = logging.getLogger(__name__)


_KEY: Final = "kameleon_nb.cache.key"
_WRITER: Final = "kameleon_nb.cache.writer"
CACHE_HEADER: Final = "x-kameleon-cache"
MISS_HEADER: Final = "x-kameleon-cache-miss"
_MISS_STATUS: Final = 504
_MISS_REASON: Final = b"Not in cache archive"

# not forwarded to the origin while recording: the answer must not depend on them
_CLIENT_DEPENDENT: Final = (
    "range",
    "if-range",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "if-match",
)
# hop-by-hop headers (RFC 9110 §7.6.1) and ours: never stored
_NOT_STORED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        CACHE_HEADER,
        MISS_HEADER,
    }
)
_NOT_RECORDED_STATUS: Final = frozenset({206, 304, 407, 408, 429})
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


def miss_message(method: str, url: str) -> str:
    """The body of the answer to a request that is not in the cache archive.

    >>> print(miss_message("GET", "http://h/x"), end="")
    kameleon_nb cache: GET http://h/x is not in the cache archive
    """
    return f"kameleon_nb cache: {method} {url} is not in the cache archive\n"


def _storable(status: int) -> bool:
    return status < 500 and status not in _NOT_RECORDED_STATUS


class CacheAddon:
    """Answer from a :class:`CacheStore`, and (when recording) fill it.

    Args:
        store: the store to answer from and record into.
        mode: record or replay.
        intercept_https: when recording, decrypt HTTPS with the cache's certificate
            authority (False: tunnel every HTTPS connection untouched, uncached).
    """

    def __init__(self, store: CacheStore, mode: CacheMode, *, intercept_https: bool = True) -> None:
        self.store = store
        self.mode = mode
        self.intercept_https = intercept_https or mode is CacheMode.REPLAY
        self._requests = 0
        self._hits = 0
        self._recorded = 0
        self._bytes_recorded = 0
        self._bytes_served = 0
        self._not_recorded: list[tuple[int, str]] = []
        self._misses: dict[str, None] = {}
        self._tls_not_cached: dict[str, None] = {}
        self._errors: list[str] = []

    def stats(self) -> CacheStats:
        """What this addon has done so far."""
        return CacheStats(
            mode=self.mode.value,
            requests=self._requests,
            hits=self._hits,
            recorded=self._recorded,
            not_recorded=tuple(self._not_recorded),
            misses=tuple(self._misses),
            bytes_recorded=self._bytes_recorded,
            bytes_served=self._bytes_served,
            tls_not_cached=tuple(self._tls_not_cached),
            errors=tuple(self._errors),
        )

    # ------------------------------------------------------------------ HTTP hooks

    def request(self, flow: http.HTTPFlow) -> None:
        """A complete request: answer it from the store, or prepare to record it."""
        request = flow.request
        self._requests += 1
        url = request.url
        key = request_key(request.method, url, request.raw_content or b"")
        recorded = self.store.lookup(key)
        if recorded is None and request.method == "HEAD":
            recorded = self.store.lookup(request_key("GET", url))
        if recorded is not None:
            self._serve(flow, recorded)
            return
        if self.mode is CacheMode.REPLAY:
            self._misses[url] = None
            log.warning("MISS %s %s", request.method, url)
            flow.response = http.Response.make(
                _MISS_STATUS,
                miss_message(request.method, url).encode("utf-8", "surrogateescape"),
                [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (CACHE_HEADER.encode(), b"miss"),
                    (MISS_HEADER.encode(), url.encode("utf-8", "surrogateescape")),
                ],
            )
            flow.response.reason = _MISS_REASON
            return
        flow.metadata[_KEY] = key
        if request.method in ("GET", "HEAD"):
            for name in _CLIENT_DEPENDENT:
                request.headers.pop(name, None)
        request.headers["accept-encoding"] = "identity"

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """The origin's headers: stream the body to the client and into the store."""
        if _KEY not in flow.metadata or flow.response is None:
            return
        if not _storable(flow.response.status_code):
            return
        writer = self.store.object_writer()
        flow.metadata[_WRITER] = writer

        def tee(chunk: bytes) -> bytes:
            writer.write(chunk)
            return chunk

        flow.response.stream = tee

    def response(self, flow: http.HTTPFlow) -> None:
        """A complete response from the origin: index it."""
        writer: ObjectWriter | None = flow.metadata.pop(_WRITER, None)
        key = flow.metadata.get(_KEY)
        response = flow.response
        if key is None or response is None:
            if writer is not None:
                writer.abort()
            return
        url = flow.request.url
        if not _storable(response.status_code):
            self._not_recorded.append((response.status_code, url))
            log.warning(
                "NOT RECORDED %s %s: status %d", flow.request.method, url, response.status_code
            )
            return
        if response.raw_content is not None or writer is None:
            # not streamed: a body-less answer (HEAD, 204...) or one set by another addon
            if writer is not None:
                writer.abort()
            sha, size = self.store.put_object(response.raw_content or b"")
        else:
            sha, size = writer.commit()
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.headers.fields
            if name.decode("latin-1").lower() not in _NOT_STORED
        )
        self.store.record_response(
            key,
            RecordedResponse(
                url=url,
                status=response.status_code,
                reason=response.reason,
                headers=headers,
                body_sha256=sha,
                size=size,
            ),
        )
        self._recorded += 1
        self._bytes_recorded += size
        log.info("RECORDED %s %s (%d bytes)", flow.request.method, url, size)

    def error(self, flow: http.HTTPFlow) -> None:
        """The flow failed (origin unreachable, connection cut): forget its partial body."""
        writer: ObjectWriter | None = flow.metadata.pop(_WRITER, None)
        if writer is not None:
            writer.abort()
        message = flow.error.msg if flow.error else "unknown error"
        self._errors.append(f"{flow.request.url}: {message}")
        log.warning("ERROR %s %s: %s", flow.request.method, flow.request.url, message)

    # ------------------------------------------------------------------- TLS hooks

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Tunnel the connection untouched if HTTPS is not to be (or cannot be) cached."""
        if self.mode is CacheMode.REPLAY:
            return
        host = _tls_host(data.context.server.address, data.client_hello.sni)
        if not self.intercept_https or host in self._tls_not_cached:
            data.ignore_connection = True
            if host not in self._tls_not_cached:
                self._tls_not_cached[host] = None
                log.warning("NOT CACHED https://%s: HTTPS interception is off", host)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """The client refused our certificate (it does not trust the cache's CA)."""
        host = _tls_host(data.context.server.address, data.conn.sni)
        if host not in self._tls_not_cached:
            self._tls_not_cached[host] = None
            log.warning(
                "NOT CACHED https://%s: the client does not trust the cache's CA (%s)",
                host,
                data.conn.error,
            )

    # ------------------------------------------------------------------- serving

    def _serve(self, flow: http.HTTPFlow, recorded: RecordedResponse) -> None:
        request = flow.request
        try:
            body = b"" if request.method == "HEAD" else self.store.read_object(recorded.body_sha256)
        except OSError as err:
            log.error("cache object of %s unreadable: %s", recorded.url, err)
            flow.response = http.Response.make(500, f"kameleon_nb cache: {err}\n")
            return
        status, reason = recorded.status, recorded.reason.encode("latin-1")
        fields = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in recorded.headers
            if name.lower() != "content-length"
        ]
        ranged = _byte_range(request, recorded)
        if ranged is not None:
            start, end = ranged
            body = body[start : end + 1]
            status, reason = 206, b"Partial Content"
            fields.append((b"content-range", f"bytes {start}-{end}/{recorded.size}".encode()))
        if request.method == "HEAD":
            # the length of the GET answer: the recorded one (of a HEAD), else the body's
            stored = [v for n, v in recorded.headers if n.lower() == "content-length"]
            length = stored[0] if stored and recorded.size == 0 else str(recorded.size)
            fields.append((b"content-length", length.encode("latin-1")))
        elif status >= 200 and status not in (204, 304):
            fields.append((b"content-length", str(len(body)).encode()))
        fields.append((CACHE_HEADER.encode(), b"hit"))
        now = time.time()
        flow.response = http.Response(
            b"HTTP/1.1", status, reason, http.Headers(fields), body, None, now, now
        )
        self._hits += 1
        self._bytes_served += len(body)
        log.info("HIT %s %s (%d bytes)", request.method, recorded.url, len(body))


def _byte_range(request: http.Request, recorded: RecordedResponse) -> tuple[int, int] | None:
    """The single byte range a GET asks for, if it can be served from ``recorded``.

    Only ``bytes=A-B``, ``bytes=A-`` and ``bytes=-N`` of a recorded ``200`` are served
    as ``206``; anything else (several ranges, ``If-Range``) gets the whole body, which
    HTTP always allows.
    """
    spec = request.headers.get("range")
    if (
        request.method != "GET"
        or not spec
        or recorded.status != 200
        or "if-range" in request.headers
    ):
        return None
    match = _RANGE.fullmatch(spec.strip())
    if match is None or (not match.group(1) and not match.group(2)) or recorded.size == 0:
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), recorded.size - 1) if last else recorded.size - 1
    else:
        start, end = max(recorded.size - int(last), 0), recorded.size - 1
    if start > end or start >= recorded.size:
        return None
    return start, end


def _tls_host(address: tuple[str, int] | None, sni: str | None) -> str:
    port = address[1] if address else 443
    host = sni or (address[0] if address else "?")
    return f"{host}:{port}"
