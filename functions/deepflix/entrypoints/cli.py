"""The `deepflix` command: serve the embedded service, submit prompts, watch progress."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from pydantic import ValidationError

from deepflix.entrypoints import keys_cli

DEFAULT_URL = "http://127.0.0.1:{port}"
CLIENT_HEADER = "X-DeepFlix-Client"
STAGES = ("story", "images", "video")
TERMINAL = {"succeeded", "failed", "cancelled"}


def _out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def serve(args: argparse.Namespace) -> int:
    from deepflix import logs
    from deepflix.runtime import serve as server
    from deepflix.runtime.instance import CannotStart
    from deepflix.settings import Settings

    overrides = {"port": args.port} if args.port else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            sys.stderr.write(f"invalid setting {field.upper()}: {err['msg']}\n")
        return 2
    logs.setup(settings.log_level)
    try:
        return server.serve(settings, _out)
    except CannotStart as e:
        sys.stderr.write(f"deepflix serve: {e}\n")
        return 1


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    # The header that tells the service this is no other site's page (handlers/guard.py).
    req = urllib.request.Request(url, data=data, method=method, headers={CLIENT_HEADER: "cli"})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # nosec B310 # an http(s) URL from the operator's settings or flags
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _bar(progress: int, width: int = 24) -> str:
    filled = width * progress // 100
    return "█" * filled + "·" * (width - filled)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}min"


def finish_text(answer: dict[str, Any]) -> str:
    """The finish estimate of a create, status or position answer, for people."""
    eta = answer.get("eta")
    if not eta:
        return ""
    if eta["unknown"]:
        return f"ready: unknown ({eta['unknown'].replace('_', ' ')})"
    low, high = _duration(eta["finish_low_seconds"]), _duration(eta["finish_high_seconds"])
    return f"ready in ~{_duration(eta['finish_seconds'])} ({low}-{high})"


def _render(status: dict[str, Any]) -> str:
    parts = []
    for stage in STAGES:
        st = status["stages"][stage]
        parts.append(f"{stage:>6} {_bar(st['progress'])} {st['status']:<9}")
    pos = status.get("position")
    tail = f" #{pos['position']} in {pos['queue']}" if pos else ""
    finish = finish_text(status)
    return " | ".join(parts) + tail + (f", {finish}" if finish else "")


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
    finish = finish_text(created)
    _out(
        f"movie {movie_id} queued at position {created['position']}"
        + (f", {finish}" if finish else "")
    )
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
    keys_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except urllib.error.URLError as e:
        sys.stderr.write(f"cannot reach the service at {args.url}: {e.reason}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
