"""The cache store: keys, content addressing, the journal and its compaction."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import pytest

from kameleon_nb.engine.cache.store import (
    CacheStats,
    CacheStore,
    RecordedResponse,
    request_key,
)


def _response(url: str, sha: str, size: int) -> RecordedResponse:
    return RecordedResponse(
        url=url,
        status=200,
        reason="OK",
        headers=(("Content-Type", "text/plain"), ("X-Bytes", "caf\xe9")),
        body_sha256=sha,
        size=size,
    )


@pytest.mark.parametrize(
    ("method", "url", "body", "key"),
    [
        pytest.param("get", "http://h/a", b"", "GET http://h/a", id="method-upper"),
        pytest.param("GET", "HTTP://H.Example:80/a", b"", "GET http://h.example/a", id="host-port"),
        pytest.param("GET", "https://h:443/", b"", "GET https://h/", id="https-default-port"),
        pytest.param("GET", "https://h:8443/", b"", "GET https://h:8443/", id="other-port"),
        pytest.param("GET", "http://h", b"", "GET http://h/", id="empty-path"),
        pytest.param("GET", "http://h/A?b=C#frag", b"", "GET http://h/A?b=C", id="no-fragment"),
        pytest.param("GET", "http://[::1]:8080/x", b"", "GET http://[::1]:8080/x", id="ipv6"),
    ],
)
def test_request_key(method: str, url: str, body: bytes, key: str) -> None:
    assert request_key(method, url, body) == key


def test_request_key_tells_request_bodies_apart() -> None:
    assert request_key("POST", "http://h/q", b"a") != request_key("POST", "http://h/q", b"b")
    assert request_key("POST", "http://h/q", b"a").endswith(hashlib.sha256(b"a").hexdigest())


def test_objects_are_content_addressed_and_stored_once(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    sha, size = store.put_object(b"body")
    assert (sha, size) == (hashlib.sha256(b"body").hexdigest(), 4)
    assert store.put_object(b"body") == (sha, size)
    assert store.object_path(sha) == tmp_path / "objects" / sha[:2] / sha
    assert store.read_object(sha) == b"body"
    assert store.object_path(sha).stat().st_mode & 0o777 == 0o644
    assert [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()] == [sha]


def test_an_aborted_body_leaves_nothing(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    with store.object_writer() as writer:
        writer.write(b"partial")
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


def test_recorded_entries_survive_a_reopen_through_the_journal(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    sha, size = store.put_object(b"hello")
    store.record_response("GET http://h/a", _response("http://h/a", sha, size))
    store.record_pipe("step/1", b"pipe output")
    assert not (tmp_path / "index.json").exists()  # not compacted yet: a kill keeps it all
    again = CacheStore.open(tmp_path)
    assert again.lookup("GET http://h/a") == _response("http://h/a", sha, size)
    pipe = again.pipe_output("step/1")
    assert pipe is not None
    assert pipe.read_bytes() == b"pipe output"
    assert again.pipe_output("step/2") is None


def test_compact_writes_the_index_and_empties_the_journal(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    sha, size = store.put_object(b"hello")
    store.record_response("GET http://h/a", _response("http://h/a", sha, size))
    store.compact()
    assert (tmp_path / "journal.jsonl").read_bytes() == b""
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["format"] == 1
    assert index["http"]["GET http://h/a"]["body_sha256"] == sha
    assert CacheStore.open(tmp_path).responses() == store.responses()
    assert store.missing_objects() == []


def test_a_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    sha, size = store.put_object(b"x")
    store.record_response("GET http://h/a", _response("http://h/a", sha, size))
    with open(tmp_path / "journal.jsonl", "ab") as journal:
        journal.write(b'{"http": "GET http://h/b", "entr')
    assert set(CacheStore.open(tmp_path).responses()) == {"GET http://h/a"}


def test_a_corrupt_index_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"index\.json: not a cache index"):
        CacheStore.open(tmp_path)


def test_missing_objects_are_reported(tmp_path: Path) -> None:
    store = CacheStore.open(tmp_path)
    sha, size = store.put_object(b"gone")
    store.record_response("GET http://h/a", _response("http://h/a", sha, size))
    store.object_path(sha).unlink()
    assert store.missing_objects() == [sha]


def _record_many(root: str, prefix: str) -> None:
    store = CacheStore.open(Path(root))
    for number in range(50):
        if prefix == "pipe":
            store.record_pipe(f"pipe/{number}", f"{number}".encode())
        else:
            sha, size = store.put_object(f"{number}".encode())
            url = f"http://h/{number}"
            store.record_response(f"GET {url}", _response(url, sha, size))
        if number == 25:
            store.compact()


def test_two_processes_record_into_one_store(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_record_many, args=(str(tmp_path), prefix))
        for prefix in ("http", "pipe")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(30)
        assert writer.exitcode == 0
    store = CacheStore.open(tmp_path)
    assert len(store.responses()) == 50
    assert len(store.pipes()) == 50
    store.compact()
    assert len(CacheStore.open(tmp_path).pipes()) == 50
    assert store.missing_objects() == []


def test_stats_round_trip_through_json() -> None:
    stats = CacheStats(
        mode="replay",
        requests=3,
        hits=1,
        not_recorded=((500, "http://h/e"),),
        misses=("http://h/m",),
        tls_not_cached=("h:443",),
        errors=("http://h/x: refused",),
    )
    assert CacheStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats
