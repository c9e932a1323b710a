"""The API process's web server: prompt answers on kept-alive connections, clean stops."""

from __future__ import annotations

import http.client
import time

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
