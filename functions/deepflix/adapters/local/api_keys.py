"""The embedded mode's API keys (`dfx_...`): kept hashed in its SQLite database, each with a
name, an owner and an admin flag (ADR 0017)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepflix.adapters.local.db import Database
from deepflix.pipeline.identity import Principal

PREFIX = "dfx_"
ID_LENGTH = len(PREFIX) + 8  # the key's start names it in listings; the rest stays secret
SCHEMA = """
-- A key is stored as its SHA-256 only: it is 256 random bits, so a stolen database gives no
-- way back to it (no salt or slow hash needed, as for a password a person chose).
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, owner TEXT NOT NULL,
    admin INTEGER NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
);
"""

REVOKE = tuple(
    f"UPDATE api_keys SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL RETURNING id"  # nosec B608 # constant column names; values are bound parameters
    for column in ("id", "name")
)


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never the key itself, which is shown once, when it is made."""

    id: str  # its first characters, `dfx_` and 8 more
    name: str
    owner: str
    admin: bool
    created_at: str
    revoked_at: str | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The keys of one embedded database, and the `TokenVerifier` that accepts them.

    Revoking keeps the row: once any key was made, requests without one are refused even
    on 127.0.0.1, and revoking the last key must not open the service to every local
    program again.
    """

    def __init__(self, where: Path | Database) -> None:
        self.db = where if isinstance(where, Database) else Database(where)
        if not self.db.read_only:  # a reader's runtime has set the table up already
            self.db.conn().executescript(SCHEMA)  # as the store's: before any write

    def create(self, *, name: str, owner: str, admin: bool) -> tuple[ApiKey, str]:
        """A new key: its listing and the key itself, which nothing can show again."""
        key = PREFIX + secrets.token_urlsafe(32)
        made = ApiKey(key[:ID_LENGTH], name, owner, admin, _now(), None)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (made.id, digest(key), name, owner, int(admin), made.created_at),
            )

        self.db.write(write)
        return made, key

    def listed(self) -> list[ApiKey]:
        rows = self._read(
            "SELECT id, name, owner, admin, created_at, revoked_at FROM api_keys"
            " ORDER BY created_at, id",
            (),
        )
        return [ApiKey(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

    def revoke(self, id_or_name: str) -> list[str]:
        """Revoke the live keys of this id (or, if none has it, this name): their ids."""

        def write(conn: sqlite3.Connection) -> list[str]:
            for sql in REVOKE:
                rows = conn.execute(sql, (_now(), id_or_name)).fetchall()
                if rows:
                    return sorted(r[0] for r in rows)
            return []

        return self.db.write(write)

    def exist(self) -> bool:
        """Whether any key was ever made (revoked ones count: see the class)."""
        return bool(self._read("SELECT 1 FROM api_keys LIMIT 1", ()))

    def __call__(self, token: str) -> Principal | None:
        if not token.startswith(PREFIX):
            return None
        rows = self._read(
            "SELECT owner, admin FROM api_keys WHERE hash = ? AND revoked_at IS NULL",
            (digest(token),),
        )
        return Principal(rows[0][0], admin=bool(rows[0][1])) if rows else None

    def _read(self, sql: str, args: tuple[str, ...]) -> list[Any]:
        try:
            return self.db.conn().execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            # A database from before keys existed, opened only to read: no keys at all.
            if "no such table" in str(e):
                return []
            raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
