"""``squall run`` and ``squall execution …``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from squall.cli.client import EXIT_FAILED, EXIT_USAGE, ApiError, Client
from squall.cli.output import print_detail, print_json, print_table, status_text

__all__ = ["register"]

TERMINAL = {"succeeded", "failed", "timeout", "abandoned", "canceled"}

_LIST_COLUMNS = [
    ("id", "id"),
    ("action", "action.ref"),
    ("user", "context.user"),
    ("status", "status"),
    ("started", "start_timestamp"),
    ("elapsed", "elapsed_seconds"),
]


def _parse_kv(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ApiError(f"parameters are written key=value; got {pair!r}", exit_code=EXIT_USAGE)
        out[key] = value
    return out


def _coerce(client: Client, ref: str, raw: dict[str, str]) -> dict[str, Any]:
    """Cast ``k=v`` strings to the action's declared parameter types."""
    if not raw:
        return {}
    from squall.errors import DomainError
    from squall.params import coerce_cli_value

    specs = client.get(f"/api/v1/actions/views/parameters/{ref}")["parameters"]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise ApiError(
                f"action {ref} has no parameter {key!r} (parameters: {known})", exit_code=EXIT_USAGE
            )
        try:
            out[key] = coerce_cli_value(spec, value, name=key)
        except DomainError as exc:
            raise ApiError(str(exc), exit_code=EXIT_USAGE) from None
    return out


def _elapsed(doc: dict[str, Any]) -> str:
    secs = doc.get("elapsed_seconds")
    if secs is None:
        return ""
    return f" ({secs:.1f}s elapsed)" if secs >= 0.1 else f" ({secs * 1000:.0f}ms elapsed)"


def show_execution(doc: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    items: list[tuple[str, Any]] = [
        ("id", doc["id"]),
        ("action.ref", doc.get("action", {}).get("ref")),
        ("parameters", doc.get("parameters") or {}),
        ("status", status_text(doc["status"]) + _elapsed(doc)),
        ("start_timestamp", doc.get("start_timestamp")),
    ]
    if doc.get("end_timestamp"):
        items.append(("end_timestamp", doc["end_timestamp"]))
    if doc.get("parent"):
        items.append(("parent", doc["parent"]))
    if "result" in doc:
        items.append(("result", doc["result"]))
    print_detail(items)


def _exit_for(doc: dict[str, Any]) -> int:
    return 0 if doc["status"] == "succeeded" else EXIT_FAILED


def wait_for(client: Client, execution_id: str, *, timeout: float | None = None) -> dict[str, Any]:
    """Poll until the execution is terminal; returns the full document."""
    delay = 0.02
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        doc = client.get(f"/api/v1/executions/{execution_id}", include_attributes="status")
        if doc["status"] in TERMINAL:
            return dict(client.get(f"/api/v1/executions/{execution_id}"))
        if deadline and time.monotonic() > deadline:
            raise ApiError(
                f"execution {execution_id} still {doc['status']} after {timeout:.0f}s "
                f"(see `squall execution get {execution_id}`)",
                exit_code=EXIT_FAILED,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def cmd_run(args: argparse.Namespace, client: Client) -> int:
    params = _coerce(client, args.ref, _parse_kv(args.parameters))
    body: dict[str, Any] = {"action": args.ref, "parameters": params}
    if args.delay:
        body["delay"] = args.delay
    doc = client.post("/api/v1/executions", body)
    if args.run_async:
        if args.json:
            print_json(doc)
        else:
            print(f"execution {doc['id']} {doc['status']}")
            print(f"  squall execution get {doc['id']}")
        return 0
    if args.tail:
        tail(client, doc["id"], follow=True)
    doc = wait_for(client, doc["id"], timeout=args.timeout)
    show_execution(doc, as_json=args.json)
    return _exit_for(doc)


def cmd_list(args: argparse.Namespace, client: Client) -> int:
    params: dict[str, Any] = {
        "limit": args.last,
        "action": args.action,
        "status": args.status,
        "user": args.user,
        "exclude_attributes": "result",
    }
    if not args.all:
        params["parent"] = "null"
    docs, total = client.get_with_total("/api/v1/executions", **params)
    if args.json:
        print_json(docs)
        return 0
    for d in docs:
        if d.get("elapsed_seconds") is not None:
            d["elapsed_seconds"] = f"{d['elapsed_seconds']:.2f}s"
    footer = None
    if total is not None and total > len(docs):
        footer = f"(showing {len(docs)} of {total}; use -n to see more)"
    print_table(docs, _LIST_COLUMNS, footer=footer)
    return 0


def cmd_get(args: argparse.Namespace, client: Client) -> int:
    doc = client.get(f"/api/v1/executions/{args.id}")
    show_execution(doc, as_json=args.json)
    return 0


def cmd_cancel(args: argparse.Namespace, client: Client) -> int:
    rc = 0
    for execution_id in args.ids:
        try:
            doc = client.delete(f"/api/v1/executions/{execution_id}")
        except ApiError as exc:
            print(f"{execution_id}: {exc}", file=sys.stderr)
            rc = exc.exit_code
            continue
        print(f"execution {execution_id}: {doc['status']}")
    return rc


def cmd_rerun(args: argparse.Namespace, client: Client) -> int:
    original = client.get(f"/api/v1/executions/{args.id}", include_attributes="action")
    params = _coerce(client, original["action"]["ref"], _parse_kv(args.parameters))
    body: dict[str, Any] = {"parameters": params}
    if args.tasks:
        # As st2: the chosen tasks run again, reset (their items and retries start over)
        # unless named in --no-reset.
        body["tasks"] = args.tasks
        body["reset"] = [t for t in args.tasks if t not in (args.no_reset or [])]
    elif args.no_reset:
        raise SystemExit("squall: --no-reset needs --tasks")
    if args.delay:
        body["delay"] = args.delay
    doc = client.post(f"/api/v1/executions/{args.id}/re_run", body)
    if args.run_async:
        print(f"execution {doc['id']} {doc['status']} (re-run of {args.id})")
        return 0
    doc = wait_for(client, doc["id"], timeout=args.timeout)
    show_execution(doc, as_json=args.json)
    return _exit_for(doc)


def tail(client: Client, execution_id: str, *, follow: bool = True) -> str:
    """Print output as it arrives until the execution ends; returns its final status.

    Reads the server's output stream (``/stream/v1/executions/{id}/output``); when that is
    unavailable or breaks off, polls ``/output/chunks`` from the last chunk printed.
    """
    after = 0
    if follow:
        try:
            return _tail_stream(client, execution_id)
        except _StreamBroken as exc:
            after = exc.after
        except ApiError as exc:
            if exc.status in (401, 403):
                raise
            # No stream here (an older server, a proxy): polling reports a missing execution.
    return _tail_poll(client, execution_id, follow=follow, after=after)


class _StreamBroken(Exception):
    """The output stream stopped early; output up to chunk ``after`` was printed."""

    def __init__(self, after: int) -> None:
        super().__init__(after)
        self.after = after


def _write_chunk(stream_name: str, data: str) -> None:
    out = sys.stderr if stream_name == "stderr" else sys.stdout
    out.write(data)
    out.flush()


def _tail_stream(client: Client, execution_id: str) -> str:
    """Follow the output stream until its ``EOF`` event."""
    after = 0
    try:
        with client.stream(f"/stream/v1/executions/{execution_id}/output") as resp:
            event, data = "", []
            for line in resp.iter_lines():
                if line.startswith(":"):
                    continue  # heartbeat
                if line:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                    continue
                if event == "EOF":
                    doc = client.get(
                        f"/api/v1/executions/{execution_id}", include_attributes="status"
                    )
                    return str(doc["status"])
                if event == "st2.execution.output__create" and data:
                    chunk = json.loads("\n".join(data))
                    _write_chunk(chunk["output_type"], chunk["data"])
                    after = int(chunk["id"])
                event, data = "", []
    except ApiError:
        if after:
            raise _StreamBroken(after) from None
        raise
    raise _StreamBroken(after)


def _tail_poll(client: Client, execution_id: str, *, follow: bool, after: int = 0) -> str:
    """Poll ``/output/chunks`` (servers without the stream, or after it broke off)."""
    delay = 0.05
    while True:
        page = client.get(f"/api/v1/executions/{execution_id}/output/chunks", after=after)
        for chunk in page["chunks"]:
            _write_chunk(chunk["stream"], chunk["data"])
            after = chunk["id"]
            delay = 0.05
        if page["done"] and not page["chunks"]:
            return str(page["status"])
        if not follow and not page["chunks"]:
            return str(page["status"])
        if not page["chunks"]:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def cmd_tail(args: argparse.Namespace, client: Client) -> int:
    status = tail(client, args.id, follow=True)
    print(f"\nexecution {args.id}: {status_text(status, sys.stderr)}", file=sys.stderr)
    return 0 if status == "succeeded" else EXIT_FAILED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run an action and wait for its result",
        description="Run an action. Parameters are key=value, cast to the declared types.",
    )
    run.add_argument("ref", help="action ref, e.g. core.local")
    run.add_argument("parameters", nargs="*", metavar="key=value")
    run.add_argument("-a", "--async", dest="run_async", action="store_true", help="do not wait")
    run.add_argument("--tail", action="store_true", help="stream the output while it runs")
    run.add_argument("--delay", type=int, help="start after this many milliseconds")
    run.add_argument("--timeout", type=float, help="stop waiting after this many seconds")
    run.add_argument("-j", "--json", action="store_true", help="print JSON")
    run.set_defaults(func=cmd_run)

    ex = sub.add_parser("execution", help="list, inspect, tail, cancel and re-run executions")
    exsub = ex.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = exsub.add_parser("list", help="recent executions, newest first")
    ls.add_argument("-n", "--last", type=int, default=50, help="how many (default 50)")
    ls.add_argument("--action", help="only this action ref")
    ls.add_argument("--status", help="only this status (comma-separated list allowed)")
    ls.add_argument("--user", help="only executions of this user")
    ls.add_argument("--all", action="store_true", help="include child executions")
    ls.add_argument("-j", "--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    get = exsub.add_parser("get", help="one execution with its result")
    get.add_argument("id")
    get.add_argument("-j", "--json", action="store_true", help="print JSON")
    get.set_defaults(func=cmd_get)
    tl = exsub.add_parser("tail", help="follow an execution's output live")
    tl.add_argument("id")
    tl.set_defaults(func=cmd_tail)
    cancel = exsub.add_parser("cancel", help="cancel executions (kills running processes)")
    cancel.add_argument("ids", nargs="+", metavar="id")
    cancel.set_defaults(func=cmd_cancel)
    rerun = exsub.add_parser(
        "re-run",
        help="run an execution again, optionally overriding",
        description="Run an execution again with its parameters (key=value overrides them). "
        "For a workflow, --tasks re-runs it from those tasks, keeping what the tasks before "
        "them did.",
    )
    rerun.add_argument("id")
    rerun.add_argument("parameters", nargs="*", metavar="key=value")
    rerun.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="workflow: re-run from these tasks"
    )
    rerun.add_argument(
        "--no-reset",
        nargs="+",
        metavar="TASK",
        help="workflow: of --tasks, these keep their with-items results (only failed items run)",
    )
    rerun.add_argument("--delay", type=int, help="start after this many milliseconds")
    rerun.add_argument("-a", "--async", dest="run_async", action="store_true", help="do not wait")
    rerun.add_argument("--timeout", type=float, help="stop waiting after this many seconds")
    rerun.add_argument("-j", "--json", action="store_true", help="print JSON")
    rerun.set_defaults(func=cmd_rerun)
