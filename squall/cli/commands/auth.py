"""``squall login`` and ``squall whoami``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from squall.cli.client import EXIT_USAGE, Client
from squall.cli.output import print_detail, print_json

__all__ = ["register"]


def cmd_login(args: argparse.Namespace, client: Client) -> int:
    password = args.password or os.environ.get("SQUALL_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            print("error: no password (use -p, SQUALL_PASSWORD or a terminal)", file=sys.stderr)
            return EXIT_USAGE
        password = getpass.getpass(f"password for {args.user}: ")
    doc = client.login(args.user, password, ttl=args.ttl)
    print(f"logged in as {doc['user']} at {client.url} (token expires {doc['expiry']})")
    return 0


def cmd_whoami(args: argparse.Namespace, client: Client) -> int:
    doc = client.get("/api/v1/user")
    if args.json:
        print_json(doc)
    else:
        print_detail(
            [
                ("user", doc["username"]),
                ("roles", ", ".join(doc["rbac"]["roles"]) or "(none)"),
                ("server", client.url),
            ]
        )
    return 0


def cmd_logout(args: argparse.Namespace, client: Client) -> int:
    """Revoke the cached token and forget it."""
    client.logout()
    print(f"logged out of {client.url}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = sub.add_parser("login", help="log in and cache a token")
    login.add_argument("user")
    login.add_argument("-p", "--password", help="(default: prompt, or SQUALL_PASSWORD)")
    login.add_argument("--ttl", type=int, help="token lifetime in seconds")
    login.set_defaults(func=cmd_login)
    logout = sub.add_parser("logout", help="revoke and forget the cached token")
    logout.set_defaults(func=cmd_logout)
    who = sub.add_parser("whoami", help="who the CLI is logged in as")
    who.add_argument("-j", "--json", action="store_true", help="print JSON")
    who.set_defaults(func=cmd_whoami)
