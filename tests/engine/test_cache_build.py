"""``kameleon build -C`` records a build's downloads; ``--from-cache`` rebuilds offline.

Real servers on a loopback address that upstream's ``no_proxy`` does not exempt
(127.0.0.2), real curl and wget in the out and in contexts, a pipe reading a host
file, the real cache proxy. The origin is stopped before the replay; as root the
replay runs in a network namespace with nothing but loopback.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .buildcheck import assert_nothing_left, cli

pytestmark = [
    pytest.mark.shell,
    pytest.mark.skipif(
        not all(shutil.which(p) for p in ("curl", "wget")), reason="needs curl and wget"
    ),
]

RECIPE = """\
global:
  server: http://127.0.0.2:8000
  extra: ""
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}
  in_context:
    cmd: bash
    workdir: $${kameleon_cwd}/rootfs

bootstrap:
  - fetch_out:
    - tree:
      - exec_out: rm -rf rootfs && mkdir -p rootfs
      - exec_out: ip -o link show > links.txt
    - with_curl:
      - exec_out: curl -fsS "$${server}/a.txt" -o rootfs/a.txt
    - with_wget:
      - exec_out: wget -q "$${server}/big.bin" -O rootfs/big.bin

setup:
  - fetch_in:
    - with_curl:
      - exec_in: curl -fsS "$${server}/c.txt" -o c.txt
    - with_wget:
      - exec_in: wget -q "$${server}/a.txt" -O a-again.txt
    - from_host:
      - pipe:
        - exec_local: cat "$${kameleon_recipe_dir}/host.txt"
        - exec_in: cat > host.txt
    - more:
      - exec_in: test -z "$${extra}" || curl -fsS "$${server}/$${extra}" -o extra

export: []
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, http.server.ThreadingHTTPServer]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.txt").write_text("alpha\n")
    (site / "c.txt").write_text("gamma\n")
    (site / "big.bin").write_bytes(os.urandom(3 << 20))
    (site / "later.txt").write_text("not recorded\n")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.2", 0), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "kameleon_scripts" not in p.parts
    }


def _workspace(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "fetch.yaml").write_text(RECIPE)
    (work / "host.txt").write_text("from the host\n")
    return work


def _record(tmp_path: Path, url: str) -> tuple[Path, Path, str]:
    """A workspace, its recipe built once with -C: (workspace, build path, output)."""
    work = _workspace(tmp_path)
    build = work / "build"
    rc, out = cli("build", str(work / "fetch.yaml"), "-b", str(build), "-C", "-g", f"server:{url}")
    assert rc == 0, out
    return work, build, out


def test_record_then_replay_offline(
    tmp_path: Path, origin: tuple[str, http.server.ThreadingHTTPServer]
) -> None:
    url, server = origin
    work, build, out = _record(tmp_path, url)
    assert "Cache: 4 request(s)" in out, out
    assert "1 pipe output(s) recorded" in out, out
    archive = build / "fetch" / "fetch-cache.tar.gz"
    assert archive.is_file(), out
    recorded = _tree(build / "fetch" / "rootfs")
    assert set(recorded) == {"a.txt", "big.bin", "c.txt", "a-again.txt", "host.txt"}
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"recipe/fetch.yaml", "metadata/header"} <= names
    assert not any(n.startswith(("store/ca", "ca/")) for n in names)  # no CA private key
    rc, out = cli("info", "--from-cache", str(archive))
    assert rc == 0, out
    assert out.startswith("Using the cached recipe\n")
    assert "[Name]\n -> fetch\n" in out, out

    # the origin goes away; the host file changes: the archive alone rebuilds
    server.shutdown()
    (work / "host.txt").write_text("changed on the host\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / archive.name
    shutil.copy(archive, copy)
    rc, out = cli("build", "--from-cache", str(copy), "-b", str(elsewhere / "build"))
    assert rc == 0, out
    assert "Using the cached recipe" in out
    replayed = next((elsewhere / "build").glob("*/build/fetch/rootfs"), None) or next(
        (elsewhere / "build").rglob("fetch/rootfs")
    )
    assert _tree(replayed) == recorded
    assert (replayed / "host.txt").read_text() == "from the host\n"
    if os.geteuid() == 0:  # offline for certain: the build saw no interface but lo
        links = (replayed.parent / "links.txt").read_text().splitlines()
        assert [line.split(":")[1].strip() for line in links] == ["lo"]
    assert_nothing_left(tmp_path)


def test_a_request_missing_from_the_archive_fails_naming_the_url(
    tmp_path: Path, origin: tuple[str, http.server.ThreadingHTTPServer]
) -> None:
    url, server = origin
    work, build, _ = _record(tmp_path, url)
    server.shutdown()
    archive = build / "fetch" / "fetch-cache.tar.gz"
    rc, out = cli(
        "build",
        str(work / "fetch.yaml"),
        "--from-cache",
        str(archive),
        "-b",
        str(tmp_path / "replay"),
        "-g",
        f"server:{url}",
        "extra:later.txt",
    )
    assert rc == 10, out
    assert (
        f"Error: The cache {archive} does not hold 1 request(s) the build made: {url}/later.txt"
        in out
    )
    assert "Traceback" not in out


def test_a_notebook_session_records_with_the_cache_then_goes_on_without(
    tmp_path: Path, origin: tuple[str, http.server.ThreadingHTTPServer]
) -> None:
    from kameleon_nb.core.cache_options import CacheMode, CacheOptions
    from kameleon_nb.core.contexts import ContextName
    from kameleon_nb.core.plan import BuildOptions
    from kameleon_nb.engine.session import Session

    url, _server = origin
    work = _workspace(tmp_path)
    session = Session.open(str(work / "fetch.yaml"), cwd=str(work), cli_globals={"server": url})
    try:
        result = session.build(BuildOptions(), CacheOptions(mode=CacheMode.RECORD, pack=True))
        assert result.cache[0].startswith("Cache: 4 request(s)"), result.cache
        assert result.cache[-1].endswith("fetch-cache.tar.gz")
        assert Path(result.cache[-1].split(": ", 1)[1]).is_file()
        # later cells: no proxy any more, the variables kept
        out = session.builder.contexts.shell(ContextName.OUT).run('echo "[${http_proxy:-none}]"')
        assert "[none]" in out.tail
    finally:
        session.end()


HTTPS_RECIPE = """\
global:
  server: https://127.0.0.2:8443
  distrust: ""
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}
bootstrap:
  - fetch:
    - tree:
      - exec_out: rm -rf rootfs && mkdir -p rootfs
    - trusted:
      - exec_out: curl -fsS "$${server}/a.txt" -o rootfs/secure.txt
    - untrusted:
      # a client with its own trust store does not trust the cache's CA
      - exec_out: test -z "$${distrust}" || curl -s --cacert "$${distrust}" "$${server}/c.txt" || true
export: []
"""


@pytest.fixture
def https_origin(tmp_path: Path) -> Iterator[tuple[str, Path, http.server.ThreadingHTTPServer]]:
    import ssl

    from .cache.conftest import make_certificates

    certificates = make_certificates(tmp_path / "pki")
    site = tmp_path / "secure-site"
    site.mkdir()
    (site / "a.txt").write_text("over TLS\n")
    (site / "c.txt").write_text("also over TLS\n")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.2", 0), functools.partial(_Quiet, directory=str(site))
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.2:{server.server_address[1]}", certificates.ca, server
    finally:
        server.shutdown()
        server.server_close()


def test_https_is_cached_through_the_caches_ca_or_named_as_not_cached(
    tmp_path: Path, https_origin: tuple[str, Path, http.server.ThreadingHTTPServer]
) -> None:
    url, test_ca, server = https_origin
    work = tmp_path / "work"
    work.mkdir()
    (work / "tls.yaml").write_text(HTTPS_RECIPE)
    env = {**os.environ, "SSL_CERT_FILE": str(test_ca)}  # the proxy trusts the origin's CA
    host = url.removeprefix("https://")

    # a client that does not trust the cache's CA: named in the summary, then refused
    rc, out = cli(
        "build", str(work / "tls.yaml"), "-b", str(work / "b1"), "-C",
        "-g", f"server:{url}", f"distrust:{test_ca}", env=env,
    )  # fmt: skip
    assert rc == 0, out
    assert f"HTTPS not cached (the client did not trust the cache's CA): {host}" in out
    rc, out = cli(
        "build", "--from-cache", str(work / "b1/tls/tls-cache.tar.gz"), "-b", str(work / "r1")
    )
    assert rc != 0
    assert f"lacks the HTTPS traffic to {host}" in out

    # every client trusts it: recorded, then replayed offline with the origin gone
    rc, out = cli(
        "build", str(work / "tls.yaml"), "-b", str(work / "b2"), "-C", "-g", f"server:{url}",
        env=env,
    )  # fmt: skip
    assert rc == 0, out
    assert "HTTPS not cached" not in out
    server.shutdown()
    rc, out = cli(
        "build", "--from-cache", str(work / "b2/tls/tls-cache.tar.gz"), "-b", str(work / "r2")
    )
    assert rc == 0, out
    replayed = next((work / "r2").rglob("tls/rootfs/secure.txt"))
    assert replayed.read_text() == "over TLS\n"


@pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync")
def test_the_cache_persists_across_checkpointed_rebuilds(
    tmp_path: Path, origin: tuple[str, http.server.ThreadingHTTPServer]
) -> None:
    url, server = origin
    work = _workspace(tmp_path)
    text = (work / "fetch.yaml").read_text()
    text = "checkpoint: rsync.yaml\n" + text.replace(
        "global:\n", "global:\n  rootfs: $${kameleon_cwd}/rootfs\n", 1
    )
    (work / "fetch.yaml").write_text(text)
    build = work / "build"
    base = ("build", str(work / "fetch.yaml"), "-b", str(build), "-g", f"server:{url}")
    rc, out = cli(*base, "-C", "-c")
    assert rc == 0, out
    recorded = _tree(build / "fetch" / "rootfs")
    # a rebuild from the last checkpoint downloads nothing, yet its archive has it all
    rc, out = cli(*base, "-C", "-F", "last")
    assert rc == 0, out
    assert "Cache: 0 request(s)" in out, out
    server.shutdown()
    rc, out = cli(
        "build", "--from-cache", str(build / "fetch/fetch-cache.tar.gz"), "-b", str(tmp_path / "r")
    )
    assert rc == 0, out
    assert _tree(next((tmp_path / "r").rglob("fetch/rootfs"))) == recorded


def test_proxy_offline_answers_from_the_cache_directory_only(
    tmp_path: Path, origin: tuple[str, http.server.ThreadingHTTPServer]
) -> None:
    url, server = origin
    work = _workspace(tmp_path)
    base = ("build", str(work / "fetch.yaml"), "-b", str(work / "build"), "-g", f"server:{url}")
    rc, out = cli(*base, "-C")
    assert rc == 0, out
    server.shutdown()
    rc, out = cli(*base, "-C", "--proxy-offline")
    assert rc == 0, out
    assert "--proxy-offline: the cache answers from what it recorded only" in out
    assert "4 answered from the cache" in out
    rc, out = cli(*base, "extra:later.txt", "-C", "--proxy-offline")
    assert rc == 10, out
    assert f"{url}/later.txt" in out
