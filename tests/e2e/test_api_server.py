"""The API process's web server: prompt answers on kept-alive connections, clean stops."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_answers_on_a_kept_alive_connection_do_not_wait(shared_service: Service) -> None:
    # With Nagle's algorithm on, each answer written in two parts waits for the client's
    # delayed acknowledgement, tens of milliseconds every time.
    conn = http.client.HTTPConnection("127.0.0.1", shared_service.port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        started = time.monotonic()
        for _ in range(20):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and response.read()
        assert time.monotonic() - started < 0.4
    finally:
        conn.close()


def test_sigterm_stops_the_service_cleanly_every_time(
    make_service: Callable[..., Service],
) -> None:
    # A web server whose native threads outlive the interpreter's exit aborts it with a
    # panic now and then: one stop would rarely show it, six in a row mostly would.
    for _ in range(6):
        svc = make_service(generators="instant")
        assert svc.proc is not None
        svc.create("a lighthouse in fog")
        busy = threading.Thread(target=_read_for, args=(svc, 0.5))
        busy.start()
        time.sleep(0.2)
        os.kill(svc.proc.pid, signal.SIGTERM)
        assert svc.proc.wait(timeout=60) == 0
        busy.join()
        log = (svc.data_dir.parent / f"service-{svc.port}.log").read_text()
        for sign in ("panic", "Traceback", "exited with status"):
            assert sign not in log, log[-2000:]


def _read_for(svc: Service, seconds: float) -> None:
    """Reads, with the service stopping under them: refused or reset is fine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            svc.request("GET", "/api/queues")
