"""ArtifactStore contract, on the file system and on Cloud Storage (a local fake of its API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from deepflix.adapters.gcp.storage import GcsArtifactStore
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.pipeline.errors import NotFound
from deepflix.pipeline.ports import ArtifactStore
from tests.gcp_fakes import FakeGcs, fake_gcs

pytestmark = pytest.mark.contract
BUCKET = "deepflix-artifacts"


@dataclass
class Artifacts:
    store: ArtifactStore
    gcs: FakeGcs | None = None


def gcs_client(endpoint: str, credentials: Any = None) -> Any:
    from google.cloud import storage

    return storage.Client(
        project="demo-deepflix",
        credentials=credentials or AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture(params=["local", "gcs"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Artifacts]:
    if request.param == "local":
        yield Artifacts(LocalArtifactStore(tmp_path / "artifacts"))
        return
    with fake_gcs(BUCKET) as gcs:
        yield Artifacts(GcsArtifactStore(bucket=BUCKET, client=lambda: gcs_client(gcs.url)), gcs)


def test_put_then_fetch_returns_the_same_bytes(artifacts: Artifacts, tmp_path: Path) -> None:
    source = tmp_path / "poster.jpg"
    data = b"\xff\xd8 not really a jpeg \x00\x01"
    source.write_bytes(data)
    path = artifacts.store.put("m1", "poster.jpg", source)  # the store may take the file
    assert "m1" in path and path.endswith("poster.jpg")
    dest = tmp_path / "back.jpg"
    artifacts.store.fetch(path, dest)
    assert dest.read_bytes() == data


def test_each_movie_has_its_own_prefix(artifacts: Artifacts, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text("{}")
    second.write_text("{}")
    assert artifacts.store.put("m1", "story.json", first) != artifacts.store.put(
        "m2", "story.json", second
    )


def test_fetching_a_missing_artifact_is_not_found(artifacts: Artifacts, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        artifacts.store.fetch("m1/nothing.mp4", tmp_path / "x.mp4")


def test_delete_removes_every_file_of_the_movie_only(artifacts: Artifacts, tmp_path: Path) -> None:
    paths = {}
    for movie_id, name in (("m1", "story.json"), ("m1", "scene-01.png"), ("m2", "story.json")):
        source = tmp_path / f"{movie_id}-{name}"
        source.write_text(name)
        paths[movie_id, name] = artifacts.store.put(movie_id, name, source)
    assert artifacts.store.delete("m1") == 2
    for name in ("story.json", "scene-01.png"):
        with pytest.raises(NotFound):
            artifacts.store.fetch(paths["m1", name], tmp_path / "gone")
    artifacts.store.fetch(paths["m2", "story.json"], tmp_path / "kept.json")
    assert (tmp_path / "kept.json").read_text() == "story.json"
    assert artifacts.store.delete("m1") == 0  # nothing left: not an error
    assert artifacts.store.delete("") == 0  # never the whole store


def test_gcs_uploads_the_object_under_the_movie_prefix(tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(bytes(range(256)) * 40)
    with fake_gcs(BUCKET) as gcs:
        store = GcsArtifactStore(bucket=BUCKET, client=gcs_client(gcs.url))
        assert store.put("m7", "video.mp4", source) == "movies/m7/video.mp4"
        (upload,) = gcs.uploads
        assert upload == {
            "name": "movies/m7/video.mp4",
            "data": source.read_bytes(),
            "content_type": "video/mp4",
        }
        # Without signing credentials a client gets the object's gs:// address.
        assert store.url("movies/m7/video.mp4") == f"gs://{BUCKET}/movies/m7/video.mp4"


def test_gcs_signs_urls_with_a_service_account_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "client_email": "signer@demo-deepflix.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    store = GcsArtifactStore(
        bucket=BUCKET, client=gcs_client("https://storage.googleapis.com", credentials)
    )
    url = store.url("movies/m7/poster.jpg")
    assert url.startswith(f"https://storage.googleapis.com/{BUCKET}/movies/m7/poster.jpg?")
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url
    assert "X-Goog-Expires=3600" in url and "X-Goog-Signature=" in url
