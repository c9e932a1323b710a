"""Local artifacts: stored under the movie's folder, fetched back, never outside the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.pipeline.errors import NotFound

pytestmark = pytest.mark.unit


def test_put_fetch_url_and_resolve(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(b"first")
    path = store.put("m1", "a.png", work / "a.png")
    assert path == "m1/a.png" and store.url(path) == "/api/movies/m1/artifacts/a.png"
    assert not (work / "a.png").exists()  # moved into place, not copied
    store.fetch(path, tmp_path / "copy.png")
    assert (tmp_path / "copy.png").read_bytes() == b"first"
    (work / "b.png").write_bytes(b"second")
    store.put("m1", "a.png", work / "b.png")  # a retried attempt replaces it whole
    assert store.resolve(path).read_bytes() == b"second"
    assert (tmp_path / "copy.png").read_bytes() == b"first"


def test_resolve_refuses_missing_and_escaping_paths(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    (tmp_path / "secret").write_text("x")
    for bad in ("m1/none.png", "../secret", "m1/../../secret"):
        with pytest.raises(NotFound):
            store.resolve(bad)
        with pytest.raises(NotFound):
            store.fetch(bad, tmp_path / "out")
    with pytest.raises(NotFound):
        store.put("m1", "../escape.png", tmp_path / "secret")
    assert (tmp_path / "secret").exists()
