"""The CLI's client: where it looks for the service, and its one-line errors."""

from __future__ import annotations

import pytest

from deepflix.entrypoints.cli_client import default_url, error_message

pytestmark = pytest.mark.unit


def envelope(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": None}}


def test_the_url_comes_from_deepflix_url_then_port() -> None:
    assert default_url({}) == "http://127.0.0.1:8080"
    assert default_url({"PORT": "18500"}) == "http://127.0.0.1:18500"
    assert default_url({"DEEPFLIX_PORT": "9000"}) == "http://127.0.0.1:9000"
    both = {"PORT": "18500", "DEEPFLIX_URL": "https://films.example/"}
    assert default_url(both) == "https://films.example"


def test_credentials_errors_say_what_to_do() -> None:
    no_token = error_message(401, envelope("unauthenticated", "no credentials"), {}, False)
    assert "--token" in no_token and "DEEPFLIX_TOKEN" in no_token
    bad = error_message(401, envelope("unauthenticated", "unknown key"), {}, True)
    assert bad == "the service refused the token (401): unknown key"
    assert error_message(403, envelope("forbidden", "admins only"), {}, True) == (
        "not allowed (403): admins only"
    )


def test_rate_limits_say_when_to_try_again() -> None:
    said = error_message(429, envelope("rate_limited", "slow down"), {"Retry-After": "7"}, True)
    assert said == "rate limited (429): slow down; try again in 7 s"


def test_errors_name_the_clis_options_not_the_apis_fields() -> None:
    body = envelope("validation_failed", "scene_count: Input should be less than or equal to 24")
    assert error_message(422, body, {}, False) == (
        "--scenes: Input should be less than or equal to 24 (validation_failed)"
    )
    assert error_message(502, "not json", {}, False) == "the service answered HTTP 502"
    detailed = envelope("validation_failed", "the request body is not a valid movie request")
    detailed["error"]["details"] = [  # type: ignore[index]
        {"field": "scene_count", "message": "Input should be less than or equal to 24"},
        {"field": "promt", "message": "Extra inputs are not permitted"},
    ]
    assert error_message(422, detailed, {}, False) == (
        "--scenes: Input should be less than or equal to 24;"
        " promt: Extra inputs are not permitted (validation_failed)"
    )
