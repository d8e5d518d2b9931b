"""``squall workflow inspect|rehearse``, ``squall inquiry list|get|respond`` and
``squall execution pause|resume``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from squall.cli.client import EXIT_FAILED, EXIT_USAGE, ApiError, Client
from squall.cli.output import print_detail, print_json, print_table, status_text

__all__ = ["register"]


# --- workflow inspect / rehearse (offline) ------------------------------------------------------


def _guess_kind(path: Path) -> str:
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        return "orquesta"
    return "action-chain" if isinstance(data, dict) and "chain" in data else "orquesta"


def cmd_inspect(args: argparse.Namespace) -> int:
    from squall.engine.workflows_check import inspect_text, issues_for_file

    failed = 0
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such file", file=sys.stderr)
            return EXIT_USAGE
        kind = args.kind or _guess_kind(path)
        if args.json:
            errors = inspect_text(path.read_text(encoding="utf-8"), kind=kind)
            print_json({"file": name, "kind": kind, "errors": errors})
            failed += bool(errors)
            continue
        issues = issues_for_file(path, kind=kind, display_name=name)
        for issue in issues:
            print(str(issue))
        if issues:
            failed += 1
            print(f"{name}: {len(issues)} problem(s) ({kind})", file=sys.stderr)
        else:
            print(f"{name}: OK ({kind})")
    return EXIT_FAILED if failed else 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    from squall.workflow.rehearsal import main as rehearse

    argv = [*(["-p", str(args.base_path)] if args.base_path else []), *args.specs]
    return int(rehearse(argv))


# --- inquiries ----------------------------------------------------------------------------------


def cmd_inquiry_list(args: argparse.Namespace, client: Client) -> int:
    docs, total = client.get_with_total("/api/v1/inquiries", limit=args.last)
    if args.json:
        print_json(docs)
        return 0
    footer = None
    if total is not None and total > len(docs):
        footer = f"(showing {len(docs)} of {total}; use -n to see more)"
    columns = [
        ("id", "id"),
        ("route", "route"),
        ("users", "users"),
        ("roles", "roles"),
        ("ttl", "ttl"),
        ("parent", "parent"),
    ]
    print_table(docs, columns, footer=footer)
    return 0


def cmd_inquiry_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/inquiries/{args.id}")
    if args.json:
        print_json(doc)
    else:
        print_detail([(k, doc.get(k)) for k in ("id", "status", "route", "users", "roles", "ttl")])
        print_detail([("schema", doc.get("schema"))])
    return 0


def _cast(spec: dict[str, Any], key: str, raw: str) -> Any:
    kind = spec.get("type")
    try:
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered in ("true", "yes", "y", "1"):
                return True
            if lowered in ("false", "no", "n", "0"):
                return False
            raise ValueError(raw)
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind in ("object", "array"):
            return json.loads(raw)
    except ValueError:
        raise ApiError(f"{key}: {raw!r} is not a {kind}", exit_code=EXIT_USAGE) from None
    return raw


def cmd_inquiry_respond(args: argparse.Namespace, client: Client) -> int:
    response: dict[str, Any] = {}
    if args.response:
        try:
            loaded = json.loads(args.response)
        except json.JSONDecodeError as exc:
            raise ApiError(f"-r/--response is not JSON: {exc}", exit_code=EXIT_USAGE) from None
        if not isinstance(loaded, dict):
            raise ApiError("-r/--response must be a JSON object", exit_code=EXIT_USAGE)
        response.update(loaded)
    if args.pairs:
        schema = client.get(f"/api/v1/inquiries/{args.id}").get("schema") or {}
        props = schema.get("properties") or {}
        for pair in args.pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ApiError(f"answers are written key=value; got {pair!r}", exit_code=EXIT_USAGE)
            response[key] = _cast(props.get(key) or {}, key, value)
    if not response:
        raise ApiError("give the answer with -r JSON or key=value pairs", exit_code=EXIT_USAGE)
    doc = client.put(f"/api/v1/inquiries/{args.id}", {"id": args.id, "response": response})
    if args.json:
        print_json(doc)
    else:
        print(f"inquiry {args.id}: response accepted")
    return 0


# --- execution pause / resume -------------------------------------------------------------------


def _set_status(client: Client, execution_id: str, status: str) -> int:
    doc = client.put(f"/api/v1/executions/{execution_id}", {"status": status})
    print(f"execution {execution_id}: {status_text(doc['status'])}")
    return 0


def cmd_pause(args: argparse.Namespace, client: Client) -> int:
    return _set_status(client, args.id, "pausing")


def cmd_resume(args: argparse.Namespace, client: Client) -> int:
    return _set_status(client, args.id, "resuming")


def _execution_verbs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pause`` and ``resume`` to ``squall execution`` (registered before us)."""
    parser = sub.choices.get("execution")
    if parser is None:
        return
    verbs = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if verbs is None:
        return
    pause = verbs.add_parser("pause", help="pause a workflow (running tasks finish first)")
    pause.add_argument("id")
    pause.set_defaults(func=cmd_pause)
    resume = verbs.add_parser("resume", help="resume a paused workflow")
    resume.add_argument("id")
    resume.set_defaults(func=cmd_resume)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wf = sub.add_parser("workflow", help="inspect and rehearse workflow definitions (offline)")
    wfsub = wf.add_subparsers(dest="verb", required=True, metavar="VERB")
    ins = wfsub.add_parser(
        "inspect",
        help="check workflow files (syntax, semantics, expressions, context)",
        description="Inspect Orquesta workflows or action chains; exit 1 if any has problems.",
    )
    ins.add_argument("files", nargs="+", metavar="FILE")
    ins.add_argument("--kind", choices=["orquesta", "action-chain"], help="default: guessed")
    ins.add_argument("-j", "--json", action="store_true", help="print JSON")
    ins.set_defaults(func=cmd_inspect, needs_client=False)
    reh = wfsub.add_parser(
        "rehearse",
        help="run Orquesta rehearsal specs offline with mocked action results",
        description="Run orquesta-rehearse specs; exit non-zero with a diff when one differs.",
    )
    reh.add_argument("-p", "--base-path", type=Path, help="base path of workflow files (default .)")
    reh.add_argument("specs", nargs="+", metavar="SPEC.yaml")
    reh.set_defaults(func=cmd_rehearse, needs_client=False)

    inq = sub.add_parser("inquiry", help="list and answer inquiries (core.ask)")
    inqsub = inq.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = inqsub.add_parser("list", help="pending inquiries, newest first")
    ls.add_argument("-n", "--last", type=int, default=50, help="how many (default 50)")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_inquiry_list)
    get = inqsub.add_parser("get", help="one inquiry with its schema")
    get.add_argument("id")
    get.add_argument("-j", "--json", action="store_true", help="print JSON")
    get.set_defaults(func=cmd_inquiry_get)
    rsp = inqsub.add_parser("respond", help="answer an inquiry")
    rsp.add_argument("id")
    rsp.add_argument("pairs", nargs="*", metavar="key=value", help="answers, cast by the schema")
    rsp.add_argument("-r", "--response", help="the whole answer as a JSON object")
    rsp.add_argument("-j", "--json", action="store_true", help="print JSON")
    rsp.set_defaults(func=cmd_inquiry_respond)
    _execution_verbs(sub)
