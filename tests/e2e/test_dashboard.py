"""The dashboard page comes from the API's handler, its stylesheet and scripts inline."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_dashboard_page_is_served_whole(shared_service: Service) -> None:
    code, body = shared_service.request("GET", "/")
    assert code == 200 and isinstance(body, bytes)
    assert b"@@" not in body  # every include was put in its place
    for route in (b"/api/queues", b"/api/events", b"/api/admission/", b"/api/bulk/clean"):
        assert route in body
    assert b":focus-visible" in body and b"function openDetail" in body
