"""The quotas' reads of one owner's movies in the embedded database."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from deepflix.pipeline.models import arrival_key
from deepflix.pipeline.quotas import DONE, OwnerUsage

# Both over the owner's rows only (the movies_owner index): a count, no document written.
ACTIVE_SQL = (
    "SELECT count(*) FROM movies WHERE owner = ? "  # nosec B608 # constant names; values are bound parameters
    f"AND json_extract(doc, '$.status') NOT IN ({', '.join('?' * len(DONE))})"
)
RECENT_SQL = "SELECT count(*) FROM movies WHERE owner = ? AND arrival >= ?"


def owner_usage(conn: sqlite3.Connection, owner: str, since: datetime) -> OwnerUsage:
    """The owner's movies not yet done, and those created since `since`."""
    (active,) = conn.execute(ACTIVE_SQL, (owner, *DONE)).fetchone()
    (recent,) = conn.execute(RECENT_SQL, (owner, arrival_key(since))).fetchone()
    return OwnerUsage(active=int(active), created_since=int(recent))
