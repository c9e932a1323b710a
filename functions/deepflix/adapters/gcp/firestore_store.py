"""Movie documents in Firestore: optimistic transactions, slot-guarded admission, counts."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from deepflix.adapters.gcp.clients import Lazy, translate_outages
from deepflix.adapters.gcp.eta_durations import DurationHistograms
from deepflix.adapters.gcp.firestore_claim import ClaimReads, free_slots
from deepflix.adapters.gcp.firestore_docs import (
    DOC_ID,
    MOVIES,
    eq,
    from_document,
    shard_count,
    slot_shards,
    to_document,
)
from deepflix.adapters.gcp.firestore_operator import FirestoreOperator
from deepflix.adapters.gcp.firestore_outbox import Outboxes
from deepflix.adapters.gcp.firestore_slots import ClaimTurns, SlotFinder, spread
from deepflix.adapters.gcp.firestore_txn import CONFLICTS, JOURNAL, Txn
from deepflix.adapters.gcp.owner_usage import owner_usage
from deepflix.adapters.gcp.queue_counts import (
    COUNT_SHARD,
    COUNTER_WRITES,
    DEEP_AFTER,
    QueueCounters,
)
from deepflix.adapters.gcp.stage_means import StageMeans
from deepflix.metering import METER
from deepflix.pipeline.errors import Unavailable
from deepflix.pipeline.eta import WindowedRuns
from deepflix.pipeline.journal import JournalEntry
from deepflix.pipeline.models import (
    Movie,
    Outgoing,
    Priority,
    Stage,
)
from deepflix.pipeline.ports import IdempotencyConflict, Mutation, QueueCounts
from deepflix.pipeline.quotas import OwnerUsage
from deepflix.pipeline.transitions import Decision

R = TypeVar("R")
Snapshots = list[Any]  # spelled out here: inside the store, `list` is a method
Movies = list[Movie]
IDEMPOTENCY = "idempotency"


class FirestoreMovieStore(FirestoreOperator):
    """`MovieStore` on Firestore.

    Collections: `movies/{id}` (the movie as JSON plus its index fields and its
    `journal`, a list), `idempotency/{sha256(owner, key)}`, `queues/{stage}-{k}` (slot
    shards: the ids running in the k-th share of the stage's concurrency, and the duration
    sums of the runs that freed a slot there, by blind increments), `control/admission`
    (paused flag), `control/stages` (paused queues), and the queue counters
    `queue_buckets/...` (queue_counts.py; a stage's waiting is the sum of its widest).

    No document is written by every movie: a stage's concurrency is split over K slot shards
    (K from the concurrency and `target_rate`, slot_shards()), the counters over their own
    shards, and the duration sums ride on the slot shards' frees (ADR 0031). Admission never
    over-admits: each shard holds at most its share of the limit, a claim commits only if
    every shard it takes slots in is unchanged since it counted them, and every change of a
    running stage changes that shard in the same commit.
    """

    def __init__(
        self,
        *,
        client: Any | Callable[[], Any],
        max_attempts: int = 50,
        rpc_timeout_s: float = 10.0,
        scan_page: int = 20,
        max_scan: int = 500,
        counter_shards: int | None = None,
        target_rate: float = 100.0,
        max_probes: int = 8,
        claim_spread: int = 8,
        deep_after: int = DEEP_AFTER,
    ) -> None:
        self._client: Lazy[Any] = Lazy(client)
        # Each counter document is written twice per movie (it enters the stage's queue,
        # it leaves it): shards for the target rate, unless given.
        self.shards = counter_shards or shard_count(target_rate, writes_per_movie=COUNTER_WRITES)
        # Movies a second per stage the slot shards (and so the duration sums) are sized for.
        self.target_rate = target_rate
        self.max_attempts = max_attempts
        self.scan_page = scan_page
        self.max_scan = max_scan
        # The library retries reads for up to 5 minutes by default; the API should rather
        # answer 503 while Firestore is away.
        retry = gretry.Retry(
            initial=0.1, maximum=2.0, timeout=rpc_timeout_s, predicate=gretry.if_transient_error
        )
        self.rpc: dict[str, Any] = {"retry": retry, "timeout": rpc_timeout_s}
        # Movies a stage's queue holds uncounted before new arrivals are counted (ADR 0026).
        self.counters = QueueCounters(db=self.db, rpc=self.rpc, deep_after=deep_after)
        self.eta_durations = DurationHistograms(db=self.db, rpc=self.rpc)
        self.stage_means = StageMeans(db=self.db, rpc=self.rpc)
        # Free slot shards with room: at most `max_probes` returned by a claim's query.
        self.slots = SlotFinder(db=self.db, rpc=self.rpc, max_probes=max_probes)
        # One claim of a stage at a time in this process (claim()); what each reads.
        self._turns = ClaimTurns()
        self.reads = ClaimReads(slots=self.slots, ready=self._ready, claim_spread=claim_spread)
        # Marks that keep the drain's index true, from the versions this process knows.
        self.outboxes = Outboxes(
            movies=self.movies, write_option=lambda **kw: self.db().write_option(**kw)
        )

    def _stream(self, query: Any) -> Snapshots:
        """Run a query; Firestore bills a read per document returned, at least one per query."""
        snaps = list(query.stream(**self.rpc))
        METER.add("firestore.reads", max(1, len(snaps)))
        return snaps

    def db(self) -> Any:
        return self._client.get()

    def movies(self) -> Any:
        return self.db().collection(MOVIES)

    @translate_outages("firestore")
    def create(self, movie: Movie, *, idempotency_key: str | None, fingerprint: str) -> Movie:
        ref = self.movies().document(movie.id)
        if idempotency_key is None:
            tx = self._txn()
            tx.create(ref, to_document(movie) | {COUNT_SHARD: tx.count(None, movie)})
            try:
                tx.commit()
            except gexc.AlreadyExists:
                # A retried create whose first try went through; anything else is a bug.
                if self.get(movie.id) != movie:
                    raise
            return movie
        # Each owner's keys are their own (ADR 0017): another owner's same key is another
        # document, so it can neither return nor reveal their movie. The owner's length
        # first keeps ("a:b", "c") and ("a", "b:c") apart.
        scoped = f"{len(movie.owner)}:{movie.owner}:{idempotency_key}"
        digest = hashlib.sha256(scoped.encode()).hexdigest()
        key_ref = self.db().collection(IDEMPOTENCY).document(digest)

        def body(tx: Txn) -> Movie:
            seen = tx.get(key_ref)
            if seen.exists:
                first = seen.to_dict()
                if first["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(first["movie_id"])
                existing = self.get(first["movie_id"])
                if existing is not None:
                    return existing
                # The movie the key named is gone: the key is free again.
            tx.create(ref, to_document(movie) | {COUNT_SHARD: tx.count(None, movie)})
            tx.replace(key_ref, {"movie_id": movie.id, "fingerprint": fingerprint})
            tx.commit()
            return movie

        return self._transact(body)

    @translate_outages("firestore")
    def get(self, movie_id: str) -> Movie | None:
        snap = self.movies().document(movie_id).get(**self.rpc)
        METER.add("firestore.reads")
        return from_document(snap.to_dict()) if snap.exists else None

    @translate_outages("firestore")
    def mutate(self, movie_id: str, fn: Mutation) -> Decision | None:
        ref = self.movies().document(movie_id)

        def body(tx: Txn) -> Decision | None:
            snap = tx.get(ref)
            if not snap.exists:
                return None
            doc = snap.to_dict()
            movie = from_document(doc)
            decision = fn(movie)
            if decision.applied:
                tx.save(doc, movie, decision.movie)
                tx.commit()
            return decision

        return self._transact(body)

    @translate_outages("firestore")
    def claim(self, stage: Stage, limit: int, now: datetime, fn: Mutation) -> list[Decision]:
        """Claim ready movies of `stage` for its free slots.

        Claims of one stage in this process run one at a time, and a claim whose turn comes
        after another one started since it asked returns [] at once: that one read the
        slots and the queue after this was asked for, so it took what this would have (its
        caller follows its decisions). Claims of other processes still race; a lost race
        is a retry (_transact).
        """
        return self._turns.run(stage, now, lambda at: self._claim(stage, limit, at, fn))

    def _claim(self, stage: Stage, limit: int, now: datetime, fn: Mutation) -> list[Decision]:
        caps = slot_shards(limit, self.target_rate)
        most = min(limit, self.scan_page)
        tries = 0

        def body(tx: Txn) -> list[Decision]:
            nonlocal tries
            tries += 1
            if tries > 1:  # the last try lost a race to another process's claim
                self.reads.lost_race(stage)
                self.slots.forget_absent(stage)
            ready, room = self.reads.read(tx, stage, caps, most, now)
            if not ready or not free_slots(room, caps):
                return []
            shards = self.slots.order(stage, room, caps, racing=self.reads.racing(stage))
            out = []
            for snap, k in zip(spread(ready, len(shards)), shards, strict=False):
                tx.saw(snap)
                doc = snap.to_dict()
                movie = from_document(doc)
                decision = fn(movie)
                if decision.applied:
                    tx.slot_for[movie.id] = k
                    tx.save(doc, movie, decision.movie)
                    out.append(decision)
            tx.commit(slots={(stage, k): (r, caps[k]) for k, r in room.items()})
            self.slots.created(stage, len(caps), tx.slot_for.values())
            return out

        return self._transact(body)

    @translate_outages("firestore")
    def position(self, movie: Movie, stage: Stage) -> tuple[int, int, int]:
        # From the counters kept in every commit: a few reads at any depth (ADR 0008).
        answer = self.counters.position(movie, stage)
        return answer.ahead, answer.total, answer.running

    @translate_outages("firestore")
    def running_counts(self) -> dict[Stage, int]:
        return self.counters.running_counts()

    @translate_outages("firestore")
    def ahead(self, movie: Movie, stage: Stage) -> int:
        return self.counters.ahead(movie, stage)

    @translate_outages("firestore")
    def counts(self) -> dict[Stage, QueueCounts]:
        return {s: QueueCounts(w, r) for s, (w, r) in self.counters.counts().items()}

    @translate_outages("firestore")
    def prune(self, limit: int = 500) -> int:
        return self.counters.prune(limit)

    @translate_outages("firestore")
    def running(self, stage: Stage) -> Movies:
        q = self.movies().where(filter=eq("running_stage", stage.value))
        return [from_document(s.to_dict()) for s in self._stream(q)]

    @translate_outages("firestore")
    def waiting_heads(self, stage: Stage) -> Movies:
        # One read a priority, on the queue's own index (waiting_stage, prio, arrival).
        heads = []
        for rank in sorted({p.rank for p in Priority}):
            q = self._queue_order(self._waiting(stage).where(filter=eq("prio", rank)))
            heads += [from_document(s.to_dict()) for s in self._stream(q.limit(1))]
        return heads

    @translate_outages("firestore")
    def overdue(self, now: datetime) -> Movies:
        # Only a running stage has a deadline; a range filter skips the null ones.
        q = self.movies().where(filter=firestore.FieldFilter("deadline", "<", now))
        return [from_document(s.to_dict()) for s in self._stream(q)]

    @translate_outages("firestore")
    def sent(self, movie_id: str, messages: Sequence[Outgoing]) -> None:
        self.outboxes.sent(movie_id, messages, self.rpc)

    @translate_outages("firestore")
    def unsent(self, limit: int, before: datetime | None = None) -> Movies:
        return self.outboxes.unsent(limit, before, self._stream)

    @translate_outages("firestore")
    def mean_durations(self) -> dict[Stage, float]:
        # Reused for a few seconds per instance (stage_means.py says why that is safe).
        return self.stage_means.read()

    @translate_outages("firestore")
    def duration_history(self) -> WindowedRuns:
        return self.eta_durations.read()

    @translate_outages("firestore")
    def journal(self, movie_id: str) -> list[dict[str, object]]:
        snap = self.movies().document(movie_id).get(**self.rpc)
        METER.add("firestore.reads")
        entries = (snap.to_dict() or {}).get(JOURNAL) or [] if snap.exists else []
        return [{k: e.get(k) for k in JournalEntry._fields} for e in entries]

    @translate_outages("firestore")
    def owner_usage(self, owner: str, since: datetime) -> OwnerUsage:
        return owner_usage(self.movies(), owner, since, self.rpc)

    def _waiting(self, stage: Stage) -> Any:
        return self.movies().where(filter=eq("waiting_stage", stage.value))

    @staticmethod
    def _queue_order(q: Any) -> Any:
        return q.order_by("prio").order_by("arrival").order_by(DOC_ID)

    def _ready(self, stage: Stage, now: datetime, wanted: int) -> Snapshots:
        """The first `wanted` movies of the stage's queue whose backoff is over.

        Movies still backing off (a retry's ready_at) are skipped here rather than in the
        query, so the queue needs only the (waiting_stage, prio, arrival, id) index; at most
        `max_scan` are looked at, which bounds a dispatch when many retries back off at once.
        """
        q = self._queue_order(self._waiting(stage)).limit(max(1, min(self.scan_page, wanted)))
        picked: Snapshots = []
        scanned, last = 0, None
        while len(picked) < wanted and scanned < self.max_scan:
            page = self._stream(q if last is None else q.start_after(last))
            for snap in page:
                ready_at = snap.get("ready_at")
                if (ready_at is None or ready_at <= now) and len(picked) < wanted:
                    picked.append(snap)
            scanned += len(page)
            if len(page) < max(1, min(self.scan_page, wanted)):
                break
            last = page[-1]
        return picked

    def _txn(self) -> Txn:
        return Txn(
            self.db(),
            rpc=self.rpc,
            shards=self.shards,
            deep=self.counters.deep,
        )

    def _transact(self, body: Callable[[Txn], R]) -> R:
        """Run `body` in a fresh transaction until it commits without losing a race."""
        for attempt in range(1, self.max_attempts + 1):
            tx = self._txn()
            try:
                result = body(tx)
            except CONFLICTS:
                METER.add("firestore.conflicts")
            else:
                METER.add("firestore.commits")
                for movie_id, (version, outbox) in tx.committed.items():
                    self.outboxes.remember(movie_id, version, outbox)
                return result
            # Jittered backoff, so the losers of one race do not all meet again in the next.
            time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))  # nosec B311 # retry jitter, not a secret
        raise Unavailable(f"firestore: lost {self.max_attempts} races for the same documents")
