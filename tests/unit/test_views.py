"""The status view kept per parsed movie: the same JSON as rendering it whole, never stale."""

from __future__ import annotations

import pytest

from deepflix.handlers.views import MovieViews, artifact_link, movie_view
from deepflix.pipeline.models import Stage, StageStatus
from deepflix.pipeline.position import QueuePosition
from tests import factories

pytestmark = pytest.mark.unit


def url(path: str) -> str:
    return f"/files/{path}"


def test_a_kept_view_is_the_whole_view_with_the_position_of_now() -> None:
    views = MovieViews(url)
    movie = factories.movie()
    for ahead in (5, 4, 0):
        position = QueuePosition(Stage.story, ahead, 6, 1, 12.345 + ahead)
        assert views(movie, position) == movie_view(movie, position, url)
    assert views(movie, None) == movie_view(movie, None, url)
    assert list(views(movie, None)) == list(movie_view(movie, None, url))  # same key order


def test_a_changed_movie_is_rendered_again() -> None:
    views = MovieViews(url)
    movie = factories.movie()
    views(movie, None)
    stages = dict(movie.stages)
    stages[Stage.story] = stages[Stage.story].model_copy(update={"status": StageStatus.running})
    artifacts = {"story.json": "m/story.json"}
    changed = movie.model_copy(update={"stages": stages, "artifacts": artifacts})
    view = views(changed, None)
    assert view == movie_view(changed, None, url)
    assert view["current_stage"] == "story" and view["stages"]["story"]["status"] == "running"
    assert view["artifacts"]["story"] == "/files/m/story.json"


def test_views_kept_are_bounded() -> None:
    views = MovieViews(url, size=3)
    movies = [factories.movie() for _ in range(5)]
    for m in movies:
        views(m, None)
    assert len(views._views) == 3
    assert views(movies[0], None) == movie_view(movies[0], None, url)


@pytest.mark.parametrize(
    "path",
    ["m-1/movie.mp4", "movies/m-1/movie.mp4", "movies/m-1/a3/movie.mp4"],
)
def test_an_artifact_links_to_its_movies_route_never_to_storage(path: str) -> None:
    assert artifact_link(path) == "/api/movies/m-1/artifacts/movie.mp4"
