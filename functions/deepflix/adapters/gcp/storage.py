"""ArtifactStore on Cloud Storage: objects under movies/{movie_id}/, signed URLs for clients."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import google.auth.credentials
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud.storage import Client as StorageClient
from google.cloud.storage.retry import DEFAULT_RETRY

from deepflix import logs
from deepflix.adapters.gcp.clients import OUTAGES, Lazy, translate_outages
from deepflix.pipeline.errors import NotFound

log = logs.get("gcs")
PREFIX = "movies"
SIGNING_ERRORS: tuple[type[BaseException], ...] = (
    *OUTAGES,
    gexc.GoogleAPICallError,
    auth_exc.GoogleAuthError,
)


class GcsArtifactStore:
    """`ArtifactStore` on one bucket; a storage path is the object name `movies/{id}/{name}`.

    `url()` hands out a V4 signed GET URL valid for `url_ttl` when the client's credentials
    can sign: a service account key signs locally; the metadata-server identity of Cloud Run
    and Cloud Functions signs through the IAM signBlob API (the account needs
    roles/iam.serviceAccountTokenCreator on itself). Credentials that cannot sign (anonymous,
    user credentials) get the `gs://bucket/object` path instead, which only a caller with
    bucket access can read.
    """

    def __init__(
        self,
        *,
        bucket: str,
        client: Any | Callable[[], Any] = StorageClient,
        url_ttl: timedelta = timedelta(hours=1),
        rpc_timeout_s: float = 60.0,
    ) -> None:
        self.bucket_name = bucket
        self.url_ttl = url_ttl
        self.rpc_timeout_s = rpc_timeout_s
        self._client: Lazy[Any] = Lazy(client)

    def object_name(self, path: str) -> str:
        """Accepts the object name `put` returned, or its `gs://bucket/...` form."""
        full = f"gs://{self.bucket_name}/"
        return path[len(full) :] if path.startswith(full) else path

    def _blob(self, path: str) -> Any:
        return self._client.get().bucket(self.bucket_name).blob(self.object_name(path))

    @translate_outages("cloud storage")
    def put(self, movie_id: str, name: str, source: Path) -> str:
        path = f"{PREFIX}/{movie_id}/{name}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # Retried even though not conditional: rewriting the same bytes to the same name
        # is harmless, and a stage should not fail on a transient upload error.
        self._blob(path).upload_from_filename(
            str(source), content_type=content_type, retry=DEFAULT_RETRY, timeout=self.rpc_timeout_s
        )
        return path

    @translate_outages("cloud storage")
    def fetch(self, path: str, dest: Path) -> None:
        try:
            self._blob(path).download_to_filename(str(dest), timeout=self.rpc_timeout_s)
        except gexc.NotFound as e:
            dest.unlink(missing_ok=True)  # the client leaves an empty file behind
            raise NotFound(f"no artifact {path!r}") from e

    @translate_outages("cloud storage")
    def delete(self, movie_id: str) -> int:
        bucket = self._client.get().bucket(self.bucket_name)
        blobs = list(bucket.list_blobs(prefix=f"{PREFIX}/{movie_id}/", timeout=self.rpc_timeout_s))
        for blob in blobs:
            # Gone already (a delete that ran before) is what was asked for.
            with contextlib.suppress(gexc.NotFound):
                blob.delete(timeout=self.rpc_timeout_s, retry=DEFAULT_RETRY)
        return len(blobs)

    def url(self, path: str) -> str:
        blob = self._blob(path)
        # The storage client keeps its credentials only as this attribute (google-cloud-core).
        credentials = self._client.get()._credentials
        try:
            if isinstance(credentials, google.auth.credentials.Signing):
                return str(blob.generate_signed_url(version="v4", expiration=self.url_ttl))
            # Metadata-server credentials name their account ("default" until refreshed).
            if getattr(credentials, "service_account_email", None):
                if not credentials.valid:
                    credentials.refresh(google.auth.transport.requests.Request())
                return str(
                    blob.generate_signed_url(
                        version="v4",
                        expiration=self.url_ttl,
                        service_account_email=credentials.service_account_email,
                        access_token=credentials.token,
                    )
                )
        except SIGNING_ERRORS as e:
            # A URL the client cannot use is better than no status page at all.
            log.warning("could not sign a URL for %s: %s", path, e)
        return f"gs://{self.bucket_name}/{self.object_name(path)}"
