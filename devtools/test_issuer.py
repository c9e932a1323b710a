"""A local stand-in for Google's ID-token issuer: an RSA key, its certificate served at a local
URL, and tokens minted with it, for emulator runs and tests only."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from deepflix.adapters.gcp.oidc import TestTokens

HOST = "127.0.0.1"
EMULATOR_HOSTS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "DEEPFLIX_TASKS_EMULATOR_HOST")


def _key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deepflix-test-issuer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class TestIssuer:
    """Serves `{kid: certificate}` as Google's v1/certs does, and mints tokens it signs.

    Minting needs the environment it mints for to name an emulator host: these tokens are
    for emulator runs, never a deployment (which refuses a custom certificates URL anyway).
    """

    __test__ = False  # not a test class, whatever its name

    private_key: str
    certificate: str
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    server: ThreadingHTTPServer | None = None

    @classmethod
    def create(cls) -> TestIssuer:
        return cls(*_key_and_cert())

    @property
    def certs_url(self) -> str:
        assert self.server is not None, "start() serves the certificates"
        return f"http://{HOST}:{self.server.server_address[1]}/certs"

    def start(self) -> TestIssuer:
        body = json.dumps({self.kid: self.certificate}).encode()

        class Certs(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Certs)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def tokens(self, email: str, env: Mapping[str, str]) -> TestTokens:
        if not any(env.get(name) for name in EMULATOR_HOSTS):
            raise RuntimeError("test ID tokens are minted only for an emulator run")
        return TestTokens(private_key_pem=self.private_key, key_id=self.kid, email=email)

    def write_key(self, path: Path, email: str) -> Path:
        """The key file DEEPFLIX_TEST_TOKEN_KEY_FILE names (the functions mint with it)."""
        key = {"kid": self.kid, "private_key": self.private_key, "email": email}
        path.write_text(json.dumps(key))
        path.chmod(0o600)
        return path


class PushProxy:
    """Pub/Sub push as the cloud sends it: the emulator pushes here, and this forwards the
    request to `target` with an ID token for it (the emulator attaches none)."""

    def __init__(self, target: str, tokens: TestTokens) -> None:
        outer = self

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.forward(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.target, self.tokens = target, tokens
        self.server = ThreadingHTTPServer((HOST, 0), Forward)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/"

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        headers["Authorization"] = f"Bearer {self.tokens(self.target)}"
        req = urllib.request.Request(self.target, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                status, answer = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        except OSError:
            status, answer = 502, b""
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def issuer() -> Iterator[TestIssuer]:
    running = TestIssuer.create().start()
    try:
        yield running
    finally:
        running.stop()
