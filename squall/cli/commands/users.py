"""``squall user add|passwd|list|get|update|delete``: local users (admins; a user may change
their own password)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from urllib.parse import quote

from squall.cli.client import EXIT_USAGE, ApiError, Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def _new_password(args: argparse.Namespace) -> str:
    """From ``--password``, ``SQUALL_NEW_PASSWORD``, a prompt (twice), or a line on stdin."""
    if args.password:
        return str(args.password)
    env = os.environ.get("SQUALL_NEW_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        first = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != first:
            raise ApiError("the passwords differ", exit_code=EXIT_USAGE)
        return first
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        raise ApiError(
            "no password: use --password, SQUALL_NEW_PASSWORD, a terminal or stdin",
            exit_code=EXIT_USAGE,
        )
    return line


def _path(name: str) -> str:
    return f"/api/v1/users/{quote(name, safe='')}"


def cmd_add(args: argparse.Namespace, client: Client) -> int:
    doc = client.post(
        "/api/v1/users",
        {"name": args.name, "password": _new_password(args), "roles": args.role or []},
    )
    print(f"created user {doc['name']!r} (roles: {', '.join(doc['roles']) or 'none'})")
    return 0


def cmd_passwd(args: argparse.Namespace, client: Client) -> int:
    body = {"password": _new_password(args)}
    if args.current:
        body["current_password"] = args.current
    client.put(f"{_path(args.name)}/password", body)
    print(f"password of {args.name!r} changed; their tokens were revoked")
    return 0


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    docs = client.get("/api/v1/users")
    if args.json:
        print_json(docs)
    else:
        print_table(
            docs,
            [
                ("name", "name"),
                ("enabled", "enabled"),
                ("roles", "roles"),
                ("created", "created_at"),
            ],
        )
    return 0


def cmd_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(_path(args.name))
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def cmd_update(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, object] = {}
    if args.role is not None:
        body["roles"] = [] if args.role == [""] else args.role
    if args.enabled is not None:
        body["enabled"] = args.enabled
    if not body:
        print("error: nothing to change (use --role, --enable or --disable)", file=sys.stderr)
        return EXIT_USAGE
    doc = client.put(_path(args.name), body)
    state = "enabled" if doc["enabled"] else "disabled"
    print(f"user {doc['name']!r}: {state}, roles: {', '.join(doc['roles']) or 'none'}")
    return 0


def cmd_delete(args: argparse.Namespace, client: Client) -> int:
    client.delete(_path(args.name))
    print(f"deleted user {args.name!r} (with their tokens and API keys)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="local users (Argon2 passwords)")
    usub = user.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = usub.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("-p", "--password", help="(default: prompt, SQUALL_NEW_PASSWORD or stdin)")
    add.add_argument("-r", "--role", action="append", help="a role (repeatable)")
    add.set_defaults(func=cmd_add)
    pw = usub.add_parser("passwd", help="set a password (revokes the user's tokens)")
    pw.add_argument("name")
    pw.add_argument("-p", "--password", help="the new password (default: prompt or stdin)")
    pw.add_argument("--current", help="your current password (to change your own)")
    pw.set_defaults(func=cmd_passwd)
    ls = usub.add_parser("list", help="list users")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    get = usub.add_parser("get", help="show a user")
    get.add_argument("name")
    get.add_argument("-j", "--json", action="store_true", help="print JSON")
    get.set_defaults(func=cmd_get)
    upd = usub.add_parser("update", help="set roles, enable or disable a user")
    upd.add_argument("name")
    upd.add_argument(
        "-r", "--role", action="append", help="the user's roles, replacing them (repeatable)"
    )
    state = upd.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_const", const=True)
    state.add_argument("--disable", dest="enabled", action="store_const", const=False)
    upd.set_defaults(func=cmd_update, enabled=None)
    rm = usub.add_parser("delete", help="delete a user")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_delete)
