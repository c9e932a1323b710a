"""The HTTP API process of `deepflix serve`: reads answered on one event loop, writes linked."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
from typing import Any, NoReturn

from werkzeug.wrappers import Request

from deepflix import logs
from deepflix.adapters.local.artifacts import LocalArtifactStore
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.queue import SqliteQueue
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.handlers.api import ANONYMOUS, MAX_BODY, Api
from deepflix.handlers.responses import Answer, FileReply, Reply, failure
from deepflix.pipeline.service import Pipeline
from deepflix.runtime.serve import http_server
from deepflix.runtime.write_channel import WriteClient
from deepflix.settings import Settings

WRITES = frozenset({"create", "cancel", "retry", "pause", "resume"})


class AsyncApi:
    """The Api as an RSGI application (granian's native interface).

    Reads run on the event loop itself, one at a time: no Python thread of this process
    competes for the GIL, where eight request threads beside the runtime's had made a
    status answer wait tens of milliseconds (docs/decisions/0009). A write is sent to the
    runtime and awaited, so it holds no thread while the writer commits it.
    """

    def __init__(self, api: Api, link: WriteClient) -> None:
        self.api = api
        self.link = link

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.link.start(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.link.close(loop)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        body = await _body(proto) if scope.method in ("POST", "PUT", "PATCH") else b""
        request = Request(_environ(scope, body))
        try:
            endpoint, args = self.api.route(request)
            if endpoint in WRITES:
                answer: Answer = await self._write(endpoint, request, args)
            else:
                answer = self.api.call(endpoint, request, args)
        except Exception as e:
            answer = failure(request, e)
        head = scope.method == "HEAD"
        if isinstance(answer, Reply):
            proto.response_bytes(answer.status, answer.wsgi_headers(), b"" if head else answer.body)
        elif isinstance(answer, FileReply):
            headers = [("Content-Type", answer.media_type)]
            if head:
                headers.append(("Content-Length", str(answer.path.stat().st_size)))
                proto.response_empty(200, headers)
            else:
                proto.response_file(200, headers, str(answer.path))
        else:  # the dashboard page
            proto.response_bytes(answer.status_code, list(answer.headers.items()), answer.data)

    async def _write(self, endpoint: str, request: Request, args: dict[str, str]) -> Reply:
        api, link = self.api, self.link
        if endpoint == "create":
            create, key = api.create_args(request)
            return api.created(await link.create(create, owner=ANONYMOUS, idempotency_key=key))
        if endpoint == "cancel":
            return api.cancelled(await link.cancel(args["movie_id"]))
        if endpoint == "retry":
            return api.retried(await link.retry(args["movie_id"]))
        if endpoint == "pause":
            await link.pause_admission()
        else:
            await link.resume_admission()
        return api.queues()


async def _body(proto: Any) -> bytes:
    """The request body, read no further than the API accepts (the Api answers 413)."""
    chunks, size = [], 0
    async for chunk in proto:
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def _environ(scope: Any, body: bytes) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path,
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": "deepflix",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,  # read a chunked body to its end
    }
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class NoWrites:
    """The ports a reading pipeline never uses: this process's writes go to the runtime."""

    def enqueue(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("the API process sends its writes to the runtime")

    publish = run = cancel = enqueue


def build(settings: Settings, sock: socket.socket) -> AsyncApi:
    data = settings.data_dir.resolve()
    db = Database(data / "movies.db", read_only=True)
    queue = SqliteQueue(db)
    artifacts = LocalArtifactStore(settings.media_root() / "artifacts")
    none = NoWrites()
    pipeline = Pipeline(
        store=SqliteMovieStore(db),
        tasks=none,
        events=none,
        jobs=none,
        config=settings.pipeline_config(),
    )
    api = Api(
        pipeline=pipeline,
        artifacts=artifacts,
        local_file=artifacts.resolve,
        extra_metrics=lambda: {"dead_letters": len(queue.dead_letters())},
    )
    # The runtime gone (stopped or killed): stop too, so the port is free for its restart.
    link = WriteClient(sock, on_close=lambda: os.kill(os.getpid(), signal.SIGTERM))
    return AsyncApi(api, link)


def main(argv: list[str]) -> int:
    """Run by `deepflix serve` with the file descriptor of its end of the link."""
    settings = Settings()
    logs.setup(settings.log_level)
    app = build(settings, socket.socket(fileno=int(argv[0])))
    server = http_server(settings.host, settings.port)
    server.serve(target_loader=lambda _target: app)  # returns on SIGTERM or SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
