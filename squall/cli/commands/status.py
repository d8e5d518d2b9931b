"""``squall status``: the Squall processes that are running, their roles and work in flight."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from squall.cli.client import Client
from squall.cli.output import print_json, print_table

__all__ = ["register"]


def _from_database() -> list[dict[str, Any]]:
    """Read the service registry straight from the database (no API process needed)."""
    from squall.config import load_settings
    from squall.engine.registry import describe
    from squall.store import processes
    from squall.store.db import Database
    from squall.store.util import utcnow

    settings = load_settings()

    async def _read() -> list[dict[str, Any]]:
        db = Database(settings.db_url, pool_size=1)
        try:
            rows = await db.read(processes.list_processes)
        finally:
            await db.close()
        now = utcnow()
        return [describe(row, now) for row in rows]

    return asyncio.run(_read())


def _in_flight(doc: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted((doc.get("in_flight") or {}).items()) if v]
    return ", ".join(parts) or "-"


def cmd_status(args: argparse.Namespace, client: Client) -> int:
    if args.database:
        from squall.errors import SquallError

        try:
            docs = _from_database()
        except SquallError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
    else:
        docs = client.get("/api/v1/service_registry/processes")
    if not args.all:
        docs = [d for d in docs if d["status"] == "alive"]
    if args.json:
        print_json(docs, stream=sys.stdout)
        return 0
    rows = [
        {
            **d,
            "roles": ",".join(d["roles"]),
            "age": f"{d['heartbeat_age_seconds']:.0f}s ago",
            "work": _in_flight(d),
            "held": ",".join(d.get("leases") or []) or "-",
        }
        for d in docs
    ]
    alive = sum(1 for d in docs if d["status"] == "alive")
    print_table(
        rows,
        [
            ("process", "id"),
            ("roles", "roles"),
            ("host", "host"),
            ("pid", "pid"),
            ("status", "status"),
            ("heartbeat", "age"),
            ("in flight", "work"),
            ("leases", "held"),
            ("started", "started_at"),
        ],
        empty="(no Squall process is registered)",
        footer=f"{alive} live process(es)",
        stream=sys.stdout,
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="show the running Squall processes (roles, host, pid, heartbeat, work in flight)",
        description="List the Squall processes registered in the database: roles, host, pid, "
        "last heartbeat, work in flight and singleton leases held. Lost processes (no "
        "heartbeat for three intervals) are shown with --all until garbage collection "
        "removes them.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="include lost processes")
    p.add_argument(
        "--database",
        action="store_true",
        help="read SQUALL_DATABASE_URL directly instead of asking the API",
    )
    p.set_defaults(func=cmd_status)
