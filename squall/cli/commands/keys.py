"""``squall key …``: the datastore."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from squall.cli.client import Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def _scope(args: argparse.Namespace) -> str:
    return str(args.scope or "system")


def cmd_set(args: argparse.Namespace, client: Client) -> int:
    body = {
        "name": args.name,
        "value": args.value,
        "secret": args.encrypt,
        "scope": _scope(args),
    }
    if args.ttl:
        body["ttl"] = args.ttl
    if args.user:
        body["user"] = args.user
    doc = client.put(f"/api/v1/keys/{quote(args.name, safe='')}", body)
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def cmd_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(
        f"/api/v1/keys/{quote(args.name, safe='')}",
        scope=_scope(args),
        decrypt=str(args.decrypt).lower(),
        user=args.user,
    )
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    docs = client.get(
        "/api/v1/keys",
        prefix=args.prefix,
        scope=args.scope or "all",
        decrypt=str(args.decrypt).lower(),
        user=args.user,
        limit=-1,
    )
    if args.json:
        print_json(docs)
        return 0
    print_table(
        docs,
        [
            ("name", "name"),
            ("value", "value"),
            ("secret", "secret"),
            ("scope", "scope"),
            ("user", "user"),
            ("expires", "expire_timestamp"),
        ],
    )
    return 0


def cmd_delete(args: argparse.Namespace, client: Client) -> int:
    client.delete(f"/api/v1/keys/{quote(args.name, safe='')}", scope=_scope(args), user=args.user)
    print(f"deleted key {args.name!r} ({_scope(args)})")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser("key", help="the key-value datastore")
    ksub = key.add_subparsers(dest="verb", required=True, metavar="VERB")

    def scoped(p: argparse.ArgumentParser, default: str = "system") -> None:
        p.add_argument("-s", "--scope", choices=["system", "user"], help=f"default: {default}")
        p.add_argument("-u", "--user", help="another user's key (admins only)")

    s = ksub.add_parser("set", help="create or replace a key")
    s.add_argument("name")
    s.add_argument("value")
    s.add_argument("-e", "--encrypt", action="store_true", help="store encrypted (a secret)")
    s.add_argument("-l", "--ttl", type=int, help="expire after this many seconds")
    s.add_argument("-j", "--json", action="store_true", help="print JSON")
    scoped(s)
    s.set_defaults(func=cmd_set)
    g = ksub.add_parser("get", help="read a key")
    g.add_argument("name")
    g.add_argument("-d", "--decrypt", action="store_true", help="show a secret's value")
    g.add_argument("-j", "--json", action="store_true", help="print JSON")
    scoped(g)
    g.set_defaults(func=cmd_get)
    ls = ksub.add_parser("list", help="keys (system and your own user keys)")
    ls.add_argument("-p", "--prefix", help="only keys starting with this")
    ls.add_argument("-d", "--decrypt", action="store_true", help="show secrets' values")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    scoped(ls, default="system keys and your own user keys")
    ls.set_defaults(func=cmd_list)
    d = ksub.add_parser("delete", help="delete a key")
    d.add_argument("name")
    scoped(d)
    d.set_defaults(func=cmd_delete)
