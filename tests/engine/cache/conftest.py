"""Real servers on 127.0.0.1 for the cache tests: origins (HTTP, HTTPS), a parent proxy.

Everything listens on 127.0.0.1 with an ephemeral port, in threads of the test
process, and is shut down by its fixture. The clients speak through
:mod:`http.client` directly, so no ``*_proxy``/``no_proxy`` variable of the
environment can change where a request goes.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import ipaddress
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Certificates:
    """A test CA and a server certificate it signed for 127.0.0.1."""

    ca: Path
    server_cert: Path
    server_key: Path


def make_certificates(directory: Path) -> Certificates:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kameleon_nb test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    # the build tests serve on 127.0.0.2, which no_proxy does not exempt
                    x509.IPAddress(ipaddress.ip_address("127.0.0.2")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


# ----------------------------------------------------------------------- origins


@dataclass
class Origin:
    """A real HTTP(S) server: ``files`` maps a path to its body; it logs the requests."""

    files: dict[str, bytes]
    scheme: str = "http"
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    port: int = 0

    def url(self, path: str) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}{path}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            assert self.thread is not None
            self.thread.join(5)
            self.server = None


def start_origin(files: dict[str, bytes], certificates: Certificates | None = None) -> Origin:
    origin = Origin(files, scheme="https" if certificates else "http")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, send_body: bool) -> None:
            origin.requests.append((self.command, self.path, dict(self.headers.items())))
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/status/"):
                body = b"status page\n"
                self.send_response(int(path.rsplit("/", 1)[1]))
            elif path in origin.files:
                body = origin.files[path]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
            else:
                body = b"no such file\n"
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    if certificates is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates.server_cert, certificates.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    origin.server = server
    origin.port = int(server.server_address[1])
    origin.thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    origin.thread.start()
    return origin


# ------------------------------------------------------------------------ client


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def fetch(
    proxy: tuple[str, int],
    url: str,
    *,
    method: str = "GET",
    cafile: Path | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> Answer:
    """One request through the proxy; HTTPS goes through a CONNECT tunnel."""
    parts = urllib.parse.urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        connection = http.client.HTTPSConnection(*proxy, timeout=timeout, context=context)
        connection.set_tunnel(parts.hostname or "", parts.port or 443)
        target = parts.path or "/"
    else:
        connection = http.client.HTTPConnection(*proxy, timeout=timeout)
        target = url
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Answer(
            response.status,
            response.reason,
            {k.lower(): v for k, v in response.getheaders()},
            body,
        )
    finally:
        connection.close()


# ------------------------------------------------------------------ parent proxy


@dataclass
class ParentProxyServer:
    """A tiny forward proxy that wants Basic credentials (GET and CONNECT)."""

    credentials: str
    seen: list[tuple[str, str, bool]] = field(default_factory=list)  # method, target, authorised
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"{LOOPBACK}:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def start_parent_proxy(credentials: str) -> ParentProxyServer:
    parent = ParentProxyServer(credentials)
    expected = "Basic " + base64.b64encode(credentials.encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _authorised(self) -> bool:
            ok = self.headers.get("Proxy-Authorization") == expected
            parent.seen.append((self.command, self.path, ok))
            if not ok:
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            return ok

        def do_GET(self) -> None:
            if not self._authorised():
                return
            parts = urllib.parse.urlsplit(self.path)
            upstream = http.client.HTTPConnection(
                parts.hostname or "", parts.port or 80, timeout=10
            )
            try:
                upstream.request("GET", parts.path or "/")
                response = upstream.getresponse()
                body = response.read()
            finally:
                upstream.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_CONNECT(self) -> None:
            if not self._authorised():
                return
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.send_response(200, "Connection established")
            self.end_headers()
            client = self.connection
            try:
                while True:
                    readable, _, _ = select.select([client, upstream], [], [], 10)
                    if not readable:
                        break
                    done = False
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            done = True
                            break
                        (upstream if sock is client else client).sendall(data)
                    if done:
                        break
            finally:
                upstream.close()
                self.close_connection = True

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    parent.server = server
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return parent


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = start_origin({"/hello.txt": b"hello\n"})
    yield server
    server.stop()
