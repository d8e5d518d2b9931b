"""``squall action …`` and ``squall pack …``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from squall.cli.client import EXIT_FAILED, Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def cmd_action_list(args: argparse.Namespace, client: Client) -> int:
    docs, total = client.get_with_total("/api/v1/actions", pack=args.pack, limit=-1)
    if args.json:
        print_json(docs)
        return 0
    print_table(
        docs,
        [("ref", "ref"), ("runner", "runner_type"), ("description", "description")],
        footer=f"{total} actions" if total is not None else None,
    )
    return 0


def cmd_action_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/actions/{args.ref}")
    params = client.get(f"/api/v1/actions/views/parameters/{args.ref}")["parameters"]
    if args.json:
        print_json({**doc, "all_parameters": params})
        return 0
    print_detail(
        [
            ("ref", doc["ref"]),
            ("description", doc.get("description", "")),
            ("runner_type", doc["runner_type"]),
            ("entry_point", doc.get("entry_point") or ""),
            ("enabled", doc.get("enabled", True)),
        ]
    )
    rows = []
    for name, spec in sorted(params.items(), key=lambda kv: (not kv[1].get("required"), kv[0])):
        flags = ",".join(f for f in ("required", "secret", "immutable") if spec.get(f))
        rows.append(
            {
                "name": name,
                "type": spec.get("type", ""),
                "default": spec.get("default"),
                "flags": flags,
                "description": spec.get("description", ""),
            }
        )
    print("parameters:")
    print_table(
        rows,
        [
            ("name", "name"),
            ("type", "type"),
            ("default", "default"),
            ("flags", "flags"),
            ("description", "description"),
        ],
    )
    return 0


def cmd_pack_list(args: argparse.Namespace, client: Client) -> int:
    docs = client.get("/api/v1/packs")
    if args.json:
        print_json(docs)
        return 0
    print_table(
        docs,
        [
            ("ref", "ref"),
            ("version", "version"),
            ("origin", "origin"),
            ("description", "description"),
        ],
    )
    return 0


def cmd_pack_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/packs/{args.ref}")
    if args.json:
        print_json(doc)
    else:
        print_detail(sorted(doc.items()))
    return 0


def _print_registration(result: dict[str, Any]) -> None:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result["counts"].items()) if n)
    state = "unchanged" if result["unchanged"] else "registered"
    if result.get("removed"):
        print(f"- {result['ref']}: unregistered (its directory is gone)")
        return
    if result["error"]:
        print(f"✗ {result['ref']}: {result['error']}", file=sys.stderr)
    else:
        mark = "✓" if result["ok"] else "!"
        print(f"{mark} {result['ref']}: {state} ({counts or 'nothing'})")
    for issue in result["issues"]:
        print(f"    error: {issue}", file=sys.stderr)
    for warning in result["warnings"]:
        print(f"    warning: {warning}", file=sys.stderr)


def cmd_pack_register(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, Any] = {"packs": args.packs or None, "fail_on_failure": False}
    print(
        f"registering {', '.join(args.packs) if args.packs else 'all packs'} …",
        file=sys.stderr,
    )
    result = client.post("/api/v1/packs/register", body)
    if args.json:
        print_json(result)
    else:
        for pack in result["packs"]:
            _print_registration(pack)
    return 0 if result["ok"] else EXIT_FAILED


def cmd_pack_remove(args: argparse.Namespace, client: Client) -> int:
    result = client.post("/api/v1/packs/uninstall", {"packs": args.packs})
    for item in result["removed"]:
        where = (
            "and deleted its files" if item["files_deleted"] else f"(files kept in {item['path']})"
        )
        print(f"removed pack {item['ref']} {where}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    action = sub.add_parser("action", help="list and inspect actions")
    asub = action.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = asub.add_parser("list", help="all actions, or those of one pack")
    ls.add_argument("-p", "--pack", help="only this pack")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_action_list)
    get = asub.add_parser("get", help="an action with all its parameters")
    get.add_argument("ref")
    get.add_argument("-j", "--json", action="store_true", help="print JSON")
    get.set_defaults(func=cmd_action_get)

    pack = sub.add_parser("pack", help="list and register packs")
    psub = pack.add_subparsers(dest="verb", required=True, metavar="VERB")
    pls = psub.add_parser("list", help="registered packs")
    pls.add_argument("-j", "--json", action="store_true", help="print JSON")
    pls.set_defaults(func=cmd_pack_list)
    pget = psub.add_parser("get", help="one registered pack")
    pget.add_argument("ref")
    pget.add_argument("-j", "--json", action="store_true", help="print JSON")
    pget.set_defaults(func=cmd_pack_get)
    reg = psub.add_parser(
        "register",
        help="(re)load packs from the pack search path",
        description="Load packs from disk and register their content. Reports every bad "
        "file with its line; exits non-zero if anything failed.",
    )
    reg.add_argument("packs", nargs="*", metavar="pack", help="pack refs (default: all)")
    reg.add_argument("-j", "--json", action="store_true", help="print JSON")
    reg.set_defaults(func=cmd_pack_register)
    rm = psub.add_parser(
        "remove",
        help="unregister packs (execution history is kept)",
        description="Unregister packs. A pack installed into $SQUALL_HOME/packs is deleted; "
        "a pack elsewhere on SQUALL_PACKS_PATH is only unregistered (remove it from the path "
        "too, or the next registration brings it back).",
    )
    rm.add_argument("packs", nargs="+", metavar="pack")
    rm.set_defaults(func=cmd_pack_remove)
