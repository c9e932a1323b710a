"""One `deepflix serve` per data directory and per port, checked before anything starts."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = "serve.lock"


class CannotStart(Exception):
    """Why the service cannot start, in one line for the person who started it."""


def lock_data_dir(data_dir: Path) -> int:
    """Hold the data directory for this process's life (the returned descriptor stays open).

    A second service on one directory would take the first one's running work for
    interrupted and start it again beside it. The lock is the kernel's, so it ends with
    the process however that ends: a crash leaves nothing to clean up.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CannotStart(
            f"another deepflix serve (pid {holder}) is using the data directory {data_dir}"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def check_port(host: str, port: int) -> None:
    """Fail now, in one line, if the API could not listen on `host`:`port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as sock:
        # As the API process will bind: a port only lingering after a stop is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise CannotStart(
                f"cannot listen on {host} port {port}: {e.strerror}"
                " (is another service using it? set PORT or DEEPFLIX_PORT)"
            ) from None
