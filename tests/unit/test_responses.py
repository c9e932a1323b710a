"""Each error class answers with one HTTP status, mapped at the edge, not in the domain."""

from __future__ import annotations

import pytest

from deepflix.handlers import responses
from deepflix.handlers.responses import (
    CrossSiteRequest,
    MethodNotAllowed,
    MisdirectedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    error_answer,
    http_status,
)
from deepflix.pipeline import errors
from deepflix.pipeline.errors import (
    BadRequest,
    Conflict,
    DeepflixError,
    NotFound,
    Unavailable,
    ValidationFailed,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("x"), 400),
        (CrossSiteRequest("x"), 403),
        (NotFound("x"), 404),
        (MethodNotAllowed("x", details={"allowed": "GET"}), 405),
        (Conflict("x"), 409),
        (PayloadTooLarge("x"), 413),
        (UnsupportedMediaType("x"), 415),
        (MisdirectedRequest("x"), 421),
        (ValidationFailed("x"), 422),
        (Unavailable("x"), 503),
        (DeepflixError("x"), 500),
    ],
)
def test_each_error_has_its_status(error: DeepflixError, status: int) -> None:
    assert http_status(error) == status
    assert error_answer(error).status_code == status


def test_every_error_class_is_mapped_and_the_domain_knows_no_status() -> None:
    classes = [
        cls
        for module in (errors, responses)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, DeepflixError)
    ]
    assert set(classes) == set(responses.HTTP_STATUS)
    assert not any(hasattr(cls, "status") for cls in classes)


def test_a_subclass_answers_as_its_nearest_mapped_ancestor() -> None:
    class Gone(NotFound):
        pass

    assert http_status(Gone("x")) == 404


def test_an_outage_says_when_to_come_back() -> None:
    answer = error_answer(Unavailable("down", retry_after_s=7))
    assert answer.headers["Retry-After"] == "7"
