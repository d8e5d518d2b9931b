"""``squall action …`` and ``squall pack …``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from squall.cli.client import EXIT_FAILED, EXIT_UNAVAILABLE, Client
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


def _local_spec(spec: str) -> str:
    """A relative path that exists here, made absolute: the server resolves paths in its
    own working directory."""
    location, sep, version = spec.partition("=")
    if "://" in location or location.startswith("/"):
        return spec
    relative = location.startswith(("./", "../")) or location in (".", "..")
    if relative or ("/" in location and Path(location).is_dir()):
        return f"{Path(location).resolve()}{sep}{version}"
    return spec


def _install_row(pack: dict[str, Any]) -> dict[str, Any]:
    install = pack.get("install") or {}
    counts = ", ".join(f"{n} {k}" for k, n in sorted(pack["counts"].items()) if n)
    if pack["error"] or pack["issues"]:
        result = "failed"
    elif install:
        result = f"installed ({counts or 'nothing'})"
    else:
        result = f"registered ({counts or 'nothing'})"
    return {
        "pack": pack["ref"],
        "version": pack.get("version") or "",
        "source": install.get("source") or pack.get("path") or "",
        "at": install.get("resolved") or "",
        "commit": (install.get("commit") or "")[:12],
        "result": result,
    }


def cmd_pack_install(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, Any] = {"packs": [_local_spec(s) for s in args.specs], "force": args.force}
    if args.timeout:
        body["timeout"] = args.timeout
    status, result = 0, None
    for event in client.post_lines("/api/v1/packs/install", body):
        if "progress" in event:
            print(event["progress"], file=sys.stderr, flush=True)
        elif "result" in event:
            status, result = int(event.get("status") or 0), event["result"]
    if not isinstance(result, dict):
        print("error: the server ended the installation without a result", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(result)
    elif "packs" in result:
        print_table(
            [_install_row(p) for p in result["packs"]],
            [
                ("pack", "pack"),
                ("version", "version"),
                ("source", "source"),
                ("at", "at"),
                ("commit", "commit"),
                ("result", "result"),
            ],
        )
        for pack in result["packs"]:
            if pack["error"]:
                print(f"✗ {pack['ref']}: {pack['error']}", file=sys.stderr)
            for issue in pack["issues"]:
                print(f"    error: {issue}", file=sys.stderr)
            for warning in pack["warnings"]:
                print(f"    warning: {warning}", file=sys.stderr)
    ok = status == 200 and bool(result.get("ok"))
    if not ok and result.get("faultstring"):
        print(f"error: {result['faultstring']}", file=sys.stderr)
    if ok:
        return 0
    return EXIT_UNAVAILABLE if status >= 500 else EXIT_FAILED


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

    pack = sub.add_parser("pack", help="list, install, register and remove packs")
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
    inst = psub.add_parser(
        "install",
        help="install packs from git (URL[=VERSION]) or a directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Install packs into the first directory of the pack search path ($SQUALL_HOME/packs by
default) and register them, as StackStorm's `st2 pack install` does. The server clones
with git; everything is validated before the installed copy is replaced, and if
registration fails the previous version is put back: nothing is ever half-installed.

A SPEC is one of
  URL[=VERSION]     a git repository: https://…, ssh://…, git://…, git@host:owner/repo.git
                    or file:///path; VERSION is a branch, a tag (1.2.0 also finds v1.2.0)
                    or a commit sha; without it, the default branch
  owner/repo        GitHub's short form (https://github.com/owner/repo)
  PATH[=VERSION]    a local git repository (cloned) or pack directory (copied); relative
                    paths are resolved here, and the server must see the same path
  NAME              a pack already on the pack search path (only registered)

Installing a pack that `pack install` installed before replaces it (its source, version
and commit are shown by `squall pack get REF`).""",
        epilog="""\
examples:
  squall pack install https://github.com/StackStorm-Exchange/stackstorm-email.git=v1.2.0
  squall pack install git@github.com:acme/st2-ops.git=main
  squall pack install file:///srv/packs/ops.git=3f2c1a9
  squall pack install ./my_pack --force""",
    )
    inst.add_argument("specs", nargs="+", metavar="SPEC", help="what to install (see above)")
    inst.add_argument(
        "--force",
        action="store_true",
        help="replace a pack directory `pack install` did not create, or hide a pack of the "
        "same ref further down SQUALL_PACKS_PATH",
    )
    inst.add_argument(
        "--timeout", type=int, metavar="SECONDS", help="limit for each git command (default 600)"
    )
    inst.add_argument("-j", "--json", action="store_true", help="print the result as JSON")
    inst.set_defaults(func=cmd_pack_install)
    rm = psub.add_parser(
        "remove",
        help="unregister packs (execution history is kept)",
        description="Unregister packs. A pack installed into $SQUALL_HOME/packs is deleted; "
        "a pack elsewhere on SQUALL_PACKS_PATH is only unregistered (remove it from the path "
        "too, or the next registration brings it back).",
    )
    rm.add_argument("packs", nargs="+", metavar="pack")
    rm.set_defaults(func=cmd_pack_remove)
