"""Emulator tier: the GCP adapters against the Google emulators, started once per session."""

from __future__ import annotations

from tests.emulator.fixtures import (
    cloud_tasks_client,
    cloud_tasks_emulator,
    empty_firestore,
    firestore_client,
    firestore_emulator,
    pubsub_emulator,
    pubsub_publisher,
    pubsub_subscriber,
)

__all__ = [
    "cloud_tasks_client",
    "cloud_tasks_emulator",
    "empty_firestore",
    "firestore_client",
    "firestore_emulator",
    "pubsub_emulator",
    "pubsub_publisher",
    "pubsub_subscriber",
]
