"""End to end on the emulators: real HTTP into the api function, Cloud Tasks dispatch, Pub/Sub
push into the stage functions, GPU stages through the job runner."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.common import code_info
from bench.cost_bench import by_caller_per_movie, per_movie_from_raw
from deepflix.adapters.gcp.pubsub import topic_id
from deepflix.metering import totals
from devtools import emulators, stack
from devtools.firebase_tokens import emulator_id_token

pytestmark = pytest.mark.emulator
TERMINAL = {"succeeded", "failed", "cancelled"}
# The tests' own requests: an operator's, as the local user is embedded (ADR 0017).
OPERATOR = emulator_id_token("tester", admin=True)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    data = tmp_path_factory.mktemp("emulator-stack")
    try:
        s = stack.start(
            data,
            scene_seconds=1,
            fps=12,
            retry_base_delay_s=0.1,
            max_attempts=2,
            faults_file=data / "faults.json",
        )
    except emulators.EmulatorMissing as e:
        pytest.skip(str(e))
    yield s
    s.stop()


def call(
    s: stack.Stack,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    token: str | None = OPERATOR,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    url = path if path.startswith("http") else s.api_url + path  # artifacts: the storage's
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    req.add_header("X-DeepFlix-Client", "tests")  # a script's writes (handlers/guard.py)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            is_json = "json" in resp.headers.get("Content-Type", "")
            return resp.status, json.loads(raw) if is_json else raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def redirect_of(s: stack.Stack, path: str) -> str:
    """Where the API's artifact route sends an operator: the storage's own URL."""
    req = urllib.request.Request(s.api_url + path, headers={"Authorization": f"Bearer {OPERATOR}"})
    try:
        urllib.request.build_opener(_NoRedirects).open(req, timeout=60)
    except urllib.error.HTTPError as e:
        assert e.code == 307, e.code
        return str(e.headers["Location"])
    raise AssertionError("the artifact route did not redirect")


def wait(s: stack.Stack, movie_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, status = call(s, "GET", f"/api/movies/{movie_id}/status")
        assert code == 200, status
        if status["status"] in TERMINAL:
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def record_operations(ops: dict[str, int], *, movies: int) -> None:
    """Print the per-movie operation counts; with BENCH_RESULTS_DIR, write them for
    bench/cost_bench.py (the shape it documents). With DEEPFLIX_METER_CALLERS=1 the counts
    by caller are copies of the totals, left out of these (and kept, per movie, beside)."""
    per_movie = per_movie_from_raw(ops, movies)
    report = {
        "movies": movies,
        "raw": ops,
        "per_movie": per_movie,
        "by_caller_per_movie": by_caller_per_movie(ops, movies),
    }
    print("operations per movie:", json.dumps(per_movie, sort_keys=True))
    out = os.environ.get("BENCH_RESULTS_DIR")
    if out:
        # Relative to the repository, as `make bench` gives it: the working directory has
        # moved by now (the stack runs in a temporary one).
        where = Path(__file__).resolve().parents[2] / out
        where.mkdir(parents=True, exist_ok=True)
        # The commit whose code ran, which the cost names as the benchmarks' (none when the
        # code had changes not committed).
        code = code_info()
        report["git"] = {"commit": code["commit"] if code["is_commit"] else None}
        (where / "emulator_ops.json").write_text(json.dumps(report, indent=2))


def test_movies_complete_with_real_artifacts_and_duplicates_change_nothing(
    running: stack.Stack, tmp_path: Path
) -> None:
    import av
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.pubsub_v1 import PublisherClient

    created = [
        call(
            running,
            "POST",
            "/api/movies",
            {"prompt": f"Emulated {p} voyage", "priority": p, "scene_count": 2},
        )
        for p in ("low", "high", "normal")
    ]
    assert [c[0] for c in created] == [202, 202, 202]
    ids = [c[1]["movie_id"] for c in created]
    # Wait by reading Firestore directly, so the operation counts are the pipeline's own and
    # not those of a client polling the API.
    with emulators.env("FIRESTORE_EMULATOR_HOST", running.firestore.address):
        db = firestore.Client(project=emulators.PROJECT, credentials=AnonymousCredentials())
    deadline = time.monotonic() + 180
    while any(db.collection("movies").document(i).get().get("status") not in TERMINAL for i in ids):
        assert time.monotonic() < deadline, "the movies did not finish"
        time.sleep(0.2)
    ops = totals(running.data_dir / "ops")
    record_operations(ops, movies=len(ids))

    done = [wait(running, i) for i in ids]
    assert [d["status"] for d in done] == ["succeeded"] * 3
    for d in done:
        # A retry under load (a slow emulator) is legitimate; completion is what counts.
        assert all(d["stages"][s]["status"] == "succeeded" for s in ("story", "images", "video"))
        # Served by the Cloud Storage emulator, under the attempt that made it.
        attempt = d["stages"]["video"]["attempts"]
        link = d["artifacts"]["video"]  # the owner-checked route, never a storage path
        assert link == f"/api/movies/{d['movie_id']}/artifacts/movie.mp4"
        stored = redirect_of(running, link)
        assert stored.startswith(running.env["STORAGE_EMULATOR_HOST"])
        assert f"%2Fa{attempt}%2F" in stored
        code, video = call(running, "GET", stored)
        assert code == 200
        (tmp_path / "v.mp4").write_bytes(video)
        with av.open(str(tmp_path / "v.mp4")) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == 18  # 2 scenes of 12 frames, 6 frames of crossfade
    assert ops["invocations.story_requested"] >= 3 and ops["jobs.images"] >= 3
    assert ops["invocations.api"] == 3 and ops["pubsub.publishes"] >= 9
    assert ops["firestore.writes"] > 0 and ops["tasks.created"] >= 3

    # A duplicated Pub/Sub delivery and a duplicated task: both are no-ops.
    before = [call(running, "GET", f"/api/movies/{i}/status")[1] for i in ids]
    invocations = totals(running.data_dir / "ops")["invocations.story_requested"]
    with emulators.env("PUBSUB_EMULATOR_HOST", running.pubsub.address):
        publisher = PublisherClient()
    topic = publisher.topic_path(emulators.PROJECT, topic_id("deepflix", "story.requested"))
    message = {"movie_id": ids[0], "stage": "story", "attempt": 1}
    publisher.publish(topic, json.dumps(message).encode(), movie_id=ids[0]).result(timeout=30)
    # A deadline window's task delivered again (or early): nothing is overdue.
    tasks_url = running.functions["tasks"].url
    token = running.token("tasks-oidc", tasks_url)
    req = urllib.request.Request(
        tasks_url + "/deadlines",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    deadline = time.monotonic() + 30
    while totals(running.data_dir / "ops")["invocations.story_requested"] == invocations:
        assert time.monotonic() < deadline, "the duplicate was never delivered"
        time.sleep(0.1)
    after = [call(running, "GET", f"/api/movies/{i}/status")[1] for i in ids]
    assert after == before


def test_cancel_and_retry(running: stack.Stack) -> None:
    call(running, "POST", "/api/admission/pause")
    code, queued = call(running, "POST", "/api/movies", {"prompt": "Never admitted"})
    assert code == 202
    code, cancelled = call(running, "POST", f"/api/movies/{queued['movie_id']}/cancel")
    assert code == 200 and cancelled["status"] == "cancelled"
    call(running, "POST", "/api/admission/resume")

    faults = Path(running.env["DEEPFLIX_FAULTS_FILE"])
    faults.write_text(json.dumps({"images": {"kind": "retryable", "match": "FLAKY"}}))
    code, movie = call(running, "POST", "/api/movies", {"prompt": "A FLAKY kite", "scene_count": 1})
    failed = wait(running, movie["movie_id"])
    assert failed["status"] == "failed" and failed["stages"]["images"]["attempts"] == 2
    faults.write_text("{}")
    code, _ = call(running, "POST", f"/api/movies/{movie['movie_id']}/retry")
    assert code == 202
    done = wait(running, movie["movie_id"])
    assert done["status"] == "succeeded" and done["stages"]["story"]["attempts"] == 1


def test_owners_and_operators_on_the_api_function(running: stack.Stack) -> None:
    """ADR 0017's matrix on the deployed shape: Firebase ID tokens (the Auth emulator's)."""
    alice, bob = emulator_id_token("alice-uid"), emulator_id_token("bob-uid")
    body = {"prompt": "A kite that belongs to Alice", "scene_count": 1}
    assert call(running, "GET", "/api/movies", token=None)[0] == 401
    code, created = call(running, "POST", "/api/movies", body, token=alice)
    assert code == 202, created
    movie_id = created["movie_id"]
    for path in (f"/api/movies/{movie_id}/status", f"/api/queue/{movie_id}/position"):
        assert call(running, "GET", path, token=alice)[0] == 200
        code, answer = call(running, "GET", path, token=bob)
        assert code == 404 and answer["error"]["code"] == "not_found", answer
    for action in ("cancel", "retry"):
        assert call(running, "POST", f"/api/movies/{movie_id}/{action}", token=bob)[0] == 404
    code, page = call(running, "GET", "/api/movies", token=bob)
    assert code == 200 and movie_id not in {m["movie_id"] for m in page["movies"]}
    assert call(running, "POST", "/api/admission/pause", token=bob)[0] == 403
    assert call(running, "GET", "/api/queues", token=OPERATOR)[0] == 200
    assert wait(running, movie_id)["status"] == "succeeded"  # Bob's cancel changed nothing


def test_a_pubsub_outage_ends_with_every_movie_finished_within_a_minute(
    running: stack.Stack,
) -> None:
    """Pub/Sub stopped (SIGSTOP, as a hung service) while movies are claimed and created: the
    claims commit, their stage requests wait in the movies' outboxes, and once Pub/Sub is back
    they are sent, with no stage timing out first (their timeouts are minutes)."""
    ids = [
        call(
            running, "POST", "/api/movies", {"prompt": f"Before the outage {i}", "scene_count": 1}
        )[1]["movie_id"]
        for i in range(2)
    ]
    time.sleep(1)
    group = running.pubsub.proc.pid
    os.killpg(group, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        while time.monotonic() - stopped < 15:
            code, body = call(
                running, "POST", "/api/movies", {"prompt": "During the outage", "scene_count": 1}
            )
            assert code == 202, body  # creating needs no Pub/Sub
            ids.append(body["movie_id"])
            time.sleep(5)
    finally:
        os.killpg(group, signal.SIGCONT)
    back = time.monotonic()
    for movie_id in ids:
        left = back + 60 - time.monotonic()
        assert left > 0, "the movies did not finish within a minute of the outage's end"
        assert wait(running, movie_id, timeout=left)["status"] == "succeeded"


def test_a_requests_trace_reaches_its_tasks_messages_and_jobs_and_their_log_lines(
    running: stack.Stack,
) -> None:
    """The traceparent a client sends: the movie's tasks carry it as a header, its
    stage requests as a Pub/Sub attribute, its jobs in their environment; each one's log
    lines name the trace as Cloud Logging reads it."""
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    body = {"prompt": "A traced lantern", "scene_count": 1}
    code, movie = call(running, "POST", "/api/movies", body, headers)
    assert code == 202, movie
    assert wait(running, movie["movie_id"])["status"] == "succeeded"
    field = f"projects/{emulators.PROJECT}/traces/{trace_id}"
    traced: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(running.data_dir.rglob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and field in line:
                entry = json.loads(line)
                assert entry["logging.googleapis.com/trace"] == field
                assert len(entry["logging.googleapis.com/spanId"]) == 16
                traced.setdefault(path.name, []).append(entry)
    tasks = [e for e in traced.get("function-tasks.log", []) if e["message"].startswith("task ")]
    # The admission task the create enqueued (its deadline tasks run minutes from now).
    assert any(e["message"] == "task dispatch received" for e in tasks), traced.keys()
    for fn in ("story_requested", "images_requested", "video_requested"):  # attribute
        assert any(e["message"] == "stage request received" for e in traced[f"function-{fn}.log"])
    jobs = [name for name in traced if name.startswith(("images-", "video-"))]  # environment
    assert len(jobs) >= 2, traced.keys()


def test_internal_endpoints_of_the_stack_take_only_its_callers_tokens(
    running: stack.Stack,
) -> None:
    """The real functions-framework processes check tokens: 401 without or for another
    audience, 403 for an account not allowed, 200 for the scheduler's."""
    tasks_url = running.functions["tasks"].url
    assert running.issuer is not None
    stranger = running.issuer.tokens("someone@demo-deepflix.iam.gserviceaccount.com", running.env)

    def sweep(token: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(f"{tasks_url}/sweep", b"{}", headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    assert sweep(None) == 401
    assert sweep(running.token("scheduler", "http://127.0.0.1:1")) == 401
    assert sweep(stranger(tasks_url)) == 403
    assert sweep(running.token("scheduler", tasks_url)) == 200
    story = running.functions["story_requested"].url
    req = urllib.request.Request(story + "/", b"{}", {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 401  # a push without the push identity's token
