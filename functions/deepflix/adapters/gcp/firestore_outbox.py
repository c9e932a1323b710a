"""Movies' outboxes on Firestore: the drain's query, and marks that keep its index true."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from deepflix.adapters.gcp.firestore_docs import EPOCH, from_document
from deepflix.metering import METER
from deepflix.pipeline.models import Movie, Outgoing, outbox_since

# Versions remembered at most (each a movie with messages this process read or saved and
# has not marked yet): a forgotten one costs only the blind mark below.
KEEP = 2000
Outbox = tuple[Outgoing, ...]


def _dump(messages: Sequence[Outgoing]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


class Outboxes:
    """Marks messages sent, and finds the movies whose messages wait (the drain).

    A movie's indexed `outbox_since` (when its oldest message was saved) is what the
    drain asks for. A mark that only took its messages out of the `outbox` array left it
    as it was until the movie's next save, so every drain meanwhile read the movie again
    (a waiting movie's admission, resent after its grace: every sweep while it waited). So
    where this process knows the version of the movie it read or saved last, a mark writes
    the outbox left and its `outbox_since` (none when empty) guarded by that version; a
    movie changed since then (or one not known) has its messages taken out blindly, as
    before, and its next save or the drain corrects the index.
    """

    def __init__(self, *, movies: Callable[[], Any], write_option: Callable[..., Any]) -> None:
        self.movies = movies  # the movies collection
        self.write_option = write_option  # the client's, for a version precondition
        self._known: OrderedDict[str, tuple[Any, Outbox]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, movie_id: str, version: Any, outbox: Outbox) -> None:
        """The movie's document had this `outbox` at this `version` (its update time)."""
        with self._lock:
            self._known.pop(movie_id, None)
            if outbox and version is not None:
                self._known[movie_id] = (version, outbox)
                while len(self._known) > KEEP:
                    self._known.popitem(last=False)

    def _take(self, movie_id: str) -> tuple[Any, Outbox] | None:
        with self._lock:
            return self._known.pop(movie_id, None)

    def sent(self, movie_id: str, messages: Sequence[Outgoing], rpc: dict[str, Any]) -> None:
        ref = self.movies().document(movie_id)
        known = self._take(movie_id)
        if known is not None and all(m in known[1] for m in messages):
            version, outbox = known
            rest = tuple(o for o in outbox if o not in messages)
            since = outbox_since(rest)
            guard = self.write_option(last_update_time=version)
            try:
                result = ref.update({"outbox": _dump(rest), "outbox_since": since}, guard, **rpc)
            except gexc.FailedPrecondition:  # changed since: taken out of what it holds now
                METER.add("firestore.conflicts")
            except gexc.NotFound:
                return
            else:
                METER.add("firestore.writes")
                self.remember(movie_id, result.update_time, rest)
                return
        # A transform, so no read: a transaction of this movie that read it before sees its
        # precondition fail and runs again. The indexed `outbox_since` stays as it is until
        # the movie's next save (or the drain's, for a movie that sees none).
        with contextlib.suppress(gexc.NotFound):
            ref.update({"outbox": firestore.ArrayRemove(_dump(messages))}, **rpc)
            METER.add("firestore.writes")

    def unsent(
        self, limit: int, before: datetime | None, stream: Callable[[Any], list[Any]]
    ) -> list[Movie]:
        # Only a movie with messages waiting has an `outbox_since`; a range filter skips
        # the null ones (and, with `before`, those too young: each one returned is a read).
        q = self.movies().where(filter=firestore.FieldFilter("outbox_since", ">=", EPOCH))
        if before is not None:
            q = q.where(filter=firestore.FieldFilter("outbox_since", "<", before))
        movies = []
        for snap in stream(q.order_by("outbox_since").limit(limit)):
            movie = from_document(snap.to_dict())
            self.remember(movie.id, snap.update_time, movie.outbox)
            movies.append(movie)
        return movies
