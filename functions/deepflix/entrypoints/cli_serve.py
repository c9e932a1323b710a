"""`deepflix serve`: settings and start-up checks said in one line, then the embedded service."""

from __future__ import annotations

import argparse
import os
import sys


def serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from deepflix import logs
    from deepflix.runtime import serve as server
    from deepflix.runtime import startup
    from deepflix.runtime.instance import CannotStart
    from deepflix.settings import Settings

    if args.json_logs:  # for the API process too, which reads the settings again
        os.environ["DEEPFLIX_LOG_FORMAT"] = "json"
    for warning in startup.warnings():
        sys.stderr.write(f"deepflix serve: warning: {warning}\n")
    overrides = {"port": args.port} if args.port else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]).upper()
            name = field if field in ("PORT", "") else f"DEEPFLIX_{field}"
            value = err.get("input")
            shown = f"={value}" if isinstance(value, str | int | float) and name else ""
            where = f"invalid setting {name}{shown}: " if name else "invalid settings: "
            sys.stderr.write(f"deepflix serve: {where}{err['msg'].removeprefix('Value error, ')}\n")
        return 2
    human = logs.for_people(settings.log_format)
    logs.setup(settings.log_level, human=human)
    try:
        startup.check(settings)
        return server.serve(settings, _out, narrate=human)
    except CannotStart as e:
        sys.stderr.write(f"deepflix serve: {e}\n")
        return 1


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the service in embedded mode (what `make run` does)")
    p.add_argument("--port", type=int, help="overrides PORT")
    p.add_argument(
        "--json-logs",
        action="store_true",
        help="JSON log lines even at a terminal (DEEPFLIX_LOG_FORMAT=json)",
    )
    p.set_defaults(fn=serve, client=False)
