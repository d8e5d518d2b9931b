"""``squall apikey create|list|get|enable|disable|delete``: API keys (shown once)."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from squall.cli.client import EXIT_USAGE, Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def cmd_create(args: argparse.Namespace, client: Client) -> int:
    metadata: dict[str, str] = {}
    for item in args.metadata or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --metadata {item!r}: expected key=value")
            return EXIT_USAGE
        metadata[key] = value
    body: dict[str, object] = {"metadata": metadata}
    if args.user:
        body["user"] = args.user
    doc = client.post("/api/v1/apikeys", body)
    if args.json:
        print_json(doc)
    elif args.only_key:
        print(doc["key"])
    else:
        print(f"API key {doc['id']} for {doc['user']} (shown only now; store it safely):")
        print(doc["key"])
    return 0


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    docs = client.get("/api/v1/apikeys", limit=-1)
    if args.json:
        print_json(docs)
    else:
        print_table(
            docs,
            [
                ("id", "id"),
                ("user", "user"),
                ("enabled", "enabled"),
                ("created", "created_at"),
                ("metadata", "metadata"),
            ],
        )
    return 0


def cmd_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/apikeys/{quote(args.id, safe='')}")
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def _set_enabled(args: argparse.Namespace, client: Client, enabled: bool) -> int:
    doc = client.put(f"/api/v1/apikeys/{quote(args.id, safe='')}", {"enabled": enabled})
    print(f"API key {doc['id']} {'enabled' if doc['enabled'] else 'disabled'}")
    return 0


def cmd_enable(args: argparse.Namespace, client: Client) -> int:
    return _set_enabled(args, client, True)


def cmd_disable(args: argparse.Namespace, client: Client) -> int:
    return _set_enabled(args, client, False)


def cmd_delete(args: argparse.Namespace, client: Client) -> int:
    client.delete(f"/api/v1/apikeys/{quote(args.id, safe='')}")
    print(f"deleted API key {args.id}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser("apikey", help="API keys (St2-Api-Key)")
    ksub = key.add_subparsers(dest="verb", required=True, metavar="VERB")
    create = ksub.add_parser("create", help="create a key (printed once)")
    create.add_argument("-u", "--user", help="for another user (admins only)")
    create.add_argument("-m", "--metadata", action="append", help="key=value (repeatable)")
    create.add_argument("-k", "--only-key", action="store_true", help="print only the key")
    create.add_argument("-j", "--json", action="store_true", help="print JSON")
    create.set_defaults(func=cmd_create)
    ls = ksub.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    for verb, func, text in (
        ("get", cmd_get, "show a key's record"),
        ("enable", cmd_enable, "enable a key"),
        ("disable", cmd_disable, "disable a key (requests with it are refused)"),
        ("delete", cmd_delete, "delete a key"),
    ):
        p = ksub.add_parser(verb, help=text)
        p.add_argument("id")
        if verb == "get":
            p.add_argument("-j", "--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
