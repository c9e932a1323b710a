"""The Cloud Storage adapter on gcp-storage-emulator: a video over 8 MiB goes up in a
resumable upload (as long videos do in the cloud) and comes back byte for byte."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud.storage import Blob

from deepflix.adapters.gcp.factory import gcs_artifacts
from deepflix.pipeline.errors import NotFound
from deepflix.settings import Settings
from devtools import emulators

pytestmark = pytest.mark.emulator
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def storage_host() -> Iterator[str]:
    try:
        emulator = emulators.storage()
    except emulators.EmulatorMissing as e:
        pytest.skip(str(e))
    yield f"http://{emulator.address}"


@pytest.fixture
def settings(storage_host: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_host)
    return Settings.model_construct(
        gcp_project=emulators.PROJECT, artifacts="gcs", artifacts_bucket=emulators.STORAGE_BUCKET
    )


def test_a_video_over_8_mib_uploads_resumably_and_downloads_whole(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resumable: list[str] = []
    original = Blob._do_resumable_upload

    def spy(self: Blob, *args: Any, **kwargs: Any) -> Any:
        resumable.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "_do_resumable_upload", spy)
    store = gcs_artifacts(settings)
    data = os.urandom(9 * MIB + 123)
    source = tmp_path / "movie.mp4"
    source.write_bytes(data)
    path = store.put("m9", "movie.mp4", source, attempt=2)
    assert path == "movies/m9/a2/movie.mp4"
    assert resumable == [path]  # the client's switch above 8 MiB, as in the cloud
    back = tmp_path / "back.mp4"
    store.fetch(path, back)
    assert back.read_bytes() == data
    # Emulator mode hands clients the emulator's own download URL.
    with urllib.request.urlopen(store.url(path), timeout=60) as resp:
        assert resp.read() == data


def test_small_files_and_missing_ones(settings: Settings, tmp_path: Path) -> None:
    store = gcs_artifacts(settings)
    source = tmp_path / "story.json"
    source.write_text('{"title": "t"}')
    path = store.put("m1", "story.json", source, attempt=1)
    back = tmp_path / "back.json"
    store.fetch(path, back)
    assert back.read_text() == '{"title": "t"}'
    with pytest.raises(NotFound):
        store.fetch("movies/m1/a1/nothing.mp4", tmp_path / "x.mp4")
