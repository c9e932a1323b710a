"""The served OpenAPI document describes what the service really answers, to the end."""

from __future__ import annotations

import pytest

from deepflix.handlers.schemas import JobPosition, MovieList, MovieView
from tests.e2e.conftest import Service

pytestmark = pytest.mark.e2e


def test_a_finished_movie_has_the_documented_shapes(shared_service: Service) -> None:
    code, document = shared_service.request("GET", "/openapi.json")
    assert code == 200 and "/api/movies/{movie_id}/status" in document["paths"]
    movie = shared_service.create("a paper boat in the rain", scene_count=2)
    done = MovieView.model_validate(shared_service.wait_terminal(movie["movie_id"]))
    assert done.status.value == "succeeded" and done.artifacts.video and done.artifacts.images
    code, position = shared_service.request("GET", f"/api/queue/{done.movie_id}/position")
    assert code == 200 and JobPosition.model_validate(position).waiting is False
    code, page = shared_service.request("GET", "/api/movies?limit=1")
    assert code == 200 and len(MovieList.model_validate(page).movies) == 1
