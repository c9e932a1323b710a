"""Artifact downloads answer one byte range with 206, and say the file's length always."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deepflix.pipeline.transitions import Decision
from tests.api_client import InProcess, in_process

pytestmark = pytest.mark.integration

CONTENT = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def film(tmp_path: Path) -> Iterator[tuple[InProcess, str]]:
    with in_process(tmp_path) as api:
        created = api.client.post("/api/movies", json={"prompt": "a film to seek in"})
        movie_id = created.json()["movie_id"]
        source = tmp_path / "movie.mp4"
        source.write_bytes(CONTENT)
        stored = api.artifacts.put(movie_id, "movie.mp4", source)
        api.pipeline.store.mutate(
            movie_id,
            lambda m: Decision(m.model_copy(update={"artifacts": {"movie.mp4": stored}})),
        )
        yield api, f"/api/movies/{movie_id}/artifacts/movie.mp4"


def test_the_whole_file_has_its_length_and_says_ranges_are_taken(
    film: tuple[InProcess, str],
) -> None:
    api, url = film
    answer = api.client.get(url)
    assert answer.status_code == 200 and answer.content == CONTENT
    assert answer.headers["content-length"] == str(len(CONTENT))
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    ("asked", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=10000-", 10000, 10239), ("bytes=-40", 10200, 10239)],
)
def test_one_range_answers_206_with_its_bytes(
    film: tuple[InProcess, str], asked: str, start: int, end: int
) -> None:
    api, url = film
    answer = api.client.get(url, headers={"Range": asked})
    assert answer.status_code == 206
    assert answer.content == CONTENT[start : end + 1]
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert answer.headers["content-length"] == str(end - start + 1)


def test_a_range_past_the_end_is_416_with_the_size(film: tuple[InProcess, str]) -> None:
    api, url = film
    answer = api.client.get(url, headers={"Range": "bytes=20000-"})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert answer.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("asked", ["bytes=0-9,20-29", "pages=1-2", "bytes=abc"])
def test_several_or_malformed_ranges_get_the_whole_file(
    film: tuple[InProcess, str], asked: str
) -> None:
    api, url = film
    answer = api.client.get(url, headers={"Range": asked})
    assert answer.status_code == 200 and answer.content == CONTENT
    assert answer.headers["content-length"] == str(len(CONTENT))
