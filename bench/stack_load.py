"""The emulator stack under load: N movies with instant generators, movies/s and stage hops."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/stack_load.py N
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from bench.common import latency_summary
from devtools import emulators, stack
from devtools.firebase_tokens import emulator_id_token

TERMINAL = {"succeeded", "failed", "cancelled"}
OPERATOR = emulator_id_token("bench", admin=True)
HOPS = (("story", "images"), ("images", "video"))


def create(s: stack.Stack, i: int) -> str:
    body = json.dumps({"prompt": f"Stack load {i}", "scene_count": 1}).encode()
    req = urllib.request.Request(s.api_url + "/api/movies", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {OPERATOR}")
    req.add_header("X-DeepFlix-Client", "bench")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return str(json.loads(resp.read())["movie_id"])


def hops_ms(journal: list[dict[str, Any]]) -> list[list[float]]:
    """Per hop, the time from the earlier stage's success to the later stage's start."""
    done = {e["stage"]: e["at"] for e in journal if e["after"] == "succeeded"}
    began = {e["stage"]: e["at"] for e in journal if e["after"] == "running"}
    out: list[list[float]] = [[] for _ in HOPS]
    for i, (a, b) in enumerate(HOPS):
        if a in done and b in began:
            t = datetime.fromisoformat(began[b]) - datetime.fromisoformat(done[a])
            out[i].append(t.total_seconds() * 1000)
    return out


def run(movies: int, concurrency: int) -> dict[str, Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    data = Path(tempfile.mkdtemp(prefix="stack-load-"))
    load = os.getloadavg()
    limits = {f"{st}_concurrency": concurrency for st in ("story", "images", "video")}
    s = stack.start(data, generators="instant", **limits)
    try:
        with emulators.env("FIRESTORE_EMULATOR_HOST", s.firestore.address):
            db = firestore.Client(project=emulators.PROJECT, credentials=AnonymousCredentials())
        started = time.monotonic()
        ids = [create(s, i) for i in range(movies)]
        created_s = time.monotonic() - started
        pending = set(ids)
        while pending and time.monotonic() - started < 1200:
            for i in list(pending):
                if db.collection("movies").document(i).get().get("status") in TERMINAL:
                    pending.discard(i)
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        docs = [db.collection("movies").document(i).get().to_dict() or {} for i in ids]
    finally:
        s.stop()
    hops: list[list[float]] = [[] for _ in HOPS]
    for d in docs:
        for n, h in enumerate(hops_ms(d.get("journal") or [])):
            hops[n] += h
    both = [h for hop in hops for h in hop]
    return {
        "movies": movies,
        "concurrency_per_stage": concurrency,
        "succeeded": sum(d.get("status") == "succeeded" for d in docs),
        "unfinished": len(pending),
        "creates_s": round(created_s, 1),
        "elapsed_s": round(elapsed, 1),
        "movies_per_s": round((movies - len(pending)) / elapsed, 2),
        "hop_ms": latency_summary(both) if both else None,
        "loadavg_before": [round(x, 2) for x in load],
    }


if __name__ == "__main__":
    n, limit = (int(a) for a in (sys.argv[1:] + ["50", "16"][len(sys.argv) - 1 :])[:2])
    print(json.dumps(run(n, limit), indent=2))
