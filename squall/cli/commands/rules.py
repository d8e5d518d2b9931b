"""``squall rule …``, ``squall trigger …``, ``squall trigger-instance …``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from squall.cli.client import EXIT_FAILED, EXIT_USAGE, ApiError, Client
from squall.cli.output import print_detail, print_json, print_table

__all__ = ["register"]


def _load_rule(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ApiError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_USAGE) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ApiError(f"{path}{where}: invalid YAML: {exc}", exit_code=EXIT_USAGE) from None
    if not isinstance(doc, dict):
        raise ApiError(f"{path}: a rule file must contain a mapping", exit_code=EXIT_USAGE)
    return doc


def _load_payload(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ApiError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_USAGE) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ApiError(f"{path}: neither JSON nor YAML: {exc}", exit_code=EXIT_USAGE) from None


_RULE_COLUMNS = [
    ("ref", "ref"),
    ("enabled", "enabled"),
    ("trigger", "trigger.type"),
    ("action", "action.ref"),
    ("description", "description"),
]


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    docs, total = client.get_with_total("/api/v1/rules", pack=args.pack, limit=-1)
    if args.json:
        print_json(docs)
    else:
        print_table(docs, _RULE_COLUMNS, footer=f"{total} rules" if total is not None else None)
    return 0


def cmd_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/rules/{args.ref}")
    if args.json:
        print_json(doc)
    else:
        print_detail(
            [
                (k, doc.get(k))
                for k in (
                    "ref",
                    "description",
                    "enabled",
                    "type",
                    "trigger",
                    "criteria",
                    "action",
                    "throttle",
                    "dedup",
                    "id",
                )
                if doc.get(k) not in (None, {}, [])
            ]
        )
    return 0


def cmd_create(args: argparse.Namespace, client: Client) -> int:
    doc = client.post("/api/v1/rules", _load_rule(args.file))
    if args.json:
        print_json(doc)
    else:
        state = "enabled" if doc.get("enabled") else "disabled (enable with `squall rule enable`)"
        print(f"created rule {doc['ref']} ({state})")
    return 0


def cmd_delete(args: argparse.Namespace, client: Client) -> int:
    client.delete(f"/api/v1/rules/{args.ref}")
    print(f"deleted rule {args.ref}")
    return 0


def _toggle(args: argparse.Namespace, client: Client, enabled: bool) -> int:
    doc = client.put(f"/api/v1/rules/{args.ref}", {"enabled": enabled})
    print(f"rule {doc['ref']} {'enabled' if doc['enabled'] else 'disabled'}")
    return 0


def cmd_test(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, Any] = {"rule": _load_rule(args.file)}
    if args.payload:
        body["payload"] = _load_payload(args.payload)
    elif args.trigger_instance:
        body["trigger_instance_id"] = args.trigger_instance
    else:
        raise ApiError("give --payload FILE or --trigger-instance ID", exit_code=EXIT_USAGE)
    result = client.post("/api/v1/rules/test", body)
    if args.json:
        print_json(result)
        return 0 if result["matched"] else EXIT_FAILED
    for crit in result.get("criteria", []):
        mark = "✓" if crit["passed"] else "✗"
        extra = f"  ({crit['error']})" if crit.get("error") else ""
        print(f"  {mark} {crit['key']} {crit.get('type', '')}{extra}")
    if result.get("reason"):
        print(result["reason"])
    if result["matched"]:
        print(f"MATCH: rule {result.get('rule')} would run {result['action']['ref']} with:")
        print_detail([("parameters", result["action"]["parameters"] or {})])
    elif result.get("error"):
        print(f"MATCH, but the action parameters do not render: {result['error']}")
    else:
        print("NO MATCH")
    return 0 if result["matched"] else EXIT_FAILED


def cmd_backtest(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, Any] = {"rule": _load_rule(args.file), "since": args.since, "limit": args.limit}
    if args.until:
        body["until"] = args.until
    print(f"replaying trigger instances since {args.since} …", file=sys.stderr)
    result = client.post("/api/v1/rules/backtest", body)
    if args.json:
        print_json(result)
        return 0
    print(
        f"{result['rule']}: {result['matched']} of {result['scanned']} "
        f"{result['trigger_type']} instances matched; {result['would_run']} would have run, "
        f"{result['suppressed']} suppressed by throttle/dedup, {result['errors']} render errors"
    )
    rows = [
        {
            "id": m["trigger_instance_id"],
            "time": m["occurrence_time"],
            "storm": m["storm"],
            "parameters": (m.get("action") or {}).get("parameters", m.get("error")),
        }
        for m in result["matches"]
    ]
    print_table(
        rows,
        [
            ("trigger instance", "id"),
            ("time", "time"),
            ("storm", "storm"),
            ("parameters", "parameters"),
        ],
        empty="(no matches)",
    )
    if result.get("truncated"):
        print("(scan limit reached: narrow --since/--until)")
    return 0


def cmd_trigger_list(args: argparse.Namespace, client: Client) -> int:
    path = "/api/v1/triggers" if args.instances_of_rules else "/api/v1/triggertypes"
    docs, _total = client.get_with_total(path, limit=-1)
    if args.json:
        print_json(docs)
        return 0
    if args.instances_of_rules:
        print_table(docs, [("ref", "ref"), ("type", "type"), ("parameters", "parameters")])
    else:
        print_table(docs, [("ref", "ref"), ("description", "description")])
    return 0


def cmd_ti_list(args: argparse.Namespace, client: Client) -> int:
    docs, total = client.get_with_total(
        "/api/v1/triggerinstances",
        trigger_type=args.trigger_type,
        status=args.status,
        limit=args.last,
    )
    if args.json:
        print_json(docs)
        return 0
    footer = f"(showing {len(docs)} of {total})" if total and total > len(docs) else None
    print_table(
        docs,
        [
            ("id", "id"),
            ("trigger", "trigger"),
            ("occurred", "occurrence_time"),
            ("status", "status"),
        ],
        footer=footer,
    )
    return 0


def cmd_ti_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/triggerinstances/{args.id}")
    if args.json:
        print_json(doc)
    else:
        print_detail(list(doc.items()))
    return 0


def cmd_ti_reemit(args: argparse.Namespace, client: Client) -> int:
    doc = client.post(f"/api/v1/triggerinstances/{args.id}/re_emit")
    print(f"{doc['message']} New instance: {doc['trigger_instance']['id']}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rule = sub.add_parser("rule", help="rules: IF trigger (+ criteria) THEN action")
    rsub = rule.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = rsub.add_parser("list", help="rules, with their trigger and action")
    ls.add_argument("-p", "--pack")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    get = rsub.add_parser("get", help="one rule")
    get.add_argument("ref")
    get.add_argument("-j", "--json", action="store_true", help="print JSON")
    get.set_defaults(func=cmd_get)
    create = rsub.add_parser("create", help="create a rule from a YAML/JSON file")
    create.add_argument("file")
    create.add_argument("-j", "--json", action="store_true", help="print JSON")
    create.set_defaults(func=cmd_create)
    delete = rsub.add_parser("delete", help="delete a rule")
    delete.add_argument("ref")
    delete.set_defaults(func=cmd_delete)
    enable = rsub.add_parser("enable", help="enable a rule")
    enable.add_argument("ref")
    enable.set_defaults(func=lambda a, c: _toggle(a, c, True))
    disable = rsub.add_parser("disable", help="disable a rule")
    disable.add_argument("ref")
    disable.set_defaults(func=lambda a, c: _toggle(a, c, False))
    test = rsub.add_parser(
        "test",
        help="would this rule match a payload? (no side effects)",
        description="Evaluate a rule file against a payload (JSON/YAML file, - for stdin) or a "
        "stored trigger instance; prints each criterion and the rendered action parameters. "
        "Exit 0 on a match, 1 otherwise.",
    )
    test.add_argument("file", help="the rule (YAML or JSON)")
    test.add_argument("--payload", help="trigger payload file (JSON or YAML, - for stdin)")
    test.add_argument("--trigger-instance", help="a stored trigger instance id")
    test.add_argument("-j", "--json", action="store_true", help="print JSON")
    test.set_defaults(func=cmd_test)
    back = rsub.add_parser(
        "backtest",
        help="replay stored events through a rule (no side effects)",
        description="How many stored trigger instances the rule would have matched, which "
        "ones, the action parameters it would have rendered, and what throttle/dedup would "
        "have suppressed.",
    )
    back.add_argument("file", help="the rule (YAML or JSON)")
    back.add_argument("--since", default="7d", help="duration (7d, 12h, 30m) or ISO time")
    back.add_argument("--until", help="duration ago or ISO time (default: now)")
    back.add_argument("-n", "--limit", type=int, default=20, help="matches to list")
    back.add_argument("-j", "--json", action="store_true", help="print JSON")
    back.set_defaults(func=cmd_backtest)

    trig = sub.add_parser("trigger", help="trigger types (what rules can listen to)")
    tsub = trig.add_subparsers(dest="verb", required=True, metavar="VERB")
    tl = tsub.add_parser("list", help="trigger types")
    tl.add_argument(
        "--rules",
        dest="instances_of_rules",
        action="store_true",
        help="list the triggers (type + parameters) rules listen to instead",
    )
    tl.add_argument("-j", "--json", action="store_true", help="print JSON")
    tl.set_defaults(func=cmd_trigger_list)

    ti = sub.add_parser("trigger-instance", help="events received (trigger instances)")
    tisub = ti.add_subparsers(dest="verb", required=True, metavar="VERB")
    til = tisub.add_parser("list", help="recent trigger instances, newest first")
    til.add_argument("--trigger-type")
    til.add_argument(
        "--status", choices=["pending", "processing", "processed", "processing_failed"]
    )
    til.add_argument("-n", "--last", type=int, default=50)
    til.add_argument("-j", "--json", action="store_true", help="print JSON")
    til.set_defaults(func=cmd_ti_list)
    tig = tisub.add_parser("get", help="one trigger instance with its payload")
    tig.add_argument("id")
    tig.add_argument("-j", "--json", action="store_true", help="print JSON")
    tig.set_defaults(func=cmd_ti_get)
    tir = tisub.add_parser("re-emit", help="dispatch a stored event again")
    tir.add_argument("id")
    tir.set_defaults(func=cmd_ti_reemit)
