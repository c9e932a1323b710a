"""Session fixtures for the Google emulators and clients bound to them (shared by conftests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials

from devtools import emulators as servers
from devtools.emulators import PROJECT, Emulator


def _running(start: Callable[[], Emulator]) -> Iterator[Emulator]:
    try:
        emulator = start()
    except servers.EmulatorMissing as e:
        pytest.skip(str(e))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Emulator]:
    yield from _running(servers.firestore)


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[Emulator]:
    yield from _running(servers.pubsub)


@pytest.fixture(scope="session")
def cloud_tasks_emulator() -> Iterator[Emulator]:
    yield from _running(servers.cloud_tasks)


@pytest.fixture(scope="session")
def firestore_client(firestore_emulator: Emulator) -> Iterator[Any]:
    from google.cloud import firestore

    # The client reads the emulator address only while it is being built.
    with servers.env("FIRESTORE_EMULATOR_HOST", firestore_emulator.address):
        client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
    yield client
    client.close()


@pytest.fixture
def empty_firestore(firestore_emulator: Emulator, firestore_client: Any) -> Any:
    """The Firestore client, on a database emptied for this test."""
    servers.clear_firestore(firestore_emulator)
    return firestore_client


def _channel(emulator: Emulator) -> grpc.Channel:
    return grpc.insecure_channel(emulator.address)


@pytest.fixture(scope="session")
def pubsub_publisher(pubsub_emulator: Emulator) -> Any:
    from google.cloud.pubsub_v1 import PublisherClient
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    return PublisherClient(transport=PublisherGrpcTransport(channel=_channel(pubsub_emulator)))


@pytest.fixture(scope="session")
def pubsub_subscriber(pubsub_emulator: Emulator) -> Iterator[Any]:
    from google.cloud.pubsub_v1 import SubscriberClient
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    client = SubscriberClient(transport=SubscriberGrpcTransport(channel=_channel(pubsub_emulator)))
    yield client
    client.close()


@pytest.fixture(scope="session")
def cloud_tasks_client(cloud_tasks_emulator: Emulator) -> Any:
    from google.cloud.tasks_v2 import CloudTasksClient
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return CloudTasksClient(
        transport=CloudTasksGrpcTransport(channel=_channel(cloud_tasks_emulator))
    )
