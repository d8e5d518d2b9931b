"""The service registry: one row per running Squall process (table ``processes``).

Each process inserts its row at start, rewrites ``heartbeat_at`` and ``info`` (work in
flight, leases held) every few seconds, and deletes the row when it stops cleanly. A process
that died leaves its row behind: readers call it ``lost`` once its heartbeat is older than
three heartbeat intervals, and garbage collection deletes it later (:func:`purge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import processes

__all__ = ["ProcessRow", "heartbeat", "list_processes", "purge", "register", "remove"]

_C = processes.c


@dataclass(frozen=True)
class ProcessRow:
    id: str
    roles: list[str]
    host: str
    pid: int
    info: dict[str, Any]
    started_at: datetime
    heartbeat_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ProcessRow:
        m = row._mapping
        return cls(
            id=m["id"],
            roles=list(m["roles"] or []),
            host=m["host"],
            pid=int(m["pid"]),
            info=dict(m["info"] or {}),
            started_at=m["started_at"],
            heartbeat_at=m["heartbeat_at"],
        )

    def alive(self, now: datetime) -> bool:
        """Whether the process heartbeated recently (within three of its intervals)."""
        interval = float(self.info.get("heartbeat_seconds") or 5.0)
        return now - self.heartbeat_at <= timedelta(seconds=3 * interval + 1)


def register(
    conn: Connection,
    *,
    id: str,
    roles: Sequence[str],
    host: str,
    pid: int,
    info: Mapping[str, Any],
    now: datetime,
) -> None:
    """Insert (or replace) the row of process ``id``."""
    conn.execute(processes.delete().where(_C.id == id))
    conn.execute(
        processes.insert().values(
            id=id,
            roles=list(roles),
            host=host,
            pid=pid,
            info=dict(info),
            started_at=now,
            heartbeat_at=now,
        )
    )


def heartbeat(conn: Connection, id: str, *, info: Mapping[str, Any], now: datetime) -> bool:
    """Record a heartbeat; False when the row is gone (purged while this process was away)."""
    res = conn.execute(
        processes.update().where(_C.id == id).values(heartbeat_at=now, info=dict(info))
    )
    return bool(res.rowcount)


def remove(conn: Connection, id: str) -> None:
    """Delete the row of a process that stops cleanly."""
    conn.execute(processes.delete().where(_C.id == id))


def list_processes(conn: Connection) -> list[ProcessRow]:
    """Every registered process, live or lost, oldest first."""
    rows = conn.execute(sa.select(processes).order_by(_C.started_at, _C.id)).all()
    return [ProcessRow.from_row(r) for r in rows]


def purge(conn: Connection, *, before: datetime) -> int:
    """Delete rows whose last heartbeat is older than ``before``; returns how many."""
    res = conn.execute(processes.delete().where(_C.heartbeat_at < before))
    return int(res.rowcount or 0)
