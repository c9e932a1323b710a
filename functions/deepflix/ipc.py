"""Child processes linked to their parent by one multiprocessing Connection over a socket pair."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection


def spawn(
    module: str, *, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start `python -m <module> <fd>`, <fd> being its end of a socket pair; ours is returned.

    A fresh interpreter: never a fork of this threaded process, and never a re-run of its
    main module as multiprocessing's spawn does. Messages are whole byte strings each way
    (Connection.send_bytes / recv_bytes); either end closing is the other's EOFError.
    """
    ours, theirs = socket.socketpair()
    try:
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", module, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=env,
            )
    except BaseException:
        ours.close()
        raise
    return process, Connection(ours.detach())


def parent(argv: Sequence[str]) -> Connection:
    """A spawned child's end of the pair, from the file descriptor `spawn` passed it."""
    return Connection(int(argv[0]))
