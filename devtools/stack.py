"""Emulator mode: the real GCP adapters and functions, wired to the Google emulators locally.

Starts the Firestore, Pub/Sub, Cloud Tasks and Cloud Storage emulators, one functions-framework
process per function, the Cloud Tasks queue, one Pub/Sub topic per stage with a push
subscription to its function (the retry and dead-letter settings of infra/messaging.tf), the
sweep's schedule (as Cloud Scheduler runs it), and prints the API address.
`python -m devtools.stack` (or `make emulators`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import emulators
from devtools.emulators import HOST, PROJECT, Emulator
from devtools.firebase_tokens import emulator_id_token
from devtools.test_issuer import PushProxy, TestIssuer

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO / "functions"
LOCATION = "us-central1"
QUEUE = "deepflix-dispatch"
TOPIC_PREFIX = "deepflix"
STAGE_FUNCTIONS = {
    "story.requested": "story_requested",
    "images.requested": "images_requested",
    "video.requested": "video_requested",
}
FUNCTIONS = ("api", "tasks", *STAGE_FUNCTIONS.values())
# Cloud Scheduler's schedule of the sweep (infra: every minute).
SWEEP_EVERY_S = 60.0
AUTH_EMULATOR_PORT = 9099  # the Auth emulator's usual port
# The identities whose ID tokens the internal endpoints accept (infra/iam.tf's three).
CALLERS = {
    name: f"deepflix-{name}@{PROJECT}.iam.gserviceaccount.com"
    for name in ("tasks-oidc", "scheduler", "push")
}
# The push subscriptions' delivery settings, as infra/messaging.tf and infra/main.tf declare
# them (tests/unit/test_stack_parity.py holds the two together).
RETRY_BACKOFF_S = (5, 300)
MAX_DELIVERY_ATTEMPTS = 10
DEAD_LETTER = f"{TOPIC_PREFIX}-dead-letter"
FUNCTION_MARGIN_S = 60  # a stage function's timeout over its stage's
MAX_ACK_DEADLINE_S = 600  # Pub/Sub's cap


def ack_deadline_s(stage_timeout_s: float) -> int:
    """A push subscription's ack deadline: its function's timeout, within Pub/Sub's cap."""
    return min(MAX_ACK_DEADLINE_S, int(stage_timeout_s) + FUNCTION_MARGIN_S)


@dataclass
class Scheduler:
    """Cloud Scheduler's sweep job: POSTs to `url` (the tasks function's /sweep) every
    `every_s` seconds. There is no Cloud Scheduler emulator; this thread stands in for it."""

    url: str
    every_s: float
    token: Any = None  # audience -> an ID token, as Cloud Scheduler's OIDC token
    audience: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name="scheduler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            headers = {"Content-Type": "application/json"}
            if self.token is not None:
                headers["Authorization"] = f"Bearer {self.token(self.audience)}"
            request = urllib.request.Request(self.url, data=b"{}", method="POST", headers=headers)
            try:  # like Cloud Scheduler, whatever the answer, it tries again next time
                with urllib.request.urlopen(request, timeout=max(self.every_s, 60.0)):
                    pass
            except OSError as e:
                sys.stderr.write(f"scheduler: {self.url}: {e}\n")


@dataclass
class Function:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        emulators.stop(self.proc, group=True)  # its job processes die with it (PR_SET_PDEATHSIG)


@dataclass
class Stack:
    firestore: Emulator
    pubsub: Emulator
    tasks: Emulator
    storage: Emulator
    data_dir: Path
    env: dict[str, str]
    functions: dict[str, Function] = field(default_factory=dict)
    scheduler: Scheduler | None = None
    issuer: TestIssuer | None = None
    proxies: list[PushProxy] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return self.functions["api"].url

    def stop(self) -> None:
        """The schedule, then the functions (and their job processes, in the same process
        groups)."""
        if self.scheduler is not None:
            self.scheduler.stop()
        for fn in self.functions.values():
            fn.stop()
        for proxy in self.proxies:
            proxy.stop()
        if self.issuer is not None:
            self.issuer.stop()

    def token(self, caller: str, audience: str) -> str:
        """An ID token of one of CALLERS for `audience`, as Google would sign it."""
        assert self.issuer is not None
        return self.issuer.tokens(CALLERS[caller], self.env)(audience)


def stack_env(
    *,
    firestore: Emulator,
    pubsub: Emulator,
    tasks: Emulator,
    storage: Emulator,
    tasks_port: int,
    data_dir: Path,
    settings: dict[str, str],
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFLIX_")}
    if os.environ.get("DEEPFLIX_METER_CALLERS"):  # a benchmark's: where operations go
        env["DEEPFLIX_METER_CALLERS"] = os.environ["DEEPFLIX_METER_CALLERS"]
    env |= {
        "FIRESTORE_EMULATOR_HOST": firestore.address,
        "PUBSUB_EMULATOR_HOST": pubsub.address,
        # The api function then takes the Auth emulator's unsigned ID tokens
        # (devtools/firebase_tokens.py); checking one contacts nothing at this address.
        "FIREBASE_AUTH_EMULATOR_HOST": f"{HOST}:{AUTH_EMULATOR_PORT}",
        "STORAGE_EMULATOR_HOST": f"http://{storage.address}",
        "METADATA_SERVER_DETECTION": "none",
        "NO_GCE_CHECK": "true",
        "DEEPFLIX_BACKEND": "gcp",
        "DEEPFLIX_GCP_PROJECT": PROJECT,
        "DEEPFLIX_GCP_LOCATION": LOCATION,
        "DEEPFLIX_TASKS_QUEUE": QUEUE,
        "DEEPFLIX_TASKS_URL": f"http://{HOST}:{tasks_port}",
        "DEEPFLIX_TASKS_EMULATOR_HOST": tasks.address,
        "DEEPFLIX_TOPIC_PREFIX": TOPIC_PREFIX,
        "DEEPFLIX_DATA_DIR": str(data_dir),
        "DEEPFLIX_OPS_DIR": str(data_dir / "ops"),
        # Artifacts in Cloud Storage's API, as in the cloud (large videos upload resumably).
        "DEEPFLIX_ARTIFACTS": "gcs",
        "DEEPFLIX_ARTIFACTS_BUCKET": emulators.STORAGE_BUCKET,
    }
    return env | {f"DEEPFLIX_{k.upper()}": str(v) for k, v in settings.items()}


def _provision(stack: Stack, push_endpoints: dict[str, str], timeouts: dict[str, float]) -> None:
    """Queue, topics, push subscriptions and the dead-letter topic — what Terraform declares
    in the cloud, with its delivery settings (the emulator keeps them; how closely it honours
    them is its own affair). Each subscription pushes to its function through a proxy that
    adds the push identity's token."""
    import grpc
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import tasks_v2
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    from deepflix.adapters.gcp.pubsub import topic_id

    tasks = tasks_v2.CloudTasksClient(
        transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(stack.tasks.address))
    )
    parent = f"projects/{PROJECT}/locations/{LOCATION}"
    with contextlib.suppress(AlreadyExists):  # made by an earlier stack on this emulator
        tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=f"{parent}/queues/{QUEUE}"))
    with emulators.env("PUBSUB_EMULATOR_HOST", stack.pubsub.address):
        publisher, subscriber = PublisherClient(), SubscriberClient()
    dead_letter = publisher.topic_path(PROJECT, DEAD_LETTER)
    # The emulator outlives a stack (one per test session): an earlier stack's topics and
    # subscriptions, which push to its functions, are replaced, not reused.
    for path in subscriber.list_subscriptions(request={"project": f"projects/{PROJECT}"}):
        if path.name.rsplit("/", 1)[-1].startswith(TOPIC_PREFIX):
            subscriber.delete_subscription(subscription=path.name)
    for path in publisher.list_topics(request={"project": f"projects/{PROJECT}"}):
        if path.name.rsplit("/", 1)[-1].startswith(TOPIC_PREFIX):
            publisher.delete_topic(topic=path.name)
    publisher.create_topic(name=dead_letter)
    subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, DEAD_LETTER),
        topic=dead_letter,
        ack_deadline_seconds=60,
    )
    low, high = RETRY_BACKOFF_S
    for topic, fn in STAGE_FUNCTIONS.items():
        tid = topic_id(TOPIC_PREFIX, topic)
        topic_path = publisher.topic_path(PROJECT, tid)
        publisher.create_topic(name=topic_path)
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(PROJECT, f"{tid}-push"),
                "topic": topic_path,
                "push_config": {"push_endpoint": push_endpoints[fn]},
                "ack_deadline_seconds": ack_deadline_s(timeouts[topic.split(".")[0]]),
                "retry_policy": {
                    "minimum_backoff": {"seconds": low},
                    "maximum_backoff": {"seconds": high},
                },
                "dead_letter_policy": {
                    "dead_letter_topic": dead_letter,
                    "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
                },
            }
        )
    subscriber.close()


def start(
    data_dir: Path, *, sweep_every_s: float = SWEEP_EVERY_S, api_workers: int = 1, **settings: Any
) -> Stack:
    """Everything on free 127.0.0.1 ports; raises EmulatorMissing where it cannot run.
    `api_workers` processes serve the api function (functions-framework's WORKERS), as the
    cloud runs several instances of it under load."""
    firestore, pubsub, tasks = emulators.firestore(), emulators.pubsub(), emulators.cloud_tasks()
    storage = emulators.storage()
    # The emulator outlives a stack (one per test session): an earlier test's documents, such
    # as slot shards whose running lists name movies this stack never made, would hold its
    # slots. A stack starts on an empty database.
    emulators.clear_firestore(firestore)
    ports = {name: emulators.free_port() for name in FUNCTIONS}
    data_dir.mkdir(parents=True, exist_ok=True)
    issuer = TestIssuer.create().start()
    key = issuer.write_key(data_dir / "test-token-key.json", CALLERS["tasks-oidc"])
    urls = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
    internal = {
        "internal_callers": ",".join(CALLERS.values()),
        "internal_audiences": ",".join(urls[n] for n in FUNCTIONS if n != "api"),
        "oidc_certs_url": issuer.certs_url,
        "test_token_key_file": str(key),
    }
    env = stack_env(
        firestore=firestore,
        pubsub=pubsub,
        tasks=tasks,
        storage=storage,
        tasks_port=ports["tasks"],
        data_dir=data_dir,
        settings=internal | {k: str(v) for k, v in settings.items()},
    )
    stack = Stack(firestore, pubsub, tasks, storage, data_dir, env, issuer=issuer)
    push = issuer.tokens(CALLERS["push"], env)
    proxies = {fn: PushProxy(urls[fn], push) for fn in STAGE_FUNCTIONS.values()}
    stack.proxies = list(proxies.values())
    from deepflix.settings import Settings

    defaults = Settings.model_construct()  # the stage timeouts the functions run with
    timeouts = {
        stage: float(settings.get(f"{stage}_timeout_s", getattr(defaults, f"{stage}_timeout_s")))
        for stage in ("story", "images", "video")
    }
    _provision(stack, {fn: proxy.url for fn, proxy in proxies.items()}, timeouts)
    for name, port in ports.items():
        log = open(data_dir / f"function-{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                f"--target={name}",
                "--source=main.py",
                f"--host={HOST}",
                f"--port={port}",
            ],
            cwd=FUNCTIONS_DIR,
            env=(env | {"WORKERS": str(api_workers)}) if name == "api" else env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.functions[name] = Function(name, port, proc)
    for fn in stack.functions.values():
        emulators.wait_for_port(fn.port, fn.proc)
    tasks_url = stack.functions["tasks"].url
    scheduler_token = issuer.tokens(CALLERS["scheduler"], env)
    stack.scheduler = Scheduler(f"{tasks_url}/sweep", sweep_every_s, scheduler_token, tasks_url)
    stack.scheduler.start()
    return stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="devtools.stack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data-emulators")
    parser.add_argument(
        "--sweep-every", type=float, default=SWEEP_EVERY_S, help="seconds between sweeps"
    )
    parser.add_argument(
        "--api-workers", type=int, default=1, help="processes serving the api function"
    )
    args = parser.parse_args()
    try:
        stack = start(
            args.data_dir.resolve(), sweep_every_s=args.sweep_every, api_workers=args.api_workers
        )
    except emulators.EmulatorMissing as e:
        sys.stderr.write(f"cannot start emulator mode: {e}\n")
        return 2
    out = sys.stdout
    out.write(f"DeepFlix queue service (emulator mode) — data in {stack.data_dir}\n")
    out.write(f"  Dashboard: {stack.api_url}/\n  API:       {stack.api_url}/api/movies\n")
    for name, fn in stack.functions.items():
        out.write(f"  function {name:<17} {fn.url}\n")
    out.write(f"  /sweep every {args.sweep_every:g}s (as Cloud Scheduler)\n")
    # The api function takes the Auth emulator's tokens here (README: who may do what).
    out.write(f"  Operator's ID token: {emulator_id_token('operator', admin=True)}\n")
    out.write(
        f"  Firestore {stack.firestore.address}  Pub/Sub {stack.pubsub.address}"
        f"  Cloud Tasks {stack.tasks.address}  Cloud Storage {stack.storage.address}\n"
    )
    out.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    stack.stop()
    emulators.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
