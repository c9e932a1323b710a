"""Firestore queue counters: waiting per time bucket, kept in each commit of a deep queue."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.aggregation import AggregationQuery

from deepflix.adapters.gcp.firestore_docs import DOC_ID, EPOCH, MOVIES, eq, stable_shard
from deepflix.metering import METER
from deepflix.pipeline.models import STAGES, Movie, Stage, arrival_key

BUCKETS = "queue_buckets"
# Bucket widths in seconds, finest first; each divides the next by 100. A position sums, for
# each width, the buckets inside its own block of the next (few enough for one billed read),
# all the widest buckets before its own, and counts index entries only inside its finest bucket
# (ten seconds of arrivals). Time, not count, decides a movie's bucket, so a create reads no
# counter: nothing contends but the increments, which the shards spread.
WIDTHS = (10, 1_000, 100_000)
# Copies of every counter. Firestore sustains about one write a second per document, and
# every counted arrival increments the newest bucket of each width. The store derives its
# shards from the rate to sustain (COUNTER_WRITES per movie on each of a stage's counter
# documents: entering its queue and leaving it); SHARDS is what the position benchmark fills
# with. Only shards that movies reach exist, so a quiet queue's position matches few documents.
SHARDS = 8
COUNTER_WRITES = 2
# A movie entering a stage's queue is counted in the buckets only when this many already
# wait there uncounted (ADR 0026): up to then a count() of the queue's index finds the
# movies ahead in one billed read (up to 1,000 entries; the margin covers the staleness of
# the decision's cached count and parallel entries), and the 6 bucket writes a movie and
# stage are spent only where a queue is deep.
DEEP_AFTER = 500
# How long a process decides on one count of a stage's uncounted waiting movies (plus the
# ones it added since): at 100 arrivals a second, a few hundred past DEEP_AFTER at worst.
DEEP_TTL_S = 1.0
# A bucket's key orders priority before time, so one range takes in every bucket of the
# priorities ahead and the earlier ones of the movie's own (seconds stay below 1e11).
PRIO_STRIDE = 10**11
# The movie document's field naming its counter shard while it waits counted (else None).
COUNT_SHARD = "count_shard"
# Firestore bills an aggregation one read per batch of up to this many index entries.
ENTRIES_PER_READ = 1000


@dataclass(frozen=True)
class CounterDoc:
    """A counter document: where it lives and the fields that say what it counts."""

    collection: str
    id: str
    labels: tuple[tuple[str, object], ...]
    # Written on every change, even unchanged: an aggregation that sums a field matches
    # only the documents that have it, and would miss the others in its count.
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """A position with the index entries each of its aggregations matched (its billing)."""

    ahead: int
    total: int
    running: int
    matched: dict[str, int]

    @property
    def billed_reads(self) -> int:
        return sum(max(1, math.ceil(n / ENTRIES_PER_READ)) for n in self.matched.values())


def bucket_start(at: datetime, width: int) -> int:
    """Start, in whole seconds since the epoch, of the bucket of `width` holding `at`.

    Integer arithmetic: a float timestamp can round a microsecond before a boundary onto it.
    """
    return (at - EPOCH) // timedelta(seconds=width) * width


def shard_of(movie_id: str, shards: int) -> int:
    """A stable shard for a movie (the benchmarks' fills; the store takes shards in turn)."""
    return stable_shard(movie_id, shards)


def bucket_ranges(m: Movie) -> list[tuple[int, int | None, int]]:
    """(width, first key or None, key after the last) of the buckets before `m`'s finest
    one that hold the movies ahead of it: every bucket of the priorities ahead and the
    earlier ones of its own at the widest width, then at each finer width those inside
    its own block of the next width. Together with its own finest bucket they cover the
    queue before it exactly once."""
    base = m.request.priority.rank * PRIO_STRIDE
    ranges: list[tuple[int, int | None, int]] = [
        (WIDTHS[-1], None, base + bucket_start(m.created_at, WIDTHS[-1]))
    ]
    for width, parent in itertools.pairwise(WIDTHS):
        since = base + bucket_start(m.created_at, parent)
        ranges.append((width, since, base + bucket_start(m.created_at, width)))
    return ranges


def own_bucket_arrival(m: Movie) -> str:
    """The arrival key where `m`'s finest bucket starts."""
    return arrival_key(EPOCH + timedelta(seconds=bucket_start(m.created_at, WIDTHS[0])))


def counted(m: Movie | None, shard: int | None) -> Counter[tuple[CounterDoc, str]]:
    """What one movie adds to the counters: its waiting place, one bucket per width, in
    `shard`; nothing for a movie not counted (`shard` None: its queue was shallow when it
    entered, and a count() of the index finds it). A stage's counted waiting is the sum of
    its widest buckets, so no document of its own is written per movie. Running movies are
    not counted here: a count() of the running_stage index gives them at one billed read up
    to 1,000 running."""
    out: Counter[tuple[CounterDoc, str]] = Counter()
    if m is None or shard is None:
        return out
    waiting = m.waiting_stage
    if waiting is not None:
        prio = m.request.priority.rank
        for width in WIDTHS:
            key = prio * PRIO_STRIDE + bucket_start(m.created_at, width)
            labels = (("stage", waiting.value), ("width", width), ("key", key))
            doc = CounterDoc(BUCKETS, f"{waiting.value}-{width}-{key}-{shard}", labels, ("n",))
            out[doc, "n"] += 1
    return out


def deltas(
    old: Movie | None,
    new: Movie | None,
    *,
    old_shard: int | None,
    new_shard: int | None,
) -> Counter[tuple[CounterDoc, str]]:
    """The increments that take the counters from `old` to `new` (None: absent), each
    counted in its shard (None: not counted)."""
    out = counted(new, new_shard)
    out.subtract(counted(old, old_shard))
    return Counter({k: v for k, v in out.items() if v})


def by_document(changes: Counter[tuple[CounterDoc, str]]) -> dict[CounterDoc, dict[str, int]]:
    """Every counted field of each changed document (0 if unchanged), one entry per
    document: a commit may write a document only once."""
    out: dict[CounterDoc, dict[str, int]] = {}
    for (doc, name), n in changes.items():
        if n:
            out.setdefault(doc, dict.fromkeys(doc.fields, 0))[name] = n
    return out


def increment(batch: Any, db: Any, docs: dict[CounterDoc, dict[str, int]]) -> int:
    """Add the documents' changes (by_document) to `batch` as increments, which need no
    read; returns the documents written."""
    for doc, fields in docs.items():
        data = dict(doc.labels) | {k: firestore.Increment(v) for k, v in fields.items()}
        batch.set(db.collection(doc.collection).document(doc.id), data, merge=True)
    return len(docs)


class QueueCounters:
    """Reads of the counters: a position in a few aggregations at any depth, and whether
    a stage's queue is deep enough for a new arrival to be counted."""

    def __init__(
        self,
        *,
        db: Callable[[], Any],
        rpc: dict[str, Any],
        deep_after: int = DEEP_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.rpc = rpc
        self.deep_after = deep_after
        self.monotonic = monotonic
        self._lock = threading.Lock()
        # Per stage: when the uncounted waiting were counted, and that count plus the
        # uncounted entries this process made since (departures are not subtracted: the
        # decision errs towards counting).
        self._uncounted: dict[Stage, tuple[float, int]] = {}

    def deep(self, stage: Stage) -> bool:
        """Whether a movie entering `stage`'s queue now is counted in its buckets; an
        uncounted one is added to this process's figure at once."""
        now = self.monotonic()
        with self._lock:
            seen = self._uncounted.get(stage)
        if seen is None or now - seen[0] >= DEEP_TTL_S:
            n = self._aggregate(self._uncounted_query(stage), (), None)["matched"]
            seen = (now, n)
        deep = seen[1] >= self.deep_after
        with self._lock:
            self._uncounted[stage] = (seen[0], seen[1] + (0 if deep else 1))
        return deep

    def _aggregate(self, query: Any, fields: Iterable[str], read_time: Any) -> dict[str, Any]:
        """Sums of `fields` and the entries matched, as of `read_time` (None: now)."""
        agg = AggregationQuery(query).count(alias="matched")
        for name in fields:
            agg = agg.sum(name, alias=name)
        (row,) = agg.get(read_time=read_time, **self.rpc)
        METER.add("firestore.reads")  # one aggregation; billed per 1,000 entries matched
        out: dict[str, Any] = {r.alias: int(r.value) for r in row}
        # A plain datetime: Firestore takes read times to the microsecond, and a response's
        # may carry nanoseconds.
        out["read_time"] = EPOCH + (row[0].read_time - EPOCH)
        return out

    def _queue(self, stage: Stage) -> Any:
        return self.db().collection(MOVIES).where(filter=eq("waiting_stage", stage.value))

    def _widest(self, stage: Stage) -> Any:
        """The stage's widest buckets: their sum is its counted waiting."""
        q = self.db().collection(BUCKETS).where(filter=eq("stage", stage.value))
        return q.where(filter=eq("width", WIDTHS[-1]))

    def _uncounted_query(self, stage: Stage) -> Any:
        return self._queue(stage).where(filter=eq(COUNT_SHARD, None))

    def stage_totals(self, stage: Stage) -> dict[str, Any]:
        """Waiting in `stage`: the sum of its widest buckets (every priority, every shard:
        one billed read per 1,000 of them, a day of arrivals is at most shards x priorities)
        and a count() of the uncounted (at most about DEEP_AFTER); running there from a
        count() of the movies' running_stage index; all at the first read's time."""
        out = self._aggregate(self._widest(stage), ("n",), None)
        at = out["read_time"]
        uncounted = self._aggregate(self._uncounted_query(stage), (), at)["matched"]
        with self._lock:  # a fresh figure for the next decision, at no extra read
            self._uncounted[stage] = (self.monotonic(), uncounted)
        runs = self.db().collection(MOVIES).where(filter=eq("running_stage", stage.value))
        running = self._aggregate(runs, (), at)["matched"]
        return out | {
            "counted": out["n"],
            "waiting": out.pop("n") + uncounted,
            "uncounted": uncounted,
            "running": running,
        }

    def counts(self) -> dict[Stage, tuple[int, int]]:
        """(waiting, running) per stage: three aggregations a stage."""
        out = {}
        for s in STAGES:
            t = self.stage_totals(s)
            out[s] = (t["waiting"], t["running"])
        return out

    def running_counts(self) -> dict[Stage, int]:
        """Running per stage: a count() of the running_stage index each (a third of
        counts()'s reads)."""
        out = {}
        for s in STAGES:
            runs = self.db().collection(MOVIES).where(filter=eq("running_stage", s.value))
            out[s] = int(self._aggregate(runs, (), None)["matched"])
        return out

    def position(self, movie: Movie, stage: Stage) -> Answer:
        """Movies ahead of `movie` in the stage's (priority, arrival, id) order, the stage's
        waiting and running, all read at one instant (the first answer's read time)."""
        totals = self.stage_totals(stage)
        at = totals["read_time"]
        matched = {
            "totals": totals["matched"],
            "uncounted": totals["uncounted"],
            "running": totals["running"],
        }
        ahead = 0
        if movie.waiting_stage is stage:
            ahead = self._ahead(movie, stage, bool(totals["counted"]), at, matched)
        return Answer(ahead, totals["waiting"], totals["running"], matched)

    def ahead(self, movie: Movie, stage: Stage) -> int:
        """Only the movies ahead of `movie` (the ETA's later queues): the counted waiting's
        sum says whether any are counted, and its read time is the others'; two
        aggregations fewer than a position."""
        if movie.waiting_stage is not stage:
            return 0
        got = self._aggregate(self._widest(stage), ("n",), None)
        return self._ahead(movie, stage, bool(got["n"]), got["read_time"], {})

    def _ahead(
        self, movie: Movie, stage: Stage, counted: bool, at: Any, matched: dict[str, int]
    ) -> int:
        """The movies ahead of `movie` waiting in `stage`, as of `at`; the entries each
        aggregation matched go into `matched`.

        With nothing counted in the stage, every movie ahead is in the index: one count().
        Otherwise the counted ones before its finest bucket come from the bucket sums, the
        uncounted ones before it from a count() of them, and its finest bucket's from a
        count() of the index (counted or not)."""
        if not counted:
            q = self._queue(stage).order_by("prio").order_by("arrival").order_by(DOC_ID)
            ahead = int(self._aggregate(q.end_before(_cursor(movie)), (), at)["matched"])
            matched["ahead"] = ahead
            return ahead
        ahead = 0
        buckets = self.db().collection(BUCKETS).where(filter=eq("stage", stage.value))
        for width, since, before in bucket_ranges(movie):
            q = buckets.where(filter=eq("width", width))
            if since is not None:
                q = q.where(filter=firestore.FieldFilter("key", ">=", since))
            q = q.where(filter=firestore.FieldFilter("key", "<", before))
            got = self._aggregate(q, ("n",), at)
            ahead += got["n"]
            matched[f"buckets_{width}s"] = got["matched"]
        own = self._own_bucket(movie, stage, at)
        q = self._uncounted_query(stage).order_by("prio").order_by("arrival")
        start = {"prio": movie.request.priority.rank, "arrival": own_bucket_arrival(movie)}
        before_own = self._aggregate(q.order_by(DOC_ID).end_before(start), (), at)["matched"]
        matched[f"own_{WIDTHS[0]}s"] = own
        matched["uncounted_before"] = before_own
        return int(ahead + own + before_own)

    def prune(self, limit: int) -> int:
        """Housekeeping for the sweep: delete up to `limit` emptied bucket documents
        (ADR 0008), which only lengthen the sums.

        Each delete holds only if the document is unchanged since it was read at 0; one
        incremented meanwhile is in use again and stays (an increment after the delete
        creates it afresh). Returns the documents deleted.
        """
        db = self.db()
        snaps = list(
            db.collection(BUCKETS).where(filter=eq("n", 0)).limit(limit).stream(**self.rpc)
        )
        METER.add("firestore.reads", max(1, len(snaps)))
        deleted = 0
        for snap in snaps:
            unchanged = db.write_option(last_update_time=snap.update_time)
            try:
                snap.reference.delete(option=unchanged, **self.rpc)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                continue  # changed since it was read: in use again
            deleted += 1
        METER.add("firestore.deletes", deleted)
        return deleted

    def _own_bucket(self, movie: Movie, stage: Stage, read_time: Any) -> int:
        """Movies before `movie` inside its finest bucket, counted from the queue's index."""
        q = (
            self._queue(stage)
            .where(filter=eq("prio", movie.request.priority.rank))
            .where(filter=firestore.FieldFilter("arrival", ">=", own_bucket_arrival(movie)))
            .order_by("arrival")
            .order_by(DOC_ID)
            .end_before({"arrival": arrival_key(movie.created_at), "__name__": movie.id})
        )
        return int(self._aggregate(q, (), read_time)["matched"])


def _cursor(m: Movie) -> dict[str, Any]:
    """`m`'s place in the queue's (prio, arrival, id) order."""
    return {"prio": m.request.priority.rank, "arrival": arrival_key(m.created_at), "__name__": m.id}
