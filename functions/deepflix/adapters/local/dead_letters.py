"""Dead letters of the embedded queue, as the operator sees them: listed, and replayed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from deepflix.adapters.local.queue import SqliteQueue
from deepflix.pipeline.operator import DeadLetter, about


class QueueDeadLetters:
    """`DeadLetters` on the SqliteQueue's `dead_letters` table: a replay puts the message
    back on its queue as new (its deliveries start again) and forgets the dead letter, in
    one write."""

    def __init__(self, queue: SqliteQueue) -> None:
        self.queue = queue

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self.queue.db.conn().execute(
            "SELECT id, queue, body, error, at FROM dead_letters ORDER BY id LIMIT ?", (limit,)
        )
        out = []
        for letter_id, queue, body, error, at in rows:
            movie_id, stage = about(json.loads(body))
            failed_at = datetime.fromtimestamp(at, UTC)
            out.append(DeadLetter(str(letter_id), queue, movie_id, stage, error, failed_at))
        return out

    def replay(self, dead_letter_id: str) -> bool:
        if not dead_letter_id.isascii() or not dead_letter_id.isdigit():
            return False

        def write(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM dead_letters WHERE id = ? RETURNING queue, body",
                (int(dead_letter_id),),
            ).fetchone()
            if row is None:
                return False
            # Unnamed: a name it had is long free, or still taken by the message it names.
            self.queue.put(row[0], json.loads(row[1]))
            return True

        return self.queue.db.write(write)
