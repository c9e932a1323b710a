"""How a movie is laid out in Firestore: the document and the fields indexed beside it."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from deepflix.pipeline.models import Movie, Stage

Doc = dict[str, Any]
# Collections: the movies, and per stage the ids running there (slot shards, which a claim
# guards), which also hold the sums of the stage's durations (blind increments, written with
# the free of a slot: ADR 0031). The `stats` shards that held the sums before are no longer
# read or written (README, "Firestore at a hundred movies a second per stage").
MOVIES, QUEUES = "movies", "queues"
DOC_ID = FieldPath.document_id()
# The origin of stored times: a range from it matches every document with the field, and
# queue buckets count from it.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Firestore's guideline for one document: about one sustained write a second.
WRITES_PER_DOC_S = 1.0
# Each movie writes its slot shard twice per stage (claim and free); shards are sized for the
# target rate with this much headroom, since a hash never spreads evenly.
SLOT_WRITES_PER_MOVIE, HEADROOM = 2, 1.5


def shard_count(rate_per_s: float, writes_per_movie: int = SLOT_WRITES_PER_MOVIE) -> int:
    """Documents needed so that `rate_per_s` movies a second stay within one write a second
    per document."""
    return max(1, math.ceil(rate_per_s * writes_per_movie * HEADROOM / WRITES_PER_DOC_S))


def slot_shards(limit: int, rate_per_s: float) -> list[int]:
    """The capacity of each slot shard of a stage: `limit` split over K = min(limit, the
    shards the rate needs) documents, each holding at least one slot; they sum to `limit`."""
    k = max(1, min(limit, shard_count(rate_per_s)))
    return [limit // k + (1 if i < limit % k else 0) for i in range(k)]


def stable_shard(key: str, shards: int) -> int:
    # Stable across processes (str hashes are salted).
    return zlib.crc32(key.encode()) % shards


def eq(field: str, value: object) -> Any:
    return firestore.FieldFilter(field, "==", value)


def slots_ref(db: Any, stage: Stage, shard: int) -> Any:
    return db.collection(QUEUES).document(f"{stage.value}-{shard}")


def index_fields(m: Movie) -> Doc:
    """The movie's queue fields, kept beside it so Firestore can index the queues (see
    infra/firestore.indexes.json); times stay timestamps."""
    return m.queue_fields()._asdict()


def to_document(m: Movie, *, journal_seq: int = 0, slot_shard: int | None = None) -> Doc:
    """The movie's document; `slot_shard` names the slot shard holding it while it runs."""
    doc = {**m.model_dump(mode="json"), **index_fields(m), "journal_seq": journal_seq}
    return doc | {"slot_shard": slot_shard if m.running_stage is not None else None}


def from_document(data: Mapping[str, Any]) -> Movie:
    return Movie.model_validate({k: v for k, v in data.items() if k in Movie.model_fields})
