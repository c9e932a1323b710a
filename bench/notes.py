"""What limits each figure: the profiling findings that RESULTS.md prints under each table."""

from __future__ import annotations

# Findings from profiling on 2026-11-29 (py-spy 0.4.3 with --gil, pyinstrument-free cProfile
# of a single-threaded driver, strace -c/-k) and from experiments on scratch copies of the
# service, 300 movies each. Figures here are from those sessions, not from the tables above.
# How the committed run went; printed under the header of RESULTS.md.
CONDITIONS = (
    "Four full runs were made on 2026-11-29 while others kept committing; this is the "
    "fourth, with the code fixed for the whole run (git archive of the commit above, "
    "imported through PYTHONPATH). The machine was shared with other sessions' test suites "
    "in every run (load averages before each benchmark are under its table); ours and "
    "BullMQ are interleaved run by run, so the ratios hold better than the absolute figures. "
    "Earlier runs, for comparison: run 1 (commit a124a6a, artifacts copied): ratio 0.098 "
    "(ours 18.1 movies/s, BullMQ 218), API 282 req/s live, status/position p99 234/258 ms, "
    "position at 100k 35-65 ms in-process, rendering 2.74x. Run 3 (7ca4f2d: hard-linked "
    "artifacts, position without the GROUP BY): ratio 0.155 (25.4 vs 163), API 439 req/s "
    "live with p99 117/113 ms, position at 100k 8-24 ms, rendering 3.46x (the ceiling "
    "moves most with load: 4.7 to 9.96 video s per s across runs)."
)

NOTES: dict[str, str] = {
    "pipeline": (
        "Ours stays at 12-22 movies/s whatever the worker count (1-8) or stage concurrency "
        "(1-8): the cost is per movie, not a lack of slots. Per movie the embedded adapters "
        "do about 37 SQLite write transactions (instrumented: 12 movie-document mutations, 6 "
        "of them per-scene progress reports; 6 claims; 1 create; on queue.db 4 enqueues "
        "(admission + 3 deadline tasks), 3 publishes, ~7 leases of which ~3 find nothing, 4 "
        "acks) and about 50 file-system operations (a temporary directory per stage, inputs "
        "copied in, outputs copied out through write-beside-and-rename). Two things dominate. "
        "(1) File creation on this disk: `io.open` is 41% of a single-threaded run's time "
        "(cProfile, 0.55 ms per created file); the same run with data and temp dirs on tmpfs "
        "does 86 movies/s instead of 19. (2) GIL hand-offs: the sqlite3 module releases the "
        "GIL around every statement and re-taking it with 10-25 live threads is a futex "
        "convoy (strace -k: ~5,000 futex calls per movie, from take_gil after "
        "_pysqlite_query_execute; py-spy --gil: the GIL is held only ~45% of the time), so a "
        "0.09 ms mutate holds the write lock 1.8-3.8 ms and movies.db's lock is held 30-58 ms "
        "per movie. Driven from one thread the same code does 86 movies/s on tmpfs; with its "
        "threads, 33. Tried without effect (within noise): an in-process threading.Lock "
        "around BEGIN IMMEDIATE..COMMIT (it does remove SQLite's busy-handler sleeps), "
        "throttled progress reports, sys.setswitchinterval. Hops: paced p50 is ~1 ms on both "
        "sides (our claim runs in the same call that records the success); burst hops are "
        "time spent waiting for a free slot in the next stage. BullMQ does ~13 Redis round "
        "trips per movie, each a Lua script run by Redis's own thread; the artifact files "
        "cost it ~27% on an idle machine (bullmq 207 vs bullmq_queue_only 282 movies/s) "
        "and more under load. Fixes proposed, in order: a "
        "single-writer engine with group commit; artifact moves and hard links instead of "
        "copies, with the stage temp dirs on the data volume (single-threaded on disk, "
        "paired runs: 19.1 -> 26.8 and 21.5-28.7 -> 44 movies/s; hard links landed in "
        "da420d6: 18.1 and 13.6 -> 25.4 movies/s between full runs, 18.0 [17.0, 27.4] in this "
        "one, which also keeps the position buckets in every save); fewer transactions per "
        "movie (throttled progress, no deadline task per claim, success and next claim in "
        "one transaction, no write transaction for an empty lease); a thread pool for "
        "inline jobs instead of a thread (and two new SQLite connections) per job."
    ),
    "api": (
        "With 32 closed-loop connections latency is 32 / throughput (Little's law): p99 <= "
        "25 ms needs >= 1,300 requests/s, about 0.7 ms per request on two cores shared with "
        "wrk. Measured per request: ~2 ms. py-spy --gil during a status-only load: the GIL "
        "is held 35% of the time; the rest is the same GIL convoy as the pipeline's, among 8 "
        "waitress threads, its I/O thread and the runtime's consumer threads. Fewer threads "
        "are faster: DEEPFLIX_HTTP_THREADS=1 gave 531 req/s (p99 ~107 ms), 8 gave 421 (p99 "
        "148 ms), 2 gave 365. waitress formatted a 'Task queue depth' warning for every "
        "request queued beyond the idle threads (15% of GIL samples; silenced since "
        "276a348). Position and status each count the rows ahead and the stage's whole "
        "queue (before 276a348 also two GROUP BY over every waiting row), so they slow down "
        "as creates fill the queue during the run. 'live' is lower "
        "than 'isolated' because the stage work competes for the same GIL and disk."
    ),
    "position": (
        "Since 73213c3 the store keeps counted per-second buckets (queue_buckets) in the save "
        "transaction: ahead = SUM over the stage's bucket rows + a COUNT inside the movie's "
        "own second. The rows-ahead COUNT (24-34 ms at 100k before) is gone; what is left "
        "grows with the number of buckets, i.e. with the seconds the queue's arrivals span: "
        "this benchmark spaces arrivals 10 ms apart, so 100k waiting span ~1,000 buckets per "
        "priority and the in-process cost grows ~10x from 1k to 100k (log-log slope 0.5, "
        "about sqrt(n); 0.09 -> 0.87 ms), still inside HTTP's fixed ~1 ms (2.2-2.4x over "
        "HTTP). A backlog that built up over hours has more buckets (up to 86,400 a day). Fix: "
        "bound the bucket count by size, not time: bucket = creation sequence // 1000 "
        "assigned at create (or roll per-second buckets up into per-minute rows). Prototyped "
        "in plain SQLite with the same index shape and checked exact against COUNT: a counts "
        "row per stage plus (stage, prio, bucket of 1,000) counts give 0.03 / 0.03 / 0.08 ms "
        "at 1k, 10k and 100k, flat."
    ),
    "render": (
        "The video stage is ~90% of the wall time (images ~1 s for 12 stills). On an idle "
        "machine ffmpeg takes ~11 s for the 30.5 s of video against 3.5 s for the grey "
        "ceiling; the filter graph alone (output to -f null) takes "
        "3.8 s; x264 on real pictures takes the rest, while the grey ceiling is nearly free "
        "for x264 (flat frames), so the ratio mostly measures content. -filter_complex_threads "
        "2 changed nothing; -threads 1 for x264 was slower (14.4 s); -preset superfast is "
        "35-40% faster but makes a file 2.2x larger, and would speed the ceiling up too. The "
        "zoom motions' per-frame rescale is 1.4 s of the filter graph: with pans only the "
        "video stage took 9.0-9.8 s instead of 10.8-11.1 (ratio ~3.0). What is left is x264 "
        "encoding pictures that move in every frame, which the flat grey input never asks "
        "of it: even with no overhead of ours the ratio would be ~2x."
    ),
    "cost": (
        "The dollar figure covers operations only (Firestore, Pub/Sub, Cloud Tasks, function "
        "invocations); compute time of functions and Cloud Run jobs, storage, egress and free "
        "tiers are left out."
    ),
}
