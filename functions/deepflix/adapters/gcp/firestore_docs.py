"""How a movie is laid out in Firestore: the document and the fields indexed beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from deepflix.pipeline.models import Movie, Stage

Doc = dict[str, Any]
# Collections: the movies, and per stage the ids running there (the slots a claim guards)
# and the stage's mean duration.
MOVIES, QUEUES, STATS = "movies", "queues", "stats"
DOC_ID = FieldPath.document_id()


def eq(field: str, value: object) -> Any:
    return firestore.FieldFilter(field, "==", value)


def slots_ref(db: Any, stage: Stage) -> Any:
    return db.collection(QUEUES).document(stage.value)


def stats_ref(db: Any, stage: Stage) -> Any:
    return db.collection(STATS).document(stage.value)


def index_fields(m: Movie) -> Doc:
    """The movie's queue fields, kept beside it so Firestore can index the queues (see
    infra/firestore.indexes.json); times stay timestamps."""
    return m.queue_fields()._asdict()


def to_document(m: Movie, *, journal_seq: int = 0) -> Doc:
    return {**m.model_dump(mode="json"), **index_fields(m), "journal_seq": journal_seq}


def from_document(data: Mapping[str, Any]) -> Movie:
    return Movie.model_validate({k: v for k, v in data.items() if k in Movie.model_fields})
