"""The `deepflix` command: serve the embedded service, submit prompts, follow and manage movies."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deepflix.entrypoints import cli_commands as commands
from deepflix.entrypoints import cli_serve
from deepflix.entrypoints.cli_client import CliError, default_url

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
# Other modules that add commands of their own: each has `register(subparsers)`.
EXTRA_COMMANDS = ("deepflix.entrypoints.keys_cli",)


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=None,
        help="the service (default: DEEPFLIX_URL, else http://127.0.0.1:$PORT, PORT 8080)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="a credential sent as `Authorization: Bearer` (default: DEEPFLIX_TOKEN)",
    )


def _command(
    sub: Subparsers, name: str, fn: Callable[..., int], helptext: str
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=helptext, description=helptext)
    _client_options(p)
    p.set_defaults(fn=fn, client=True)
    return p


def _movie(p: argparse.ArgumentParser) -> None:
    p.add_argument("movie_id", help="the movie's id, or its start as `list` shows it")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="deepflix", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_serve.register(sub)
    p = _command(sub, "submit", commands.submit, "ask for a movie")
    p.add_argument("prompt")
    p.add_argument("--style", choices=commands.STYLES, default="cinematic")
    p.add_argument("--scenes", type=int, help="1-24 scenes (6)")
    p.add_argument("--priority", choices=["low", "normal", "high"], default="normal")
    p.add_argument("--title", help="the film's title (else the story's)")
    p.add_argument("--seed", type=int, help="the same seed and prompt make the same film")
    p.add_argument("--wait", action="store_true", help="follow its progress until it ends")
    p.add_argument("--json", action="store_true", help="print the service's answer as JSON")
    p = _command(sub, "status", commands.status, "show a movie's state, stages and files")
    _movie(p)
    p.add_argument("--json", action="store_true", help="the status document, for scripts")
    p.add_argument("--wait", action="store_true", help="follow its progress until it ends")
    p = _command(sub, "list", commands.show_list, "list movies, newest first")
    p.add_argument("--status", choices=commands.STATUSES, help="only movies with this status")
    p.add_argument("--limit", type=int, default=20, help="how many (1-100, 20)")
    p.add_argument("--json", action="store_true")
    p = _command(sub, "cancel", commands.cancel, "cancel a movie, waiting or running")
    _movie(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = _command(sub, "retry", commands.retry, "retry a failed or cancelled movie")
    _movie(p)
    p.add_argument("--wait", action="store_true", help="follow its progress until it ends")
    p = _command(sub, "delete", commands.delete, "delete a movie and its files")
    _movie(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = _command(sub, "download", commands.download, "save a movie's film (or another file)")
    _movie(p)
    p.add_argument("--what", choices=commands.ARTIFACTS, default="video")
    p.add_argument("--output", "-o", help="the file to write (<id>-<name> here)")
    p = _command(sub, "logs", commands.logs, "the tail of a movie's job log")
    _movie(p)
    p.add_argument("--tail", type=int, default=200, help="lines (200)")
    for name, fn in (("pause", commands.pause), ("resume", commands.resume)):
        p = _command(sub, name, fn, f"{name} admission of new movies, or one stage's queue")
        p.add_argument("stage", nargs="?", choices=("story", "images", "video"))
    p = _command(sub, "watch", commands.watch, "a live table of the queues and active movies")
    p.add_argument("--status", choices=commands.STATUSES, help="movies with this status instead")
    p.add_argument("--rounds", type=int, help=argparse.SUPPRESS)  # tests: redraws, then stop
    p = _command(sub, "queues", commands.queues, "each queue's depth and admission")
    p.add_argument("--json", action="store_true")
    for module in EXTRA_COMMANDS:
        try:
            extra: Any = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        extra.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "client", False):
        return int(args.fn(args))
    from rich.console import Console

    args.url = (args.url or default_url()).rstrip("/")
    args.token = args.token or os.environ.get("DEEPFLIX_TOKEN") or None
    console = Console(highlight=False)
    try:
        return int(args.fn(args, console))
    except CliError as e:
        sys.stderr.write(f"deepflix {args.command}: {e.message}\n")
        return e.code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
