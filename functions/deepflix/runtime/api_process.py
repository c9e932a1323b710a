"""The HTTP API process of `deepflix serve`: reads answered on one event loop, writes sent on."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import sys
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from deepflix import logs
from deepflix.adapters.local.changes import SqliteChanges
from deepflix.adapters.local.figures import SqliteFigures
from deepflix.handlers.api import Api
from deepflix.handlers.guard import RequestGuard
from deepflix.pipeline.figures import ServiceFigures
from deepflix.runtime.compose import Reader, build_reader
from deepflix.runtime.status_channel import StatusReader
from deepflix.runtime.write_channel import WriteClient
from deepflix.settings import Settings

log = logs.get("api")
# Under the runtime's own grace (runtime/serve.py): what is in flight is answered first.
SHUTDOWN_GRACE_S = 20


def build(settings: Settings, writes: WriteClient, status: StatusReader | None = None) -> Api:
    reader = build_reader(settings)
    return Api(
        pipeline=reader.pipeline,
        writes=writes,
        artifacts=reader.artifacts,
        guard=RequestGuard.local(
            host=settings.host,
            port=settings.port,
            allowed_hosts=settings.allowed_hosts,
            allowed_origins=settings.allowed_origins,
        ),
        local_file=reader.artifacts.resolve,
        extra_metrics=lambda: queue_metrics(reader, status),
        runtime_health=status.health if status is not None else None,
        changes=SqliteChanges(settings.data_dir.resolve() / "movies.db"),
        figures=functools.partial(service_figures, SqliteFigures(reader.queue.db), reader, status),
    )


def queue_metrics(reader: Reader, status: StatusReader | None) -> dict[str, Any]:
    """The queues view's part from the queue's messages and the runtime's report: a
    delivery that is stuck, or a database that takes no writes, shows here."""
    metrics: dict[str, Any] = {"dead_letters": len(reader.queue.dead_letters())}
    if status is not None:
        report = status.latest() or {}
        metrics["store"] = report.get("store")
        messages = asdict(reader.queue.stored())
        metrics["delivery"] = {**report.get("delivery", {}), "messages": messages}
    return metrics


def service_figures(
    stages: SqliteFigures, reader: Reader, status: StatusReader | None
) -> ServiceFigures:
    """/metrics' figures: the stages' from the database, the webhooks' from the runtime."""
    report = (status.latest() if status is not None else None) or {}
    return ServiceFigures(stages(), len(reader.queue.dead_letters()), report.get("webhooks"))


def listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here rather than by the server: the runtime is
    told the API serves only once the port is this process's (docs/decisions/0011)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off only on sockets
    # that say they are TCP, and with it on a kept-alive connection's answers wait for
    # the client's delayed acknowledgement.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol on httptools, answering a request that is not valid HTTP
    (a method the parser does not know, bytes outside ASCII in the target, framing that
    contradicts itself) with the API's JSON error instead of a plain-text line."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(
            {
                "error": {
                    "code": "bad_request",
                    "message": "not a valid HTTP request",
                    "details": None,
                }
            }
        )
        head = (
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()


class ApiServer(uvicorn.Server):
    """uvicorn's server, ending the API's open event streams as it stops: they never end
    by themselves, and would otherwise hold the stop up for all its grace."""

    def __init__(self, config: uvicorn.Config, api: Api) -> None:
        super().__init__(config)
        self.api = api

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.api.close_streams()
        await super().shutdown(sockets)


def http_server(api: Api) -> uvicorn.Server:
    """uvicorn on this process's event loop, with httptools parsing HTTP: the only Python
    thread here, so no other competes with it for the GIL (docs/decisions/0009, 0011)."""
    config = uvicorn.Config(
        api.app(),
        http=HttpProtocol,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    ours = logging.getLogger("deepflix")
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = ours.handlers
        logging.getLogger(name).propagate = False
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    return ApiServer(config, api)


async def serve(
    settings: Settings,
    listener: socket.socket,
    channel: Connection,
    status: StatusReader | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, or until the runtime is gone: its end of the channel
    closing means it stopped or was killed, and the port must be free for its restart.
    Either way the server stops taking connections and answers those it holds first."""
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    writes = WriteClient(channel, on_close=stop)
    server = http_server(build(settings, writes, status))
    loop = asyncio.get_running_loop()
    # uvicorn takes these signals over while it serves, then hands one it stopped on back
    # to the handler it found: this one, which has nothing left to do by then.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    writes.start()  # and says the API serves: the port is bound
    await server.serve(sockets=[listener])
    writes.close()


def main(argv: list[str]) -> int:
    """Run by `deepflix serve` with the file descriptors of its end of the write channel
    and of the runtime's status reports."""
    settings = Settings()
    logs.setup(settings.log_level)
    status = StatusReader(int(argv[1])) if len(argv) > 1 else None
    if status is not None:
        status.start()
    try:
        listener = listen(settings.host, settings.port)
    except OSError as e:
        log.error("cannot listen on %s port %d: %s", settings.host, settings.port, e.strerror)
        return 1
    asyncio.run(serve(settings, listener, Connection(int(argv[0])), status))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
