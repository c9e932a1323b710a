"""The CLI's commands against a running service: submit, status, list, cancel, retry, ..."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from deepflix.entrypoints import cli_follow
from deepflix.entrypoints import cli_views as views
from deepflix.entrypoints.cli_client import ApiError, Client, CliError

STYLES = ("cinematic", "noir", "anime", "watercolor", "documentary", "retro")
STATUSES = ("queued", "story", "images", "video", "succeeded", "failed", "cancelled")
ARTIFACTS = ("video", "poster", "captions", "story")


def _client(args: argparse.Namespace) -> Client:
    return Client(args.url, args.token)


def _ended(console: Console, view: dict[str, Any]) -> int:
    """The last line about a movie that ended: where its film is, or why it failed."""
    sid = views.short_id(view["movie_id"])
    if view["status"] == "succeeded":
        film = view["artifacts"]["video"]
        console.print(f"{sid} succeeded: deepflix download {sid}  (or {film})", soft_wrap=True)
        return 0
    if view["status"] == "failed":
        console.print(f"{sid} {views.failure(view)}", style="red", soft_wrap=True)
        console.print(f"retry it from that stage: deepflix retry {sid}")
        return 1
    console.print(f"{sid} {view['status']}")
    return 1


def _follow(client: Client, console: Console, movie_id: str) -> int:
    try:
        view = cli_follow.follow(client, movie_id, console)
    except KeyboardInterrupt:
        sid = views.short_id(movie_id)
        console.print(
            f"\nstopped waiting; the movie goes on. Follow it again: deepflix status {sid} --wait"
        )
        return 130
    return _ended(console, view)


def submit(args: argparse.Namespace, console: Console) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "priority": args.priority, "style": args.style}
    for key, value in (("scene_count", args.scenes), ("title", args.title), ("seed", args.seed)):
        if value is not None:
            body[key] = value
    client = _client(args)
    answer = client.post("/api/movies", body)
    if args.json and not args.wait:
        console.print_json(data=answer)
        return 0
    console.print(views.created(answer), soft_wrap=True)
    if not args.wait:
        return 0
    return _follow(client, console, answer["movie_id"])


def status(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    if args.wait:
        return _follow(client, console, movie_id)
    view = client.get(f"/api/movies/{movie_id}/status")
    if args.json:
        console.print_json(data=view)
    else:
        console.print(views.status_view(view))
    return 0


def show_list(args: argparse.Namespace, console: Console) -> int:
    page = _client(args).get("/api/movies", limit=args.limit, status=args.status)
    movies = page["movies"]
    if args.status:  # where the service does not filter yet, here
        movies = [m for m in movies if m["status"] == args.status]
    if args.json:
        console.print_json(data={**page, "movies": movies})
        return 0
    if not movies:
        console.print("no movies" + (f" with status {args.status}" if args.status else ""))
        return 0
    console.print(views.list_table(movies))
    if page.get("next_cursor"):
        console.print(f"(the newest {len(page['movies'])}; --limit shows more, up to 100)")
    return 0


def _confirm(console: Console, question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CliError(f"{question} Not asked: no terminal to answer at; add --yes", 2)
    answer = console.input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _describe(client: Client, movie_id: str) -> tuple[str, dict[str, Any]]:
    view = client.get(f"/api/movies/{movie_id}/status")
    name = views.name_of(view)
    name = name if len(name) <= 50 else name[:49] + "…"
    return f'{views.short_id(movie_id)} "{name}" ({views.state(view)})', view


def cancel(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    what, _ = _describe(client, movie_id)
    if not _confirm(console, f"Cancel {what}? It cannot be resumed, only retried.", args.yes):
        console.print("not cancelled")
        return 1
    view = client.post(f"/api/movies/{movie_id}/cancel")
    console.print(f"{views.short_id(movie_id)} {view['status']}")
    return 0


def retry(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    view = client.post(f"/api/movies/{movie_id}/retry")
    console.print(f"{views.short_id(movie_id)} retried: {views.state(view)}", soft_wrap=True)
    return _follow(client, console, movie_id) if args.wait else 0


def delete(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    what, _ = _describe(client, movie_id)
    if not _confirm(console, f"Delete {what} and its files?", args.yes):
        console.print("not deleted")
        return 1
    client.send("DELETE", f"/api/movies/{movie_id}")
    console.print(f"{views.short_id(movie_id)} deleted")
    return 0


def download(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    view = client.get(f"/api/movies/{movie_id}/status")
    url = view["artifacts"].get(args.what)
    if not url:
        raise CliError(
            f"movie {views.short_id(movie_id)} has no {args.what} yet ({views.state(view)})"
        )
    name = url.rsplit("/", 1)[-1]
    out = Path(args.output) if args.output else Path(f"{views.short_id(movie_id)}-{name}")
    if url.startswith("/"):
        body = client.send("GET", url).body
    else:  # a signed URL in the cloud: the bearer token is not for its host
        body = Client(url.rsplit("/", 1)[0]).send("GET", "/" + name).body
    out.write_bytes(body)
    console.print(f"{out} ({len(body):,} bytes)")
    return 0


def logs(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    movie_id = client.resolve(args.movie_id)
    try:
        answer = client.send("GET", f"/api/movies/{movie_id}/logs?tail={args.tail}")
    except ApiError as e:
        if e.status == 404 and e.error_code == "not_found" and "no route" in e.message:
            raise CliError("this service has no job logs route (an older version)") from None
        raise
    text = answer.body.decode("utf-8", "replace")
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0


def _queues_changed(args: argparse.Namespace, console: Console, action: str) -> int:
    client = _client(args)
    path = f"/api/queues/{args.stage}/{action}" if args.stage else f"/api/admission/{action}"
    queues = client.post(path)
    console.print(views.queues_line(queues), soft_wrap=True)
    return 0


def pause(args: argparse.Namespace, console: Console) -> int:
    return _queues_changed(args, console, "pause")


def resume(args: argparse.Namespace, console: Console) -> int:
    return _queues_changed(args, console, "resume")


def watch(args: argparse.Namespace, console: Console) -> int:
    with contextlib.suppress(KeyboardInterrupt):  # the way to stop watching
        cli_follow.watch(_client(args), console, status=args.status, rounds=args.rounds)
    return 0


def queues(args: argparse.Namespace, console: Console) -> int:
    answer = _client(args).get("/api/queues")
    if args.json:
        console.print_json(data=answer)
    else:
        console.print(views.queues_line(answer), soft_wrap=True)
    return 0
