"""A raw HTTP/1.1 client: sends exactly the bytes given, so malformed requests reach the server."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int | None  # None: no answer (the connection failed, or the wait timed out)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def build(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None
) -> bytes:
    """A request with Host and Connection: close, and a Content-Length unless one is given."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers)
    lines += [k + b": " + v for k, v in headers]
    if body is not None and not framed:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def send(port: int, raw: bytes, timeout_s: float = 10) -> Answer:
    """Send `raw` and read until the server closes; a reset after an answer keeps the answer."""
    chunks: list[bytes] = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(raw)
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except TimeoutError:
        return Answer(None, error="timeout")
    except OSError as e:
        if not chunks:
            return Answer(None, error=repr(e))
    return parse(b"".join(chunks))


def parse(data: bytes) -> Answer:
    """The final answer in `data`: interim 1xx answers are skipped, chunked bodies joined."""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return Answer(None, error="incomplete answer")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return Answer(None, error=f"not HTTP: {status_line[:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:
            data = rest
            continue
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            rest = _unchunk(rest)
        elif "content-length" in headers:
            rest = rest[: int(headers["content-length"])]
        return Answer(status, headers, rest)


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)
