"""The dashboard page is served by the same handler as the API."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_dashboard_page_is_served(shared_service: Service) -> None:
    code, body = shared_service.request("GET", "/")
    assert code == 200 and isinstance(body, bytes)
    assert b"/api/queues" in body and b"/api/admission/pause" in body
