"""Firestore queue counters: waiting per time bucket and per stage, kept in each commit."""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.aggregation import AggregationQuery

from deepflix.adapters.gcp.firestore_docs import DOC_ID, MOVIES, eq
from deepflix.metering import METER
from deepflix.pipeline.models import STAGES, Movie, Stage, arrival_key

BUCKETS = "queue_buckets"
# Bucket widths in seconds, finest first; each divides the next by 100. A position sums, for
# each width, the buckets inside its own block of the next (few enough for one billed read),
# all the widest buckets before its own, and counts index entries only inside its finest bucket
# (ten seconds of arrivals). Time, not count, decides a movie's bucket, so a create reads no
# counter: nothing contends but the increments, which the shards spread.
WIDTHS = (10, 1_000, 100_000)
# Copies of every counter, picked by a hash of the movie id. Firestore sustains about one
# write a second per document, and every create increments the newest bucket of each width.
# The store derives its shards from the rate to sustain (COUNTER_WRITES per movie on each
# of a stage's counter documents: entering its queue and leaving it); SHARDS is what the
# position benchmark fills with. Only shards that movies reach exist, so a quiet queue's
# position matches few documents.
SHARDS = 8
COUNTER_WRITES = 2
# A bucket's key orders priority before time, so one range takes in every bucket of the
# priorities ahead and the earlier ones of the movie's own (seconds stay below 1e11).
PRIO_STRIDE = 10**11
# Firestore bills an aggregation one read per batch of up to this many index entries.
ENTRIES_PER_READ = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    return (at - _EPOCH) // timedelta(seconds=width) * width


def shard_of(movie_id: str, shards: int) -> int:
    # Stable across processes (str hashes are salted): a decrement meets its increment, so
    # every document holds a true count (the sums would be right with any shard).
    return zlib.crc32(movie_id.encode()) % shards


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
    return arrival_key(_EPOCH + timedelta(seconds=bucket_start(m.created_at, WIDTHS[0])))


def counted(
    m: Movie | None, shards: int, shard: int | None = None
) -> Counter[tuple[CounterDoc, str]]:
    """What one movie adds to the counters: its waiting place, one bucket per width, in
    `shard` (by default the hash of its id). A stage's waiting total is the sum of its
    widest buckets, so no document of its own is written per movie (a count per stage
    was two writes a movie per stage). Running movies are not counted here: a count() of
    the running_stage index gives them at one billed read up to 1,000 running."""
    out: Counter[tuple[CounterDoc, str]] = Counter()
    if m is None:
        return out
    shard = shard_of(m.id, shards) if shard is None else shard
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
    shards: int,
    *,
    old_shard: int | None = None,
    new_shard: int | None = None,
) -> Counter[tuple[CounterDoc, str]]:
    """The increments that take the counters from `old` to `new` (None: absent), each
    counted in its shard (by default the hash of the movie id)."""
    out = counted(new, shards, new_shard)
    out.subtract(counted(old, shards, old_shard))
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
    """Reads of the counters: a position in a few aggregations at any depth."""

    def __init__(self, *, db: Callable[[], Any], rpc: dict[str, Any]) -> None:
        self.db = db
        self.rpc = rpc

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
        out["read_time"] = _EPOCH + (row[0].read_time - _EPOCH)
        return out

    def stage_totals(self, stage: Stage) -> dict[str, Any]:
        """Waiting in `stage`, the sum of its widest buckets (every priority, every shard:
        one billed read per 1,000 of them, a day of arrivals is at most shards x priorities),
        and running there from a count() of the movies' running_stage index at the same
        read time."""
        q = self.db().collection(BUCKETS).where(filter=eq("stage", stage.value))
        q = q.where(filter=eq("width", WIDTHS[-1]))
        out = self._aggregate(q, ("n",), None)
        out["waiting"] = out.pop("n")
        runs = self.db().collection(MOVIES).where(filter=eq("running_stage", stage.value))
        running = self._aggregate(runs, (), out["read_time"])["matched"]
        return out | {"running": running, "running_matched": running}

    def counts(self) -> dict[Stage, tuple[int, int]]:
        """(waiting, running) per stage: one aggregation of a stage's shards each."""
        out = {}
        for s in STAGES:
            t = self.stage_totals(s)
            out[s] = (t["waiting"], t["running"])
        return out

    def position(self, movie: Movie, stage: Stage) -> Answer:
        """Movies ahead of `movie` in the stage's (priority, arrival, id) order, the stage's
        waiting and running, all read at one instant (the first answer's read time)."""
        totals = self.stage_totals(stage)
        at = totals["read_time"]
        matched = {"totals": totals["matched"], "running": totals["running_matched"]}
        ahead = 0
        if movie.waiting_stage is stage:
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
            ahead += own
            matched[f"own_{WIDTHS[0]}s"] = own
        return Answer(ahead, totals["waiting"], totals["running"], matched)

    def _own_bucket(self, movie: Movie, stage: Stage, read_time: Any) -> int:
        """Movies before `movie` inside its finest bucket, counted from the queue's index."""
        q = (
            self.db()
            .collection(MOVIES)
            .where(filter=eq("waiting_stage", stage.value))
            .where(filter=eq("prio", movie.request.priority.rank))
            .where(filter=firestore.FieldFilter("arrival", ">=", own_bucket_arrival(movie)))
            .order_by("arrival")
            .order_by(DOC_ID)
            .end_before({"arrival": arrival_key(movie.created_at), "__name__": movie.id})
        )
        return int(self._aggregate(q, (), read_time)["matched"])
