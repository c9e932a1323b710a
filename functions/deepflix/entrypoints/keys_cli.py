"""`deepflix keys`: make, list and revoke the embedded service's API keys (ADR 0017)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def register(sub: Any) -> None:
    """Add `keys create|list|revoke` to the `deepflix` command's subparsers."""
    keys = sub.add_parser("keys", help="API keys of the embedded service (its data directory)")
    keys.add_argument("--data-dir", type=Path, help="overrides DEEPFLIX_DATA_DIR")
    actions = keys.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="make a key and print it (once: it is kept hashed)")
    p.add_argument("--name", required=True, help="what the key is for, e.g. ci or alice-laptop")
    p.add_argument("--owner", required=True, help="whose movies its requests make and see")
    p.add_argument("--admin", action="store_true", help="an operator's key: every movie, queues")
    p.set_defaults(fn=functools.partial(run, create))
    p = actions.add_parser("list", help="the keys (never the keys themselves)")
    p.set_defaults(fn=functools.partial(run, show))
    p = actions.add_parser("revoke", help="revoke a key by its id (dfx_ and 8 more) or name")
    p.add_argument("key", help="the key's id, as `keys list` shows it, or its name")
    p.set_defaults(fn=functools.partial(run, revoke))


def _keys(args: argparse.Namespace) -> Any:
    from deepflix.adapters.local.api_keys import ApiKeys
    from deepflix.settings import Settings

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    return ApiKeys(settings.data_dir.resolve() / "movies.db")


def create(args: argparse.Namespace) -> int:
    if not args.name.strip() or not args.owner.strip():
        sys.stderr.write("deepflix keys create: --name and --owner may not be empty\n")
        return 2
    made, key = _keys(args).create(name=args.name, owner=args.owner, admin=args.admin)
    sys.stdout.write(key + "\n")
    role = "an operator (admin)" if made.admin else "a user"
    sys.stderr.write(
        f"key {made.id} ({made.name}) acts for owner {made.owner!r} as {role}. It is shown "
        "only now; send it as `Authorization: Bearer <key>`. From now on every request to "
        "this service needs a key.\n"
    )
    return 0


def show(args: argparse.Namespace) -> int:
    listed = _keys(args).listed()
    if not listed:
        sys.stdout.write("no API keys: on 127.0.0.1 every request is the local user\n")
    for k in listed:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        role = "admin" if k.admin else "user"
        sys.stdout.write(
            f"{k.id}  {k.name:<16} {k.owner:<16} {role:<5}  made {k.created_at}  {state}\n"
        )
    return 0


def revoke(args: argparse.Namespace) -> int:
    revoked = _keys(args).revoke(args.key)
    if not revoked:
        sys.stderr.write(f"deepflix keys revoke: no active key has the id or name {args.key!r}\n")
        return 1
    sys.stdout.write("".join(f"revoked {k}\n" for k in revoked))
    return 0


def run(action: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The action, with invalid settings said in one line each, as `serve` does."""
    try:
        return action(args)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            sys.stderr.write(f"invalid setting {field.upper()}: {err['msg']}\n")
        return 2
