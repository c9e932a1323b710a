"""Builds the Google Cloud adapters from settings, honouring the emulators' addresses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.adapters.gcp.oidc import GoogleIdTokens, TestTokens
from deepflix.adapters.gcp.pubsub import PubSubEventBus
from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner
from deepflix.adapters.gcp.storage import GcsArtifactStore
from deepflix.adapters.gcp.tasks import CloudTasksQueue
from deepflix.settings import Settings


@dataclass(frozen=True)
class GcpPorts:
    store: FirestoreMovieStore
    tasks: CloudTasksQueue
    events: PubSubEventBus


def _anonymous_if_emulated(env_var: str) -> dict[str, Any]:
    # Against an emulator the libraries still want credentials; never look for real ones.
    if os.environ.get(env_var):
        from google.auth.credentials import AnonymousCredentials

        return {"credentials": AnonymousCredentials()}  # type: ignore[no-untyped-call]
    return {}


def firestore_client(settings: Settings) -> Any:
    from google.cloud import firestore

    extra = _anonymous_if_emulated("FIRESTORE_EMULATOR_HOST")
    return firestore.Client(project=settings.gcp_project, **extra)


def tasks_client(settings: Settings) -> Any:
    from google.cloud import tasks_v2

    if settings.tasks_emulator_host:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(settings.tasks_emulator_host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return tasks_v2.CloudTasksClient()


def publisher_client(settings: Settings) -> Any:
    from google.cloud import pubsub_v1

    # PUBSUB_EMULATOR_HOST is honoured by the client itself.
    return pubsub_v1.PublisherClient(**_anonymous_if_emulated("PUBSUB_EMULATOR_HOST"))


def test_tokens(settings: Settings) -> TestTokens | None:
    """The emulator stack's token minting; never outside an emulator run."""
    if settings.test_token_key_file is None or not settings.emulated():
        return None
    return TestTokens.from_file(str(settings.test_token_key_file))


def internal_verifier(settings: Settings) -> GoogleIdTokens:
    """Google's certificates; a local issuer's where set (Settings refuses that in production)."""
    if settings.oidc_certs_url:
        return GoogleIdTokens(certs_url=settings.oidc_certs_url)
    return GoogleIdTokens()


def build_ports(settings: Settings) -> GcpPorts:
    """Adapters whose clients are built lazily, on first use, once per instance."""
    return GcpPorts(
        store=FirestoreMovieStore(client=lambda: firestore_client(settings)),
        tasks=CloudTasksQueue(
            project=settings.gcp_project,
            location=settings.gcp_location,
            queue=settings.tasks_queue,
            target_base_url=settings.tasks_url,
            client=lambda: tasks_client(settings),
            service_account_email=settings.tasks_service_account,
            # The service URL, as the tasks function checks it (and Cloud Run's IAM accepts).
            audience=settings.tasks_url.rstrip("/"),
            test_tokens=test_tokens(settings),
            dispatch_deadlines={"deadlines": 60.0, "deadline": 60.0, "dispatch": 60.0},
        ),
        events=PubSubEventBus(
            project=settings.gcp_project,
            topic_prefix=settings.topic_prefix,
            publisher=lambda: publisher_client(settings),
        ),
    )


def cloud_run_jobs(settings: Settings) -> CloudRunJobRunner:
    return CloudRunJobRunner(
        project=settings.gcp_project,
        location=settings.gcp_location,
        job_prefix=settings.run_job_prefix,
        # Set by Cloud Run in a job's container only: a job never cancels its own execution.
        own_execution=os.environ.get("CLOUD_RUN_EXECUTION"),
    )


def storage_client(settings: Settings) -> Any:
    from google.cloud.storage import Client

    # STORAGE_EMULATOR_HOST is honoured by the client itself.
    extra = _anonymous_if_emulated("STORAGE_EMULATOR_HOST")
    return Client(project=settings.gcp_project, **extra)


def gcs_artifacts(settings: Settings) -> GcsArtifactStore:
    assert settings.artifacts_bucket is not None  # nosec B101 # an invariant, not a check of input
    return GcsArtifactStore(
        bucket=settings.artifacts_bucket,
        client=lambda: storage_client(settings),
        emulator_host=os.environ.get("STORAGE_EMULATOR_HOST"),
    )
