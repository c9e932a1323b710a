"""The request guard's rules: which Host values it serves and which writes it lets through."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from deepflix.handlers.guard import RequestGuard
from deepflix.settings import Settings

pytestmark = pytest.mark.unit

SCRIPT = {"x-deepflix-client": "test"}


def code(guard: RequestGuard, method: str, **headers: str) -> str | None:
    refused = guard.refusal(method, Headers({k.replace("_", "-"): v for k, v in headers.items()}))
    return refused.code if refused else None


def local(**given: list[str]) -> RequestGuard:
    return RequestGuard.local(
        host=given.pop("host", ["127.0.0.1"])[0],
        port=8080,
        allowed_hosts=given.get("hosts", []),
        allowed_origins=given.get("origins", []),
    )


def test_configured_names_serve_any_port_and_name_port_pairs_that_port() -> None:
    guard = local(hosts=["Deepflix.Example", "proxy.example:443"])
    assert code(guard, "GET", host="deepflix.example:9000") is None
    assert code(guard, "GET", host="deepflix.example") is None
    assert code(guard, "GET", host="proxy.example:443") is None
    assert code(guard, "GET", host="proxy.example:80") == "misdirected_request"
    assert code(guard, "GET", host="localhost:8080") is None  # the loopback names stay


def test_the_bound_address_is_served_unless_it_is_every_address() -> None:
    assert code(local(host=["10.0.0.5"]), "GET", host="10.0.0.5:8080") is None
    assert code(local(host=["::1"]), "GET", host="[::1]:8080") is None
    assert code(local(host=["0.0.0.0"]), "GET", host="0.0.0.0:8080") == "misdirected_request"


def test_a_star_or_a_platform_without_names_serves_any_host() -> None:
    assert code(local(hosts=["*"]), "GET", host="anything.example") is None
    platform = RequestGuard.configured(allowed_hosts=[], allowed_origins=[])
    assert code(platform, "GET", host="api-xyz.a.run.app") is None
    # ... and still refuses a form of another site
    assert code(platform, "POST", host="x", origin="http://evil.example") == "cross_site_request"
    assert code(platform, "POST", host="x") == "unsupported_media_type"


def test_an_allowed_origin_may_write_cross_site() -> None:
    guard = local(origins=["https://app.example/"])
    cross = {"host": "localhost:8080", "sec_fetch_site": "cross-site", **SCRIPT}
    assert code(guard, "POST", origin="https://app.example", **cross) is None
    assert code(guard, "POST", origin="https://other.example", **cross) == "cross_site_request"


def test_the_same_origin_may_write_and_safe_methods_are_not_checked() -> None:
    guard = local()
    same = {"host": "localhost:8080", "origin": "http://localhost:8080"}
    assert code(guard, "POST", **same, **SCRIPT) is None
    assert code(guard, "DELETE", **same, content_type="application/json; charset=utf-8") is None
    for method in ("GET", "HEAD", "OPTIONS"):
        assert code(guard, method, host="localhost:8080", origin="http://evil.example") is None


def test_the_settings_take_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFLIX_ALLOWED_HOSTS", "a.example, b.example:8443,")
    monkeypatch.setenv("DEEPFLIX_ALLOWED_ORIGINS", "https://app.example")
    settings = Settings()
    assert settings.allowed_hosts == ["a.example", "b.example:8443"]
    assert settings.allowed_origins == ["https://app.example"]
    assert Settings.model_fields["allowed_hosts"].default == []
