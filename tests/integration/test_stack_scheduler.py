"""Emulator mode's stand-in for Cloud Scheduler: it POSTs the sweep on its schedule."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.stack import Scheduler

pytestmark = pytest.mark.integration


def test_the_sweep_is_posted_on_schedule_and_goes_on_after_a_failure() -> None:
    paths: list[str] = []

    class Tasks(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            # The first sweep fails (an outage): the schedule carries on all the same.
            self.send_response(503 if len(paths) == 1 else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tasks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheduler = Scheduler(f"http://127.0.0.1:{server.server_address[1]}/sweep", 0.1)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(paths) < 3:
            assert time.monotonic() < deadline, paths
            time.sleep(0.05)
    finally:
        scheduler.stop()
        server.shutdown()
    assert set(paths) == {"/sweep"}
