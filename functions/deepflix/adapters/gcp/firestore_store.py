"""Movie documents in Firestore: transactions, slot-guarded admission, count-query positions."""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.adapters.local.store import EWMA_WEIGHT
from deepflix.pipeline.errors import BadRequest, Unavailable
from deepflix.pipeline.models import STAGES, Movie, Stage, StageStatus, arrival_key
from deepflix.pipeline.ports import IdempotencyConflict, Mutation, Page, QueueCounts
from deepflix.pipeline.transitions import Transition

R = TypeVar("R")
Doc = dict[str, Any]
Snapshots = list[Any]  # spelled here: inside the store, `list` is a method

MOVIES, IDEMPOTENCY, QUEUES, STATS, CONTROL, JOURNAL = (
    "movies",
    "idempotency",
    "queues",
    "stats",
    "control",
    "journal",
)
# Fields kept beside the movie in its document so Firestore can index the queues
# (infra/firestore.indexes.json); the same derived columns the SQLite store keeps.
INDEX_FIELDS = ("arrival", "prio", "waiting_stage", "ready_at", "running_stage", "deadline")
DOC_ID = FieldPath.document_id()


def index_fields(m: Movie) -> Doc:
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


def _aborted(e: BaseException) -> bool:
    """Whether contention caused it (the client wraps the last Aborted in a ValueError, and a
    failed rollback may wrap that again)."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, gexc.Aborted):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Writes:
    """The writes of one transaction, issued after all of its reads (Firestore's rule).

    Each running slot of a stage is the movie's id in the array of `queues/{stage}`:
    taking or freeing one is part of the same transaction that changes the movie.
    """

    def __init__(self, store: FirestoreMovieStore, tx: Any) -> None:
        self.store = store
        self.tx = tx
        self.taken: dict[Stage, list[str]] = {}
        self.freed: dict[Stage, list[str]] = {}

    def save(self, old_doc: Doc, old: Movie, new: Movie) -> None:
        s = self.store
        ref = s.movies().document(new.id)
        seq = int(old_doc.get("journal_seq") or 0)
        finished = [
            st
            for st in STAGES
            if old.stages[st].status is StageStatus.running
            and new.stages[st].status is StageStatus.succeeded
        ]
        stats = {st: s.stats_ref(st).get(transaction=self.tx) for st in finished}  # reads first
        for st in STAGES:
            before, after = old.stages[st], new.stages[st]
            if before.status is not after.status:
                seq += 1
                entry = {
                    "stage": st.value,
                    "attempt": after.attempts,
                    "before": before.status.value,
                    "after": after.status.value,
                    "at": new.updated_at.isoformat(),
                }
                self.tx.create(ref.collection(JOURNAL).document(f"{seq:010d}"), entry)
        if old.running_stage is not new.running_stage:
            if old.running_stage is not None:
                self.freed.setdefault(old.running_stage, []).append(new.id)
            if new.running_stage is not None:
                self.taken.setdefault(new.running_stage, []).append(new.id)
        for st, snap in stats.items():
            seconds = new.stages[st].duration_s or 0.0
            prev = snap.to_dict() if snap.exists else None
            if prev is None:
                mean, samples = seconds, 1
            else:
                mean = float(prev["mean_s"]) * (1 - EWMA_WEIGHT) + EWMA_WEIGHT * seconds
                samples = int(prev.get("samples", 0)) + 1
            self.tx.set(s.stats_ref(st), {"stage": st.value, "mean_s": mean, "samples": samples})
        self.tx.set(ref, to_document(new, journal_seq=seq))

    def flush(self) -> None:
        # One write per slot document and direction, however many movies moved: array
        # transforms need no read, so freeing a slot adds no contention of its own.
        for st in STAGES:
            for ids, transform in (
                (self.taken, firestore.ArrayUnion),
                (self.freed, firestore.ArrayRemove),
            ):
                if ids.get(st):
                    self.tx.set(
                        self.store.slots_ref(st), {"running": transform(ids[st])}, merge=True
                    )


class FirestoreMovieStore:
    """`MovieStore` on Firestore.

    Collections: `movies/{id}` (the movie as JSON plus its index fields, and a `journal`
    subcollection), `idempotency/{sha256(key)}`, `queues/{stage}` (ids running there),
    `stats/{stage}` (mean stage duration), `control/admission` (paused flag).

    Admission never over-admits because every claim reads `queues/{stage}` and every change of
    a movie's running stage writes it, in the same transaction as the movie: two dispatchers
    that both saw a free slot cannot both commit.
    """

    def __init__(
        self,
        *,
        client: Any | Callable[[], Any],
        max_attempts: int = 40,
        rpc_timeout_s: float = 10.0,
        scan_page: int = 20,
        max_scan: int = 500,
    ) -> None:
        self._client: Lazy[Any] = Lazy(client)
        self.max_attempts = max_attempts
        self.rpc_timeout_s = rpc_timeout_s
        self.scan_page = scan_page
        self.max_scan = max_scan
        # The library's default for reads is to retry for up to 5 minutes; the API should
        # rather answer 503 while Firestore is away.
        self._rpc: dict[str, Any] = {
            "retry": gretry.Retry(
                initial=0.1,
                maximum=2.0,
                multiplier=2.0,
                timeout=rpc_timeout_s,
                predicate=gretry.if_transient_error,
            ),
            "timeout": rpc_timeout_s,
        }

    # -- references ----------------------------------------------------------------------

    def db(self) -> Any:
        return self._client.get()

    def movies(self) -> Any:
        return self.db().collection(MOVIES)

    def slots_ref(self, stage: Stage) -> Any:
        return self.db().collection(QUEUES).document(stage.value)

    def stats_ref(self, stage: Stage) -> Any:
        return self.db().collection(STATS).document(stage.value)

    def _admission_ref(self) -> Any:
        return self.db().collection(CONTROL).document("admission")

    def _key_ref(self, key: str) -> Any:
        return self.db().collection(IDEMPOTENCY).document(hashlib.sha256(key.encode()).hexdigest())

    # -- MovieStore ----------------------------------------------------------------------

    @translate_outages("firestore")
    def create(self, movie: Movie, *, idempotency_key: str | None, fingerprint: str) -> Movie:
        ref = self.movies().document(movie.id)
        if idempotency_key is None:
            ref.create(to_document(movie), **self._rpc)
            return movie
        key_ref = self._key_ref(idempotency_key)

        def body(tx: Any) -> Movie:
            seen = key_ref.get(transaction=tx, **self._rpc)
            if seen.exists:
                first = seen.to_dict()
                if first["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(first["movie_id"])
                existing = self.movies().document(first["movie_id"]).get(transaction=tx)
                if existing.exists:
                    return from_document(existing.to_dict())
                # The movie the key named is gone: the key is free again.
            tx.create(ref, to_document(movie))
            tx.set(key_ref, {"movie_id": movie.id, "fingerprint": fingerprint})
            return movie

        return self._transact(body)

    @translate_outages("firestore")
    def get(self, movie_id: str) -> Movie | None:
        snap = self.movies().document(movie_id).get(**self._rpc)
        return from_document(snap.to_dict()) if snap.exists else None

    @translate_outages("firestore")
    def mutate(self, movie_id: str, fn: Mutation) -> Transition | None:
        ref = self.movies().document(movie_id)

        def body(tx: Any) -> Transition | None:
            snap = ref.get(transaction=tx, **self._rpc)
            if not snap.exists:
                return None
            doc = snap.to_dict()
            movie = from_document(doc)
            t = fn(movie)
            if t.applied:
                writes = _Writes(self, tx)
                writes.save(doc, movie, t.movie)
                writes.flush()
            return t

        return self._transact(body)

    @translate_outages("firestore")
    def claim(self, stage: Stage, limit: int, now: datetime, fn: Mutation) -> list[Transition]:
        def body(tx: Any) -> list[Transition]:
            slots = self.slots_ref(stage).get(transaction=tx, **self._rpc)
            running = (slots.to_dict() or {}).get("running", []) if slots.exists else []
            free = limit - len(running)
            if free <= 0:
                return []
            writes = _Writes(self, tx)
            out = []
            for snap in self._ready(tx, stage, now, free):
                doc = snap.to_dict()
                movie = from_document(doc)
                t = fn(movie)
                if t.applied:
                    writes.save(doc, movie, t.movie)
                    out.append(t)
            writes.flush()
            return out

        return self._transact(body)

    @translate_outages("firestore")
    def position(self, movie: Movie, stage: Stage) -> tuple[int, int]:
        waiting = self._waiting(stage)
        key = {
            "prio": movie.request.priority.rank,
            "arrival": arrival_key(movie.created_at),
            "__name__": movie.id,
        }
        ahead = self._count(self._queue_order(waiting).end_before(key))
        return ahead, self._count(waiting)

    @translate_outages("firestore")
    def counts(self) -> dict[Stage, QueueCounts]:
        movies = self.movies()
        return {
            s: QueueCounts(
                waiting=self._count(self._waiting(s)),
                running=self._count(movies.where(filter=_eq("running_stage", s.value))),
            )
            for s in STAGES
        }

    @translate_outages("firestore")
    def running(self, stage: Stage) -> list[Movie]:
        q = self.movies().where(filter=_eq("running_stage", stage.value))
        return [from_document(s.to_dict()) for s in q.stream(**self._rpc)]

    @translate_outages("firestore")
    def overdue(self, now: datetime) -> list[Movie]:
        # Only a running stage has a deadline; a range filter skips the null ones.
        q = self.movies().where(filter=firestore.FieldFilter("deadline", "<", now))
        return [from_document(s.to_dict()) for s in q.stream(**self._rpc)]

    @translate_outages("firestore")
    def mean_durations(self) -> dict[Stage, float]:
        out: dict[Stage, float] = {}
        for snap in self.db().collection(STATS).stream(**self._rpc):
            if snap.id in Stage.__members__:
                out[Stage(snap.id)] = float(snap.get("mean_s"))
        return out

    @translate_outages("firestore")
    def admission_paused(self) -> bool:
        snap = self._admission_ref().get(**self._rpc)
        return bool(snap.exists and snap.get("paused"))

    @translate_outages("firestore")
    def set_admission_paused(self, paused: bool) -> None:
        self._admission_ref().set({"paused": paused}, **self._rpc)

    @translate_outages("firestore")
    def journal(self, movie_id: str) -> list[dict[str, object]]:
        entries = self.movies().document(movie_id).collection(JOURNAL).order_by(DOC_ID)
        keys = ("stage", "attempt", "before", "after", "at")
        return [{k: s.get(k) for k in keys} for s in entries.stream(**self._rpc)]

    @translate_outages("firestore")
    def list(self, *, owner: str | None, limit: int, cursor: str | None) -> Page:
        q = self.movies()
        if owner is not None:
            q = q.where(filter=_eq("owner", owner))
        q = q.order_by("arrival", direction=firestore.Query.DESCENDING).order_by(
            DOC_ID, direction=firestore.Query.DESCENDING
        )
        if cursor is not None:
            arrival, movie_id = decode_cursor(cursor)
            q = q.start_after({"arrival": arrival, "__name__": movie_id})
        snaps = list(q.limit(limit + 1).stream(**self._rpc))
        movies = [from_document(s.to_dict()) for s in snaps[:limit]]
        more = len(snaps) > limit
        return Page(movies, encode_cursor(movies[-1]) if more and movies else None)

    # -- helpers -------------------------------------------------------------------------

    def _waiting(self, stage: Stage) -> Any:
        return self.movies().where(filter=_eq("waiting_stage", stage.value))

    @staticmethod
    def _queue_order(q: Any) -> Any:
        return q.order_by("prio").order_by("arrival").order_by(DOC_ID)

    def _count(self, q: Any) -> int:
        (result,) = q.count(alias="n").get(**self._rpc)
        return int(result[0].value)

    def _ready(self, tx: Any, stage: Stage, now: datetime, wanted: int) -> Snapshots:
        """The first `wanted` movies of the stage's queue whose backoff is over.

        Movies still backing off (a retry's ready_at) are skipped here rather than in the
        query, so the queue needs only the (waiting_stage, prio, arrival, id) index; at most
        `max_scan` are looked at, which bounds a dispatch when many retries back off at once.
        """
        q = self._queue_order(self._waiting(stage)).limit(self.scan_page)
        picked: Snapshots = []
        scanned = 0
        last = None
        while len(picked) < wanted and scanned < self.max_scan:
            page_q = q if last is None else q.start_after(last)
            page = list(page_q.stream(transaction=tx, **self._rpc))
            for snap in page:
                ready_at = snap.get("ready_at")
                if ready_at is None or ready_at <= now:
                    picked.append(snap)
                    if len(picked) == wanted:
                        break
            scanned += len(page)
            if len(page) < self.scan_page:
                break
            last = page[-1]
        return picked

    def _transact(self, body: Callable[[Any], R]) -> R:
        """Run `body` in a transaction, again and again while it loses to a concurrent one.

        The client retries only a failed commit; under contention a read can be aborted
        too, so the whole attempt is retried here, with jittered backoff.
        """
        for attempt in range(1, self.max_attempts + 1):
            tx = self.db().transaction(max_attempts=1)
            try:
                result: R = firestore.transactional(body)(tx)
                return result
            except (gexc.Aborted, ValueError) as e:
                if not _aborted(e):
                    raise
            time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))
        raise Unavailable(f"firestore: transaction lost to contention {self.max_attempts} times")


def _eq(field: str, value: object) -> Any:
    return firestore.FieldFilter(field, "==", value)
