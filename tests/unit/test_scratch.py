"""Stage attempts' working folders: empty for each attempt, reused, removed on close."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deepflix.stages.scratch import Scratch

pytestmark = pytest.mark.unit


def test_a_folder_is_emptied_after_its_attempt_and_reused(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    with scratch.folder() as first:
        assert list(first.iterdir()) == []
        (first / "story.json").write_text("{}")
        (first / "render").mkdir()
        (first / "render" / "movie.mp4.part").write_bytes(b"half")
        kept = tmp_path / "artifact.png"
        kept.write_bytes(b"png")
        (first / "scene-01.png").hardlink_to(kept)  # an input fetched as a hard link
    with scratch.folder() as again:
        assert again == first
        assert [p.name for p in again.iterdir()] == ["render"]
        assert list((again / "render").iterdir()) == []
    assert kept.read_bytes() == b"png"  # only the link went


def test_an_attempt_that_fails_still_gives_its_folder_back_empty(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    with pytest.raises(RuntimeError), scratch.folder() as d:
        (d / "partial.png").write_bytes(b"x")
        raise RuntimeError("render failed")
    with scratch.folder() as again:
        assert again == d and list(again.iterdir()) == []


def test_attempts_at_the_same_time_get_their_own_folders(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    inside = threading.Barrier(4)
    seen: list[Path] = []

    def attempt() -> None:
        with scratch.folder() as d:
            seen.append(d)
            inside.wait(5)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    assert len(list(tmp_path.iterdir())) == 4  # and no more are made after


def test_close_removes_the_pooled_folders(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    with scratch.folder() as d:
        (d / "render").mkdir()
    scratch.close()
    assert list(tmp_path.iterdir()) == []
