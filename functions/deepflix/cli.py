"""The `deepflix` command: serve the embedded service, submit prompts, watch progress."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from pydantic import ValidationError

DEFAULT_URL = "http://127.0.0.1:{port}"
STAGES = ("story", "images", "video")
TERMINAL = {"succeeded", "failed", "cancelled"}


def _out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def _http_server(app: Any, host: str, port: int, threads: int) -> Any:
    """granian's server, in this process: HTTP parsing and socket I/O run in Rust threads
    without the GIL, and `threads` Python threads run the app (docs/decisions/0006)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server.common import AbstractServer
    from granian.server.mt import MTServer

    class InProcessServer(MTServer):
        """The worker is a thread of this process, so the API shares it with the runtime.

        granian offers thread workers for free-threaded Python and refuses a GIL build; with
        one worker the GIL costs nothing extra, and a worker process would outlive a
        `kill -9` of ours holding the port.
        """

        def _check_gil(self) -> None:
            """The GIL is expected here."""

        def serve(self, *args: Any, **kwargs: Any) -> None:
            # MTServer.serve only adds a warning about free-threaded builds.
            AbstractServer.serve(self, *args, **kwargs)

    server = InProcessServer(
        "deepflix",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=threads,
        runtime_threads=1,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
    )
    # granian configured its logger on construction; send it through ours.
    logging.getLogger("_granian").handlers[:] = logging.getLogger("deepflix").handlers
    return server


def serve(args: argparse.Namespace) -> int:
    from deepflix import logs
    from deepflix.config import Settings
    from deepflix.handlers.api import Api
    from deepflix.handlers.wiring import build_embedded

    overrides = {"port": args.port} if args.port else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            sys.stderr.write(f"invalid setting {field.upper()}: {err['msg']}\n")
        return 2
    logs.setup(settings.log_level)
    runtime = build_embedded(settings)
    runtime.start()
    app = Api(
        pipeline=runtime.pipeline,
        artifacts=runtime.artifacts,
        local_file=runtime.artifacts.resolve,
        extra_metrics=lambda: {"dead_letters": len(runtime.queue.dead_letters())},
    )
    server = _http_server(app, settings.host, settings.port, settings.http_threads)
    base = f"http://{settings.host}:{settings.port}"
    _out(f"DeepFlix queue service (embedded) — data in {settings.data_dir.resolve()}")
    _out(f"  Dashboard: {base}/")
    _out(f"  API:       {base}/api/movies")
    _out(f"  Queues:    {base}/api/queues")
    _out(f"  Health:    {base}/healthz")
    try:
        # Returns on SIGTERM or SIGINT, once the requests in flight are answered.
        server.serve(target_loader=lambda _target: app)
    finally:
        runtime.stop()
    return 0


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _bar(progress: int, width: int = 24) -> str:
    filled = width * progress // 100
    return "█" * filled + "·" * (width - filled)


def _render(status: dict[str, Any]) -> str:
    parts = []
    for stage in STAGES:
        st = status["stages"][stage]
        parts.append(f"{stage:>6} {_bar(st['progress'])} {st['status']:<9}")
    pos = status.get("position")
    tail = f" #{pos['position']} in {pos['queue']}" if pos else ""
    return " | ".join(parts) + tail


def submit(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "priority": args.priority}
    if args.scenes:
        body["scene_count"] = args.scenes
    if args.title:
        body["title"] = args.title
    code, created = _call(f"{args.url}/api/movies", "POST", body)
    if code != 202:
        _out(json.dumps(created, indent=2))
        return 1
    movie_id = created["movie_id"]
    _out(f"movie {movie_id} queued at position {created['position']}")
    if not args.wait:
        return 0
    tty = sys.stdout.isatty()
    last = ""
    while True:
        _, status = _call(f"{args.url}/api/movies/{movie_id}/status")
        line = _render(status)
        if tty:
            _out("\r" + line, end="")
        elif line != last:
            _out(line)
        last = line
        if status["status"] in TERMINAL:
            break
        time.sleep(0.25)
    if tty:
        _out()
    _out(f"{status['status']}: {args.url}{status['artifacts']['video'] or ''}")
    return 0 if status["status"] == "succeeded" else 1


def show_status(args: argparse.Namespace) -> int:
    code, status = _call(f"{args.url}/api/movies/{args.movie_id}/status")
    _out(json.dumps(status, indent=2))
    return 0 if code == 200 else 1


def show_list(args: argparse.Namespace) -> int:
    code, page = _call(f"{args.url}/api/movies?limit={args.limit}")
    if code != 200:
        _out(json.dumps(page, indent=2))
        return 1
    for m in page["movies"]:
        _out(f"{m['movie_id']}  {m['status']:<10} {m['priority']:<6} {m['prompt'][:60]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    port = os.environ.get("PORT", "8080")
    parser = argparse.ArgumentParser(prog="deepflix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the service in embedded mode")
    p.add_argument("--port", type=int, help="overrides PORT")
    p.set_defaults(fn=serve)
    for name, fn, helptext in (
        ("submit", submit, "submit a prompt"),
        ("status", show_status, "show a movie's status"),
        ("list", show_list, "list movies, newest first"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--url", default=DEFAULT_URL.format(port=port))
        p.set_defaults(fn=fn)
        if name == "submit":
            p.add_argument("prompt")
            p.add_argument("--wait", action="store_true", help="follow progress until done")
            p.add_argument("--priority", choices=["low", "normal", "high"], default="normal")
            p.add_argument("--scenes", type=int)
            p.add_argument("--title")
        elif name == "status":
            p.add_argument("movie_id")
        else:
            p.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except urllib.error.URLError as e:
        sys.stderr.write(f"cannot reach the service at {args.url}: {e.reason}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
