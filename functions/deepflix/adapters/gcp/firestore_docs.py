"""How a movie is laid out in Firestore: the document, its index fields, list cursors."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from deepflix.pipeline.errors import BadRequest
from deepflix.pipeline.models import Movie, arrival_key

Doc = dict[str, Any]
MOVIES = "movies"
DOC_ID = FieldPath.document_id()


def eq(field: str, value: object) -> Any:
    return firestore.FieldFilter(field, "==", value)


def index_fields(m: Movie) -> Doc:
    """Fields kept beside the movie so Firestore can index the queues (see
    infra/firestore.indexes.json): the derived columns the SQLite store keeps."""
    waiting, running = m.waiting_stage, m.running_stage
    return {
        "owner": m.owner,
        "arrival": arrival_key(m.created_at),
        "prio": m.request.priority.rank,
        "waiting_stage": waiting.value if waiting else None,
        "ready_at": m.stages[waiting].ready_at if waiting else None,
        "running_stage": running.value if running else None,
        "deadline": m.stages[running].deadline if running else None,
    }


def to_document(m: Movie, *, journal_seq: int = 0) -> Doc:
    return {**m.model_dump(mode="json"), **index_fields(m), "journal_seq": journal_seq}


def from_document(data: Mapping[str, Any]) -> Movie:
    return Movie.model_validate({k: v for k, v in data.items() if k in Movie.model_fields})


def encode_cursor(m: Movie) -> str:
    return base64.urlsafe_b64encode(f"{arrival_key(m.created_at)}|{m.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        arrival, sep, movie_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (ValueError, UnicodeError):
        sep = ""
    if not sep or not movie_id:
        raise BadRequest("invalid cursor", details={"cursor": cursor})
    return arrival, movie_id
