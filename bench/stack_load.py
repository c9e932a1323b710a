"""Benchmark 8: N movies with instant generators through the emulator stack and embedded."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/stack_load.py N
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from bench import proc_cpu
from bench.common import NOT_MEASURED, ROOT, latency_summary, run_json
from bench.cost_bench import by_caller_per_movie, per_movie_from_raw
from bench.ours_chain import hops_ms
from deepflix.metering import totals
from deepflix.pipeline.models import STAGES, Movie
from devtools import emulators, stack
from devtools.firebase_tokens import emulator_id_token

NAME = "stack_load"
SCENES = 1
CONCURRENCY = 16  # per stage, on both sides
CLIENTS = 16  # threads sending the creates
API_WORKERS = 2  # processes serving the api function (one per core)
MOVIES, QUICK_MOVIES = 500, 6
# The video stage's timeout on the stack (600 s by default): its deadline check is then due
# within the lifetime of the test token its task carries (600 s from the task's making; see
# _refused_calls), so it is delivered once, as Cloud Tasks would, and not refused over and
# over. Instant work takes well under a second.
VIDEO_TIMEOUT_S = 300
TIMEOUT_S = 3000.0  # per side; a loaded machine makes a run of 500 slow
TERMINAL = ("succeeded", "failed", "cancelled")
FLUSH_S = 3.0
OPERATOR = emulator_id_token("bench", admin=True)
HOPS = tuple(f"{a.value}->{b.value}" for a, b in itertools.pairwise(STAGES))


def create(url: str, i: int) -> tuple[str, float, int]:
    """One movie over HTTP: its id, the create's milliseconds, and the 429s it waited out."""
    body = json.dumps({"prompt": f"Stack load {i}", "scene_count": SCENES}).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {OPERATOR}",
        "X-DeepFlix-Client": "bench",
    }
    for refused in range(100):
        req = urllib.request.Request(url + "/api/movies", data=body, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                movie_id = str(json.loads(resp.read())["movie_id"])
            return movie_id, (time.monotonic() - started) * 1000, refused
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(float(e.headers.get("Retry-After") or 1))
    raise RuntimeError("the api function refused a create 100 times (429)")


def summarise(movies: list[Movie]) -> dict[str, Any]:
    """Throughput from the first create to the last finish, stage hops (one stage's finish to
    the next one's claim) and stage runs (claim to finish), from the movie documents: the
    same definitions on both sides."""
    done = [m for m in movies if m.status.value == "succeeded" and m.finished_at is not None]
    span = 0.0
    if done:
        first = min(m.created_at for m in movies)
        span = (max(m.finished_at for m in done if m.finished_at) - first).total_seconds()
    hops = hops_ms(done)
    runs = {
        s.value: latency_summary(
            [d * 1000 for m in done if (d := m.stages[s].duration_s) is not None]
        )
        for s in STAGES
    }
    return {
        "movies": len(movies),
        "succeeded": len(done),
        "failed": sum(m.status.value == "failed" for m in movies),
        "retried_stages": sum(m.stages[s].attempts > 1 for m in movies for s in STAGES),
        "span_s": round(span, 2),
        "movies_per_s": round(len(done) / span, 3) if span else 0.0,
        "hop_ms": latency_summary([h for hop in hops for h in hop]),
        "hop_ms_by_stage": {name: latency_summary(h) for name, h in zip(HOPS, hops, strict=True)},
        "stage_run_ms": runs,
    }


def _movies(db: Any, ids: list[str]) -> list[Movie]:
    fields = Movie.model_fields
    refs = [db.collection("movies").document(i) for i in ids]
    out = []
    for k in range(0, len(refs), 100):
        for snap in db.get_all(refs[k : k + 100]):
            data = snap.to_dict() or {}
            out.append(Movie.model_validate({f: v for f, v in data.items() if f in fields}))
    return out


def _finished(db: Any) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = db.collection("movies").where(filter=FieldFilter("status", "in", list(TERMINAL)))
    return int(query.count().get()[0][0].value)


@contextlib.contextmanager
def _callers_metered() -> Iterator[None]:
    """DEEPFLIX_METER_CALLERS=1 for the stack's processes (stack_env passes it on)."""
    old = os.environ.get("DEEPFLIX_METER_CALLERS")
    os.environ["DEEPFLIX_METER_CALLERS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DEEPFLIX_METER_CALLERS")
        else:
            os.environ["DEEPFLIX_METER_CALLERS"] = old


def _cpu(s: stack.Stack) -> dict[str, float]:
    """CPU seconds so far by part: each function's processes, the job processes they
    reaped, each emulator, and this process (clients, push proxies, the wait)."""
    out: dict[str, float] = {}
    jobs = 0.0
    for name, fn in s.functions.items():
        cpu = proc_cpu.group_cpu_s(fn.proc.pid)
        out[f"function.{name}"] = cpu["own"]
        jobs += cpu["children"]
    out["jobs"] = jobs
    for em in (s.firestore, s.pubsub, s.tasks, s.storage):
        cpu = proc_cpu.group_cpu_s(em.proc.pid)
        out[f"emulator.{em.name}"] = cpu["own"] + cpu["children"]
    out["bench_process"] = proc_cpu.self_cpu_s()
    return out


def stack_side(n: int, data: Path, job_runner: str = "subprocess") -> dict[str, Any]:
    """N movies created by CLIENTS threads over HTTP through the emulator stack; its jobs
    as a process per attempt (as `make emulators`), or inline in the stage functions."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    limits: dict[str, Any] = {f"{st.value}_concurrency": CONCURRENCY for st in STAGES}
    limits["video_timeout_s"] = VIDEO_TIMEOUT_S
    with _callers_metered():
        s = stack.start(
            data, generators="instant", api_workers=API_WORKERS, job_runner=job_runner, **limits
        )
    try:
        with emulators.env("FIRESTORE_EMULATOR_HOST", s.firestore.address):
            db = firestore.Client(project=emulators.PROJECT, credentials=AnonymousCredentials())
        cpu_before = _cpu(s)
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS, thread_name_prefix="client") as pool:
            created = list(pool.map(lambda i: create(s.api_url, i), range(n)))
        creates_s = time.monotonic() - started
        finished = 0
        while time.monotonic() - started < TIMEOUT_S:
            finished = _finished(db)
            if finished >= n:
                break
            time.sleep(1.0)
        wall_s = time.monotonic() - started
        time.sleep(FLUSH_S)  # a job flushes its counts after recording its outcome
        cpu = proc_cpu.delta(cpu_before, _cpu(s))
        ids = [c[0] for c in created]
        movies = _movies(db, ids)
        ops = totals(data / "ops")
        refused = _refused_calls(data)
    finally:
        s.stop()
        # Fresh emulators for the next side: these hold this side's movies and its tasks
        # still to come (deadline checks), which would reach the next side's functions.
        emulators.stop_all()
    total_cpu = sum(cpu.values())
    return summarise(movies) | {
        "unfinished": n - finished,
        "creates_s": round(creates_s, 2),
        "creates_per_s": round(n / creates_s, 2),
        "create_ms": latency_summary([c[1] for c in created]),
        "create_429s": sum(c[2] for c in created),
        "wall_s": round(wall_s, 2),
        "job_processes": ops.get("jobs.images", 0) + ops.get("jobs.video", 0),
        "cpu_s": cpu,
        "cpu_ms_per_movie": {k: round(v * 1000 / n, 1) for k, v in cpu.items()}
        | {"total": round(total_cpu * 1000 / n, 1)},
        "refused_internal_calls": refused,
        "operations": _operations(ops, n, refused),
    }


def _refused_calls(data: Path) -> dict[str, int]:
    """Internal calls each function refused (its log's warnings): on the emulators, a task
    due later than its test token's lifetime (600 s, minted when the task is made, where
    Cloud Tasks mints one at each delivery) is refused and delivered again until it is
    dropped, so the video deadline checks of a long run come back again and again."""
    out = {}
    for name in stack.FUNCTIONS:
        log = data / f"function-{name}.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        out[name] = text.count("refused an internal call")
    return out


def _operations(ops: dict[str, int], n: int, refused: dict[str, int]) -> dict[str, Any]:
    """The counts to price, per movie: the refused deliveries (an artifact of the emulators'
    tokens, above) left out of the Cloud Tasks operations and function invocations."""
    per_movie = per_movie_from_raw(ops, n)
    per_movie["tasks_operations"] -= refused["tasks"] / n
    per_movie["function_invocations"] -= sum(refused.values()) / n
    return {
        "movies": n,
        "raw": ops,
        "per_movie": per_movie,
        "left_out": {"refused_internal_calls": refused},
        "by_caller_per_movie": by_caller_per_movie(ops, n),
    }


def embedded_side(n: int, data: Path) -> dict[str, Any]:
    """The same N movies through the embedded mode in one process (bench/ours_chain.py):
    created in a loop in-process, stage work in one worker process per core."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    args = [sys.executable, "-m", "bench.ours_chain", "--n", str(n), "--scenes", str(SCENES)]
    args += ["--concurrency", str(CONCURRENCY), "--workers", str(CONCURRENCY)]
    args += ["--stage-processes", str(os.cpu_count() or 2), "--data", str(data)]
    args += ["--timeout", str(TIMEOUT_S)]
    r = run_json(args, cwd=ROOT, env=env, timeout=TIMEOUT_S + 120)
    hops = r["hops_ms"]
    return {
        "movies": r["n"],
        "succeeded": r["completed"],
        "failed": r["failed"],
        "retried_stages": r["retried"],
        "unfinished": r["n"] - r["completed"] - r["failed"],
        "creates_s": round(r["submit_s"], 2),
        "span_s": round(r["elapsed_s"], 2),
        "movies_per_s": round(r["movies_per_s"], 3),
        "hop_ms": latency_summary([h for hop in hops for h in hop]),
        "hop_ms_by_stage": {name: latency_summary(h) for name, h in zip(HOPS, hops, strict=True)},
    }


def figures(res: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The named figures of the run (RESULTS.md and the targets read these)."""
    out: dict[str, float | None] = {}
    for side, r in res.items():
        out[f"{side}.movies_per_s"] = r["movies_per_s"]
        out[f"{side}.hop_ms.p50"] = r["hop_ms"]["p50"]
        out[f"{side}.hop_ms.p99"] = r["hop_ms"]["p99"]
    return out


def _load_sampler(samples: list[float], stop: threading.Event) -> None:
    while not stop.wait(5.0):
        samples.append(round(os.getloadavg()[0], 2))


def run(quick: bool = False, movies: int | None = None) -> dict[str, Any]:
    n = movies or (QUICK_MOVIES if quick else MOVIES)
    settings = {
        "movies": n,
        "scene_count": SCENES,
        "concurrency_per_stage": CONCURRENCY,
        "generators": "instant",
        "stack": {
            "driven": f"devtools/stack.py (as `make emulators`): functions-framework processes "
            f"(api: {API_WORKERS} worker processes, the others one each), the Firestore, "
            "Pub/Sub, Cloud Tasks and Cloud Storage emulators, images and video jobs as one "
            f"Python process per attempt; {CLIENTS} client threads POST /api/movies",
            "api_workers": API_WORKERS,
            "clients": CLIENTS,
            "meter_callers": True,
            "video_timeout_s": VIDEO_TIMEOUT_S,
        },
        "stack_inline_jobs": {
            "driven": "the same stack with DEEPFLIX_JOB_RUNNER=inline: the images and video "
            "work runs on threads of their stage functions, no process per attempt (what the "
            "job processes cost, by difference)",
        },
        "embedded": {
            "driven": "bench/ours_chain.py: build_embedded(Settings) + pipeline.create() in a "
            "loop, in one process; stage work in one worker process per core; inline jobs",
        },
        "hop_definition": "a stage's finish -> the next stage's claim, from the movie documents "
        "(includes waiting for a free slot of the next stage)",
    }
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_load_sampler, args=(samples, stop), daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stack-load-") as tmp:
            try:
                stacked = stack_side(n, Path(tmp) / "stack")
                inline = stack_side(n, Path(tmp) / "stack-inline", job_runner="inline")
            except emulators.EmulatorMissing as e:
                return {
                    "settings": settings,
                    "results": f"{NOT_MEASURED}: {e}",
                    "targets": {},
                }
            embedded = embedded_side(n, Path(tmp) / "embedded")
    finally:
        stop.set()
    inline.pop("operations")
    res = {"stack": stacked, "stack_inline_jobs": inline, "embedded": embedded}
    return {
        "settings": settings,
        "results": res,
        "figures": figures(res),
        "operations": stacked.pop("operations"),
        "loadavg_1min_during": latency_summary(samples) | {"samples": samples},
        "targets": {},
    }


if __name__ == "__main__":
    print(json.dumps(run(movies=int(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
