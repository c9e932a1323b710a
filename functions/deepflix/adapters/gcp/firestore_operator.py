"""The movie store's operator side in Firestore: filtered lists, deletes, per-queue pauses."""

from __future__ import annotations

import time
from typing import Any

from google.cloud import firestore

from deepflix.adapters.gcp.clients import translate_outages
from deepflix.adapters.gcp.firestore_docs import DOC_ID, eq, from_document
from deepflix.adapters.gcp.firestore_txn import CONFLICTS
from deepflix.metering import METER
from deepflix.pipeline.errors import Conflict, Unavailable
from deepflix.pipeline.models import STAGES, Movie, Stage, decode_cursor, encode_cursor
from deepflix.pipeline.operator import MovieFilter, matches
from deepflix.pipeline.ports import Page

# How long this process trusts the paused stages and admission it read: every dispatch and
# create asks, and a read each would cost a billed read per movie (docs/decisions/0020).
PAUSES_TTL_S = 1.0
# A filter Firestore cannot index (stage, text) is applied to pages of this many movies.
FILTER_PAGE = 100
DELETE_ATTEMPTS = 5


class FirestoreOperator:
    """What FirestoreMovieStore does for the operator (a part of it, kept in its own file).

    A list's status filter is a query on the document's `status` (an index with `arrival`,
    infra/firestore.indexes.json); its stage and text filters, which no index can answer
    (a substring of the prompt), are applied to the newest movies as they are read, at most
    `max_scan` of them per page: a page may then be short, and its cursor goes on from the
    last movie read.
    """

    rpc: dict[str, Any]
    max_scan: int
    _pauses: tuple[float, frozenset[Stage]] = (float("-inf"), frozenset())
    _admission: tuple[float, bool] = (float("-inf"), False)

    def db(self) -> Any:
        raise NotImplementedError  # the store's

    def movies(self) -> Any:
        raise NotImplementedError  # the store's

    def _stream(self, query: Any) -> list[Any]:
        raise NotImplementedError  # the store's

    def monotonic_pauses(self) -> float:
        return time.monotonic()  # a test's clock replaces it

    def _stages_ref(self) -> Any:
        return self.db().collection("control").document("stages")

    def _admission_ref(self) -> Any:
        return self.db().collection("control").document("admission")

    @translate_outages("firestore")
    def list(
        self,
        *,
        owner: str | None,
        limit: int,
        cursor: str | None,
        where: MovieFilter | None = None,
    ) -> Page:
        q = self.movies()
        if owner is not None:
            q = q.where(filter=eq("owner", owner))
        if where is not None and where.status is not None:
            q = q.where(filter=eq("status", where.status.value))
        newest = firestore.Query.DESCENDING
        q = q.order_by("arrival", direction=newest).order_by(DOC_ID, direction=newest)
        if cursor is not None:
            arrival, movie_id = decode_cursor(cursor)
            q = q.start_after({"arrival": arrival, "__name__": movie_id})
        if where is None or (where.stage is None and not where.text):
            movies = [from_document(s.to_dict()) for s in self._stream(q.limit(limit + 1))]
            more = len(movies) > limit
            return Page(movies[:limit], encode_cursor(movies[limit - 1]) if more else None)
        return self._scan(q, limit, where)

    def _scan(self, q: Any, limit: int, where: MovieFilter) -> Page:
        picked: list[Movie] = []
        scanned, last, last_movie = 0, None, None
        size = max(1, min(FILTER_PAGE, self.max_scan))
        q = q.limit(size)
        while scanned < self.max_scan:
            page = self._stream(q if last is None else q.start_after(last))
            for snap in page:
                movie = from_document(snap.to_dict())
                if matches(movie, where):
                    picked.append(movie)
                    if len(picked) > limit:
                        return Page(picked[:limit], encode_cursor(picked[limit - 1]))
                last_movie = movie
            scanned += len(page)
            if len(page) < size:
                return Page(picked, None)  # read to the end
            last = page[-1]
        # Out of reads for this page: the next goes on after the last movie read.
        return Page(picked, encode_cursor(last_movie) if last_movie is not None else None)

    @translate_outages("firestore")
    def delete(self, movie_id: str) -> bool:
        ref = self.movies().document(movie_id)
        for _ in range(DELETE_ATTEMPTS):
            snap = ref.get(**self.rpc)
            METER.add("firestore.reads")
            if not snap.exists:
                return False
            movie = from_document(snap.to_dict())
            if movie.waiting_stage is not None or movie.running_stage is not None:
                raise Conflict(
                    "only a finished movie can be removed", details={"status": movie.status.value}
                )
            # Only the document read: a retry that made it wait again meanwhile keeps it. The
            # journal is a field of it; an idempotency key naming it is free again (create).
            unchanged = self.db().write_option(last_update_time=snap.update_time)
            try:
                ref.delete(option=unchanged, **self.rpc)
            except CONFLICTS:
                continue
            METER.add("firestore.deletes")
            return True
        raise Unavailable(f"firestore: lost {DELETE_ATTEMPTS} races deleting movie {movie_id}")

    @translate_outages("firestore")
    def paused_stages(self) -> frozenset[Stage]:
        at, paused = self._pauses
        if self.monotonic_pauses() - at < PAUSES_TTL_S:
            return paused
        snap = self._stages_ref().get(**self.rpc)
        METER.add("firestore.reads")
        names = set((snap.to_dict() or {}).get("paused") or []) if snap.exists else set()
        paused = frozenset(s for s in STAGES if s.value in names)
        self._pauses = (self.monotonic_pauses(), paused)
        return paused

    @translate_outages("firestore")
    def set_stage_paused(self, stage: Stage, paused: bool) -> None:
        change = firestore.ArrayUnion if paused else firestore.ArrayRemove
        self._stages_ref().set({"paused": change([stage.value])}, merge=True, **self.rpc)
        METER.add("firestore.writes")
        self._pauses = (float("-inf"), frozenset())  # read again at the next ask

    @translate_outages("firestore")
    def admission_paused(self) -> bool:
        at, paused = self._admission
        if self.monotonic_pauses() - at < PAUSES_TTL_S:
            return paused
        snap = self._admission_ref().get(**self.rpc)
        METER.add("firestore.reads")
        paused = bool(snap.exists and snap.get("paused"))
        self._admission = (self.monotonic_pauses(), paused)
        return paused

    @translate_outages("firestore")
    def set_admission_paused(self, paused: bool) -> None:
        self._admission_ref().set({"paused": paused}, **self.rpc)
        METER.add("firestore.writes")
        self._admission = (float("-inf"), False)  # read again at the next ask
