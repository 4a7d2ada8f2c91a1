"""The cache store: content-addressed bodies and the index that finds them again.

A store is a directory::

    objects/ab/ab12…ef     every body once, named by its SHA-256 (the same bytes under
                           two URLs, or from an HTTP response and a pipe, are kept once)
    index.json             the index, rewritten atomically when the store is compacted
    journal.jsonl          entries recorded since the last compaction, one JSON line each
    index.lock             taken (``flock``) around every change of the two files above

An entry is written to the journal as soon as its body is complete, so a build that
is killed keeps what it had recorded; :meth:`CacheStore.compact` folds the journal
into ``index.json``. Two processes can record into one store at once (the proxy
records HTTP responses, the builder records pipe outputs): objects are written to a
temporary file and renamed into place, and index changes are serialised by the lock.

HTTP responses are indexed by :func:`request_key`: the method and the full URL
(scheme and host in lower case, default port left out), plus a digest of the request
body when there is one. Request headers are not part of the key: the proxy removes
the headers that would make an origin answer differently to the same URL
(``Range``, conditional requests, ``Accept-Encoding``) before it records, so one
recorded response serves every client. Pipe outputs are indexed by an opaque string
the caller chooses (say, a microstep id and the index of the command).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from kameleon_nb.core.cache_options import CacheMode

__all__ = [
    "INDEX_NAME",
    "JOURNAL_NAME",
    "OBJECTS_DIR",
    "CacheMode",
    "CacheStats",
    "CacheStore",
    "ObjectWriter",
    "RecordedPipe",
    "RecordedResponse",
    "atomic_write",
    "index_bytes",
    "request_key",
    "write_index",
]

log = logging.getLogger(__name__)

INDEX_NAME: Final = "index.json"
JOURNAL_NAME: Final = "journal.jsonl"
OBJECTS_DIR: Final = "objects"
_LOCK_NAME: Final = "index.lock"
_INDEX_FORMAT: Final = 1
_CHUNK: Final = 1 << 20
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ftp": 21}


def request_key(method: str, url: str, body: bytes = b"") -> str:
    """The index key of an HTTP request: method, normalised URL, digest of the body.

    The scheme and host are lower-cased and a default port is dropped, so that
    ``HTTP://Example.org:80/a`` and ``http://example.org/a`` are one resource; the
    path and query stay byte for byte (they may be case-sensitive) and a fragment,
    which never reaches a server, is dropped.

    >>> request_key("get", "HTTP://Deb.Debian.org:80/debian/dists/stable/Release#x")
    'GET http://deb.debian.org/debian/dists/stable/Release'
    >>> request_key("POST", "https://h:8443/q?a=1", b"x")[:40]
    'POST https://h:8443/q?a=1 body-sha256=2d'
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    normal = urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    key = f"{method.upper()} {normal}"
    if body:
        key += f" body-sha256={hashlib.sha256(body).hexdigest()}"
    return key


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """One recorded HTTP response: what the origin said and where its body is.

    Header names and values are the bytes the origin sent, decoded as Latin-1 (so
    that any byte survives JSON). Hop-by-hop headers are not kept.
    """

    url: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body_sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The entry as the index stores it."""
        return {
            "url": self.url,
            "status": self.status,
            "reason": self.reason,
            "headers": [list(pair) for pair in self.headers],
            "body_sha256": self.body_sha256,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedResponse:
        """Read an entry of the index (raises KeyError/TypeError/ValueError if malformed)."""
        return cls(
            url=str(data["url"]),
            status=int(data["status"]),
            reason=str(data["reason"]),
            headers=tuple((str(name), str(value)) for name, value in data["headers"]),
            body_sha256=_checked_sha(data["body_sha256"]),
            size=int(data["size"]),
        )


@dataclass(frozen=True, slots=True)
class RecordedPipe:
    """The recorded output of one ``pipe`` command."""

    body_sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The entry as the index stores it."""
        return {"body_sha256": self.body_sha256, "size": self.size}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedPipe:
        """Read an entry of the index (raises KeyError/TypeError/ValueError if malformed)."""
        return cls(body_sha256=_checked_sha(data["body_sha256"]), size=int(data["size"]))


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the cache proxy did during one run.

    Attributes:
        mode: ``"record"`` or ``"replay"`` (a :class:`CacheMode` value).
        requests: HTTP requests the proxy received (CONNECT tunnels not counted).
        hits: requests answered from the store.
        recorded: responses fetched and added to the store.
        not_recorded: responses fetched but not stored (server errors, partial or
            ``304`` answers), as ``(status, url)``.
        misses: URLs a replay could not answer (not in the cache archive).
        bytes_recorded: body bytes added to the store (before deduplication).
        bytes_served: body bytes answered from the store.
        tls_not_cached: HTTPS hosts (``host:port``) whose traffic was not cached: the
            client did not trust the cache's certificate authority, or interception
            is off.
        errors: requests that failed (the origin could not be reached...), as
            ``"URL: reason"``.
    """

    mode: str
    requests: int = 0
    hits: int = 0
    recorded: int = 0
    not_recorded: tuple[tuple[int, str], ...] = ()
    misses: tuple[str, ...] = ()
    bytes_recorded: int = 0
    bytes_served: int = 0
    tls_not_cached: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The stats as a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["not_recorded"] = [list(pair) for pair in self.not_recorded]
        for name in ("misses", "tls_not_cached", "errors"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CacheStats:
        """Read stats written by :meth:`to_json`."""
        return cls(
            mode=str(data["mode"]),
            requests=int(data["requests"]),
            hits=int(data["hits"]),
            recorded=int(data["recorded"]),
            not_recorded=tuple((int(s), str(u)) for s, u in data["not_recorded"]),
            misses=tuple(str(u) for u in data["misses"]),
            bytes_recorded=int(data["bytes_recorded"]),
            bytes_served=int(data["bytes_served"]),
            tls_not_cached=tuple(str(h) for h in data["tls_not_cached"]),
            errors=tuple(str(e) for e in data["errors"]),
        )


def _checked_sha(value: object) -> str:
    text = str(value)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a SHA-256 digest: {text!r}")
    return text


class ObjectWriter:
    """A body being written into the store, chunk by chunk, hashed on the way.

    :meth:`commit` moves it into ``objects/`` under its digest (or drops it, if the
    store already has those bytes); :meth:`abort` throws it away. Use it as a context
    manager to abort whatever was not committed.
    """

    def __init__(self, objects: Path) -> None:
        self.objects = objects
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - see commit/abort
            dir=objects, prefix=".incoming-", delete=False
        )
        self._done = False

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the body."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def commit(self) -> tuple[str, int]:
        """Store the body; return its SHA-256 and size."""
        self._file.flush()
        os.fchmod(self._file.fileno(), 0o644)  # NamedTemporaryFile makes it 0600
        os.fsync(self._file.fileno())
        self._file.close()
        self._done = True
        sha = self._hash.hexdigest()
        target = self.objects / sha[:2] / sha
        temporary = Path(self._file.name)
        if target.exists():
            temporary.unlink()
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(temporary, target)
        return sha, self.size

    def abort(self) -> None:
        """Throw the partial body away."""
        if not self._done:
            self._done = True
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._file.name)

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()


class CacheStore:
    """A store directory: objects, index and journal (see the module docstring).

    Opening reads the index and the journal once; entries recorded afterwards by
    another process are seen by the next :meth:`open`.
    """

    def __init__(
        self,
        root: Path,
        responses: dict[str, RecordedResponse],
        pipes: dict[str, RecordedPipe],
    ) -> None:
        self.root = root
        self._responses = responses
        self._pipes = pipes

    @classmethod
    def open(cls, root: Path) -> CacheStore:
        """Open (and create, if need be) the store in ``root``."""
        root = Path(root)
        (root / OBJECTS_DIR).mkdir(parents=True, exist_ok=True)
        responses: dict[str, RecordedResponse] = {}
        pipes: dict[str, RecordedPipe] = {}
        with _locked(root):
            _read_index(root / INDEX_NAME, responses, pipes)
            _read_journal(root / JOURNAL_NAME, responses, pipes)
        return cls(root, responses, pipes)

    # ------------------------------------------------------------------ objects

    def object_path(self, sha256: str) -> Path:
        """Where the body with this digest is (whether or not it is there)."""
        sha = _checked_sha(sha256)
        return self.root / OBJECTS_DIR / sha[:2] / sha

    def object_writer(self) -> ObjectWriter:
        """Start writing a body (see :class:`ObjectWriter`)."""
        return ObjectWriter(self.root / OBJECTS_DIR)

    def put_object(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return its SHA-256 and size."""
        with self.object_writer() as writer:
            writer.write(data)
            return writer.commit()

    def read_object(self, sha256: str) -> bytes:
        """The body with this digest (raises FileNotFoundError if it is missing)."""
        return self.object_path(sha256).read_bytes()

    def missing_objects(self) -> list[str]:
        """Digests the index names but ``objects/`` lacks (an incomplete store)."""
        wanted = {r.body_sha256 for r in self._responses.values()}
        wanted |= {p.body_sha256 for p in self._pipes.values()}
        return sorted(sha for sha in wanted if not self.object_path(sha).is_file())

    # ------------------------------------------------------------ HTTP responses

    def lookup(self, key: str) -> RecordedResponse | None:
        """The recorded response for a :func:`request_key`, if any."""
        return self._responses.get(key)

    def record_response(self, key: str, response: RecordedResponse) -> None:
        """Index ``response`` (its body already stored) under ``key``."""
        self._responses[key] = response
        self._append({"http": key, "entry": response.to_json()})

    def responses(self) -> Mapping[str, RecordedResponse]:
        """Every recorded response, by key."""
        return dict(self._responses)

    # -------------------------------------------------------------- pipe outputs

    def record_pipe(self, key: str, data: bytes) -> RecordedPipe:
        """Store the output of a pipe under the caller's ``key``."""
        sha, size = self.put_object(data)
        return self.index_pipe(key, sha, size)

    def index_pipe(self, key: str, sha256: str, size: int) -> RecordedPipe:
        """Index a pipe output already stored (by an :class:`ObjectWriter`) under ``key``."""
        entry = RecordedPipe(_checked_sha(sha256), size)
        self._pipes[key] = entry
        self._append({"pipe": key, "entry": entry.to_json()})
        return entry

    def pipe_output(self, key: str) -> Path | None:
        """The file holding the recorded output of pipe ``key``, if recorded."""
        entry = self._pipes.get(key)
        return None if entry is None else self.object_path(entry.body_sha256)

    def pipes(self) -> Mapping[str, RecordedPipe]:
        """Every recorded pipe output, by key."""
        return dict(self._pipes)

    # ------------------------------------------------------------------- index

    def compact(self) -> None:
        """Fold the journal into ``index.json`` (atomically) and empty the journal.

        Entries other processes appended since this store was opened are kept.
        """
        with _locked(self.root):
            responses: dict[str, RecordedResponse] = {}
            pipes: dict[str, RecordedPipe] = {}
            _read_index(self.root / INDEX_NAME, responses, pipes)
            _read_journal(self.root / JOURNAL_NAME, responses, pipes)
            write_index(self.root / INDEX_NAME, responses, pipes)
            with contextlib.suppress(FileNotFoundError):
                os.truncate(self.root / JOURNAL_NAME, 0)
            self._responses.update(responses)
            self._pipes.update(pipes)

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n").encode()
        with _locked(self.root):
            fd = os.open(self.root / JOURNAL_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def index_bytes(
    responses: Mapping[str, RecordedResponse], pipes: Mapping[str, RecordedPipe]
) -> bytes:
    """The text of an index file (JSON, keys sorted: the same entries give the same bytes)."""
    document = {
        "format": _INDEX_FORMAT,
        "http": {key: responses[key].to_json() for key in sorted(responses)},
        "pipes": {key: pipes[key].to_json() for key in sorted(pipes)},
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def write_index(
    path: Path,
    responses: Mapping[str, RecordedResponse],
    pipes: Mapping[str, RecordedPipe],
) -> None:
    """Write an index file atomically (a temporary file renamed over ``path``)."""
    atomic_write(path, index_bytes(responses, pipes))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        try:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)  # NamedTemporaryFile makes it 0600
            os.fsync(f.fileno())
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.replace(f.name, path)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    fd = os.open(root / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_index(
    path: Path, responses: dict[str, RecordedResponse], pipes: dict[str, RecordedPipe]
) -> None:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return
    except ValueError as err:
        raise ValueError(f"{path}: not a cache index ({err})") from err
    if not isinstance(document, dict) or document.get("format") != _INDEX_FORMAT:
        raise ValueError(f"{path}: not a cache index of format {_INDEX_FORMAT}")
    try:
        for key, entry in document["http"].items():
            responses[str(key)] = RecordedResponse.from_json(entry)
        for key, entry in document["pipes"].items():
            pipes[str(key)] = RecordedPipe.from_json(entry)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: malformed cache index ({err!r})") from err


def _read_journal(
    path: Path, responses: dict[str, RecordedResponse], pipes: dict[str, RecordedPipe]
) -> None:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if "http" in record:
                responses[str(record["http"])] = RecordedResponse.from_json(record["entry"])
            else:
                pipes[str(record["pipe"])] = RecordedPipe.from_json(record["entry"])
        except (KeyError, TypeError, ValueError, AttributeError):
            # a line cut short by a crash (an entry whose body is stored but not indexed)
            log.warning("%s:%d: unreadable journal entry, skipped", path, number)
