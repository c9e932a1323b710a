"""Local stand-ins for Google endpoints: a recording HTTP target, fake gRPC services, fake GCS."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.cloud import run_v2
from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport
from google.longrunning import operations_pb2
from google.protobuf import any_pb2

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """Records every POST; answers with the queued `statuses` first, then 200."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def wait(self, count: int, timeout_s: float) -> list[Received]:
        """Everything received, once at least `count` requests came or the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    break
            time.sleep(0.05)
        with self.lock:
            return list(self.requests)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on what arrived."""

    def reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def http_sink() -> Iterator[Sink]:
    holder: list[Sink] = []

    class Handler(_Quiet):
        def do_POST(self) -> None:
            sink = holder[0]
            received = Received("POST", self.path, dict(self.headers.items()), self.body())
            with sink.lock:
                sink.requests.append(received)
                status = sink.statuses.pop(0) if sink.statuses else 200
            self.reply(status)

    with _serving(Handler) as server:
        holder.append(Sink(server))
        yield holder[0]


Unary = Callable[[Any, grpc.ServicerContext], Any]


@contextmanager
def grpc_service(
    service: str,
    methods: Mapping[str, tuple[Unary, Callable[[bytes], Any], Callable[[Any], bytes]]],
) -> Iterator[grpc.Channel]:
    """A local gRPC server for `service` with the given unary methods; yields a channel to it.

    Each method is (handler, request deserializer, response serializer): the official
    client library talks to it exactly as it would to Google.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=load, response_serializer=dump
        )
        for name, (fn, load, dump) in methods.items()
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    channel = grpc.insecure_channel(f"{HOST}:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(grace=None)


@dataclass
class FakeGcs:
    """The JSON API's media upload and download for one bucket, in memory."""

    server: ThreadingHTTPServer
    bucket: str
    objects: dict[str, bytes] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"


@contextmanager
def fake_gcs(bucket: str) -> Iterator[FakeGcs]:
    holder: list[FakeGcs] = []

    def resource(name: str, data: bytes, content_type: str) -> bytes:
        meta = {"bucket": bucket, "name": name, "size": str(len(data)), "generation": "1"}
        return json.dumps({**meta, "contentType": content_type, "metageneration": "1"}).encode()

    class Handler(_Quiet):
        def do_POST(self) -> None:
            gcs = holder[0]
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path != f"/upload/storage/v1/b/{bucket}/o" or query["uploadType"] != [
                "multipart"
            ]:
                self.reply(404, b'{"error": {"code": 404, "message": "unexpected"}}')
                return
            # multipart/related: the object's JSON metadata, then its bytes.
            raw = b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n"
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                raw + self.body()
            )
            meta_part, media_part = list(message.iter_parts())
            meta = json.loads(bytes(meta_part.get_payload(decode=True)))
            data = bytes(media_part.get_payload(decode=True))
            content_type = media_part.get_content_type()
            gcs.uploads.append({"name": meta["name"], "data": data, "content_type": content_type})
            gcs.objects[meta["name"]] = data
            self.reply(200, resource(meta["name"], data, content_type), "application/json")

        def do_GET(self) -> None:
            gcs = holder[0]
            url = urllib.parse.urlsplit(self.path)
            if url.path == f"/storage/v1/b/{bucket}/o":  # a listing, by prefix
                prefix = urllib.parse.parse_qs(url.query).get("prefix", [""])[0]
                items = [
                    json.loads(resource(name, data, "application/octet-stream"))
                    for name, data in sorted(gcs.objects.items())
                    if name.startswith(prefix)
                ]
                body = json.dumps({"kind": "storage#objects", "items": items}).encode()
                self.reply(200, body, "application/json")
                return
            for prefix in (f"/download/storage/v1/b/{bucket}/o/", f"/storage/v1/b/{bucket}/o/"):
                if url.path.startswith(prefix):
                    name = urllib.parse.unquote(url.path[len(prefix) :])
                    if name in gcs.objects:
                        self.reply(200, gcs.objects[name], "application/octet-stream")
                        return
            self.reply(404, b'{"error": {"code": 404, "message": "No such object"}}')

        def do_DELETE(self) -> None:
            gcs = holder[0]
            url = urllib.parse.urlsplit(self.path)
            prefix = f"/storage/v1/b/{bucket}/o/"
            name = urllib.parse.unquote(url.path[len(prefix) :])
            if url.path.startswith(prefix) and gcs.objects.pop(name, None) is not None:
                self.reply(204)
                return
            self.reply(404, b'{"error": {"code": 404, "message": "No such object"}}')

    with _serving(Handler) as server:
        holder.append(FakeGcs(server, bucket))
        yield holder[0]


class FakeRun:
    """Cloud Run's RunJob and CancelExecution, recording every request."""

    def __init__(self) -> None:
        self.runs: list[run_v2.RunJobRequest] = []
        self.cancels: list[str] = []
        self.cancel_status = grpc.StatusCode.OK

    def run_job(self, request: run_v2.RunJobRequest, context: Any) -> operations_pb2.Operation:
        self.runs.append(request)
        execution = run_v2.Execution(name=f"{request.name}/executions/exec-{len(self.runs)}")
        metadata = any_pb2.Any()
        metadata.Pack(run_v2.Execution.pb(execution))
        return operations_pb2.Operation(name="operations/op-1", metadata=metadata, done=False)

    def cancel(
        self, request: run_v2.CancelExecutionRequest, context: Any
    ) -> operations_pb2.Operation:
        self.cancels.append(request.name)
        if self.cancel_status is not grpc.StatusCode.OK:
            context.abort(self.cancel_status, "fake says no")
        return operations_pb2.Operation(name="operations/op-2", done=False)


RunnerOf = Callable[[str | None], Any]  # own execution -> CloudRunJobRunner


@contextmanager
def cloud_run() -> Iterator[tuple[FakeRun, RunnerOf]]:
    """A FakeRun served over gRPC, and runners reaching it through the client library
    (given the execution they run in, if any)."""
    from deepflix.adapters.gcp.run_jobs import CloudRunJobRunner

    fake = FakeRun()
    dump = operations_pb2.Operation.SerializeToString
    with (
        grpc_service(
            "google.cloud.run.v2.Jobs",
            {"RunJob": (fake.run_job, run_v2.RunJobRequest.deserialize, dump)},
        ) as jobs,
        grpc_service(
            "google.cloud.run.v2.Executions",
            {"CancelExecution": (fake.cancel, run_v2.CancelExecutionRequest.deserialize, dump)},
        ) as executions,
    ):

        def runner(own_execution: str | None) -> CloudRunJobRunner:
            return CloudRunJobRunner(
                project="p1",
                location="europe-west4",
                own_execution=own_execution,
                jobs_client=lambda: run_v2.JobsClient(transport=JobsGrpcTransport(channel=jobs)),
                executions_client=lambda: run_v2.ExecutionsClient(
                    transport=ExecutionsGrpcTransport(channel=executions)
                ),
            )

        yield fake, runner
