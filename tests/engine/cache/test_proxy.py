"""The cache proxy, for real: a mitmproxy child process between urllib-level clients
and HTTP(S) origins on 127.0.0.1.

One proxy records everything the module needs (``recording``), the origins are then
stopped, and one proxy replays it (``replay``): a proxy start costs most of a second.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kameleon_nb.engine.cache.proxy import CacheProxy, ParentProxy
from kameleon_nb.engine.cache.store import CacheMode, CacheStats, CacheStore, request_key

from .conftest import (
    LOOPBACK,
    Answer,
    Certificates,
    Origin,
    fetch,
    start_origin,
    start_parent_proxy,
)

pytestmark = pytest.mark.slow

BLOB = os.urandom(300_000)
SAME = b"the same body under two URLs\n" * 100


@dataclass
class Recording:
    store_dir: Path
    ca_certificate: Path
    stats: CacheStats
    answers: dict[str, Answer]
    plain: Origin
    secure: Origin
    pinned: Origin
    pinned_error: BaseException | None
    stop_seconds: float


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Recording:
    store_dir = tmp_path_factory.mktemp("cache") / "store"
    plain = start_origin(
        {
            "/blob": BLOB,
            "/a/same": SAME,
            "/b/same": SAME,
            "/text.txt": b"text\n",
            "/head-only": b"12345678",
        }
    )
    secure = start_origin({"/secure.bin": b"secret bytes\n" * 50}, certificates)
    pinned = start_origin({"/pinned.txt": b"pinned\n"}, certificates)
    answers: dict[str, Answer] = {}
    pinned_error: BaseException | None = None
    proxy = CacheProxy(store_dir, CacheMode.RECORD, upstream_ca=certificates.ca).start()
    try:
        address, ca = proxy.address, proxy.ca_certificate
        answers["blob"] = fetch(address, plain.url("/blob"))
        answers["blob again"] = fetch(address, plain.url("/blob"))
        answers["a/same"] = fetch(address, plain.url("/a/same"))
        answers["b/same"] = fetch(address, plain.url("/b/same"))
        answers["text"] = fetch(
            address,
            plain.url("/text.txt"),
            headers={"Range": "bytes=0-1", "If-None-Match": '"x"', "Accept-Encoding": "gzip"},
        )
        answers["500"] = fetch(address, plain.url("/status/500"))
        answers["404"] = fetch(address, plain.url("/missing"))
        answers["head"] = fetch(address, plain.url("/head-only"), method="HEAD")
        answers["secure"] = fetch(address, secure.url("/secure.bin"), cafile=ca)
        answers["secure again"] = fetch(address, secure.url("/secure.bin"), cafile=ca)
        # a client that trusts the origin's CA, not the cache's: refused, then tunnelled
        try:
            fetch(address, pinned.url("/pinned.txt"), cafile=certificates.ca)
        except ssl.SSLError as err:
            pinned_error = err
        for _ in range(3):  # the proxy handles the failed handshake asynchronously
            try:
                answers["pinned retry"] = fetch(
                    address, pinned.url("/pinned.txt"), cafile=certificates.ca
                )
                break
            except ssl.SSLError:
                time.sleep(0.2)
    finally:
        started = time.monotonic()
        stats = proxy.stop()
        stop_seconds = time.monotonic() - started
        for origin in (plain, secure, pinned):
            origin.stop()
    return Recording(
        store_dir, ca, stats, answers, plain, secure, pinned, pinned_error, stop_seconds
    )


@pytest.fixture(scope="module")
def replay(recording: Recording) -> Iterator[CacheProxy]:
    with CacheProxy(recording.store_dir, CacheMode.REPLAY) as proxy:
        yield proxy


# ------------------------------------------------------------------- recording


def test_recording_answers_are_the_origin_s(recording: Recording) -> None:
    assert recording.answers["blob"].status == 200
    assert recording.answers["blob"].body == BLOB
    assert recording.answers["404"].status == 404


def test_second_request_is_a_hit_that_leaves_the_origin_alone(recording: Recording) -> None:
    again = recording.answers["blob again"]
    assert again.body == BLOB
    assert again.headers["x-kameleon-cache"] == "hit"
    assert [path for _, path, _ in recording.plain.requests].count("/blob") == 1
    assert recording.stats.hits == 2  # /blob and /secure.bin, each the second time
    assert recording.stats.mode == "record"


def test_stats_count_what_was_recorded(recording: Recording) -> None:
    stats = recording.stats
    # blob, a/same, b/same, text, 404, HEAD head-only and secure.bin
    # (not the 500, not the tunnelled one)
    assert stats.recorded == 7
    assert stats.requests == 10  # the tunnelled request is not seen
    assert stats.bytes_recorded == len(BLOB) + 2 * len(SAME) + len(b"text\n") + len(
        b"no such file\n"
    ) + len(b"secret bytes\n" * 50)
    assert stats.misses == ()
    assert stats.errors == ()


def test_server_errors_are_passed_on_but_not_recorded(recording: Recording) -> None:
    assert recording.answers["500"].status == 500
    assert recording.stats.not_recorded == ((500, recording.plain.url("/status/500")),)
    store = CacheStore.open(recording.store_dir)
    assert store.lookup(request_key("GET", recording.plain.url("/status/500"))) is None


def test_client_dependent_headers_do_not_reach_the_origin(recording: Recording) -> None:
    (headers,) = [h for _, path, h in recording.plain.requests if path == "/text.txt"]
    names = {name.lower(): value for name, value in headers.items()}
    assert "range" not in names
    assert "if-none-match" not in names
    assert names["accept-encoding"] == "identity"
    # the client asked for a range and got the whole body, which HTTP allows
    assert recording.answers["text"].status == 200
    assert recording.answers["text"].body == b"text\n"


def test_the_same_body_under_two_urls_is_stored_once(recording: Recording) -> None:
    store = CacheStore.open(recording.store_dir)
    entries = [
        store.lookup(request_key("GET", recording.plain.url(p))) for p in ("/a/same", "/b/same")
    ]
    assert entries[0] is not None
    assert entries[1] is not None
    assert entries[0].body_sha256 == entries[1].body_sha256
    objects = [p for p in (store.root / "objects").rglob("*") if p.is_file()]
    assert len(objects) == len({e.body_sha256 for e in store.responses().values()})
    assert not [p for p in objects if p.name.startswith(".incoming")]


def test_https_is_recorded_when_the_client_trusts_the_cache_ca(recording: Recording) -> None:
    assert recording.answers["secure"].body == b"secret bytes\n" * 50
    assert recording.answers["secure again"].headers["x-kameleon-cache"] == "hit"
    assert recording.ca_certificate.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    store = CacheStore.open(recording.store_dir)
    assert store.lookup(request_key("GET", recording.secure.url("/secure.bin"))) is not None


def test_https_of_a_client_that_does_not_trust_the_ca_is_listed_not_cached(
    recording: Recording,
) -> None:
    assert isinstance(recording.pinned_error, ssl.SSLCertVerificationError)
    assert recording.stats.tls_not_cached == (f"{LOOPBACK}:{recording.pinned.port}",)
    # the retry was tunnelled to the origin untouched: it worked, and nothing was stored
    assert recording.answers["pinned retry"].body == b"pinned\n"
    store = CacheStore.open(recording.store_dir)
    assert store.lookup(request_key("GET", recording.pinned.url("/pinned.txt"))) is None


def test_stop_is_prompt_and_leaves_a_compact_index(recording: Recording) -> None:
    assert recording.stop_seconds < 5
    assert (recording.store_dir / "index.json").is_file()
    assert (recording.store_dir / "journal.jsonl").read_bytes() == b""


# ---------------------------------------------------------------------- replay


def test_replay_gives_the_same_bytes_with_the_origins_stopped(
    recording: Recording, replay: CacheProxy
) -> None:
    address = replay.address
    assert fetch(address, recording.plain.url("/blob")).body == BLOB
    assert fetch(address, recording.plain.url("/b/same")).body == SAME
    missing = fetch(address, recording.plain.url("/missing"))
    assert (missing.status, missing.body) == (404, b"no such file\n")
    secure = fetch(address, recording.secure.url("/secure.bin"), cafile=replay.ca_certificate)
    assert secure.body == b"secret bytes\n" * 50


def test_replay_keeps_the_ca_of_the_cache(recording: Recording, replay: CacheProxy) -> None:
    assert replay.ca_certificate.read_bytes() == recording.ca_certificate.read_bytes()


def test_replay_serves_a_byte_range(recording: Recording, replay: CacheProxy) -> None:
    answer = fetch(replay.address, recording.plain.url("/blob"), headers={"Range": "bytes=10-19"})
    assert answer.status == 206
    assert answer.body == BLOB[10:20]
    assert answer.headers["content-range"] == f"bytes 10-19/{len(BLOB)}"
    tail = fetch(replay.address, recording.plain.url("/blob"), headers={"Range": "bytes=-5"})
    assert tail.body == BLOB[-5:]


def test_replay_answers_head_from_a_recorded_get(recording: Recording, replay: CacheProxy) -> None:
    answer = fetch(replay.address, recording.plain.url("/blob"), method="HEAD")
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers["content-length"] == str(len(BLOB))
    recorded_head = fetch(replay.address, recording.plain.url("/head-only"), method="HEAD")
    assert recorded_head.headers["content-length"] == "8"


def test_a_replay_miss_names_the_url_and_is_listed(recording: Recording) -> None:
    url = recording.plain.url("/never-recorded?x=1")
    with CacheProxy(recording.store_dir, CacheMode.REPLAY) as proxy:
        answer = fetch(proxy.address, url)
    assert answer.status == 504
    assert answer.reason == "Not in cache archive"
    assert answer.headers["x-kameleon-cache-miss"] == url
    assert url.encode() in answer.body
    assert b"not in the cache archive" in answer.body
    assert proxy.stats is not None
    assert proxy.stats.misses == (url,)
    assert proxy.stats.mode == "replay"
    assert not proxy.running()


# --------------------------------------------------------------- parent proxy


@pytest.fixture
def parent_proxy() -> Iterator[object]:
    parent = start_parent_proxy("builder:s3cret")
    yield parent
    parent.stop()


def test_recording_through_a_parent_proxy_with_credentials(
    tmp_path: Path, certificates: Certificates, parent_proxy: object
) -> None:
    from .conftest import ParentProxyServer

    assert isinstance(parent_proxy, ParentProxyServer)
    plain = start_origin({"/via-parent": b"via parent\n"})
    secure = start_origin({"/tls-via-parent": b"tls via parent\n"}, certificates)
    try:
        parent = ParentProxy(parent_proxy.address, "builder:s3cret")
        with CacheProxy(
            tmp_path / "store", CacheMode.RECORD, parent=parent, upstream_ca=certificates.ca
        ) as proxy:
            assert fetch(proxy.address, plain.url("/via-parent")).body == b"via parent\n"
            answer = fetch(
                proxy.address, secure.url("/tls-via-parent"), cafile=proxy.ca_certificate
            )
            assert answer.body == b"tls via parent\n"
            # the credentials are not on the proxy's command line
            assert all("s3cret" not in arg for arg in _cmdlines())
    finally:
        plain.stop()
        secure.stop()
    assert proxy.stats is not None
    assert proxy.stats.recorded == 2
    methods = {(method, authorised) for method, _, authorised in parent_proxy.seen}
    assert methods == {("GET", True), ("CONNECT", True)}


def test_wrong_parent_credentials_give_407_and_record_nothing(
    tmp_path: Path, parent_proxy: object
) -> None:
    from .conftest import ParentProxyServer

    assert isinstance(parent_proxy, ParentProxyServer)
    plain = start_origin({"/x": b"x\n"})
    try:
        parent = ParentProxy(parent_proxy.address, "builder:wrong")
        with CacheProxy(tmp_path / "store", CacheMode.RECORD, parent=parent) as proxy:
            assert fetch(proxy.address, plain.url("/x")).status == 407
    finally:
        plain.stop()
    assert proxy.stats is not None
    assert proxy.stats.recorded == 0
    assert proxy.stats.not_recorded == ((407, plain.url("/x")),)
    assert plain.requests == []


def _cmdlines() -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    found.append(f.read().decode(errors="replace"))
            except OSError:
                pass
    return found


def test_a_launcher_prefix_runs_the_proxy_and_stop_still_gets_the_stats(tmp_path: Path) -> None:
    plain = start_origin({"/launched": b"launched\n"})
    try:
        # timeout(1) stays between the supervisor and the proxy, as a namespace launcher may
        with CacheProxy(tmp_path / "store", CacheMode.RECORD, launcher=("timeout", "600")) as proxy:
            assert fetch(proxy.address, plain.url("/launched")).body == b"launched\n"
    finally:
        plain.stop()
    assert proxy.stats is not None
    assert proxy.stats.recorded == 1
    assert not proxy.running()
    assert not list((tmp_path / "store").glob(".proxy-run-*"))
