"""The quotas' reads of one owner's movies in Firestore: two count aggregations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from deepflix.adapters.gcp.firestore_docs import eq
from deepflix.metering import METER
from deepflix.pipeline.models import arrival_key
from deepflix.pipeline.quotas import ACTIVE, OwnerUsage


def _count(query: Any, rpc: dict[str, Any]) -> int:
    # A count reads index entries, not documents: one read per 1000 entries counted.
    ((result,),) = query.count(alias="n").get(**rpc)
    METER.add("firestore.reads")
    return int(result.value)


def owner_usage(movies: Any, owner: str, since: datetime, rpc: dict[str, Any]) -> OwnerUsage:
    """The owner's movies not yet done (owner, status index) and those that arrived since
    `since` (the list's owner, arrival index). Nothing is written: no per-owner document."""
    mine = movies.where(filter=eq("owner", owner))
    active = mine.where(filter=firestore.FieldFilter("status", "in", list(ACTIVE)))
    recent = mine.where(filter=firestore.FieldFilter("arrival", ">=", arrival_key(since)))
    return OwnerUsage(active=_count(active, rpc), created_since=_count(recent, rpc))
