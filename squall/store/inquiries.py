"""Inquiries: the question an inquirer execution (``core.ask``) asks, and its answer.

The row shares its id with the inquirer execution; the execution stays ``pending`` until the
inquiry is answered (``succeeded``), expires (``timeout``) or is canceled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import inquiries

__all__ = [
    "Inquiry",
    "close",
    "count",
    "due",
    "get",
    "insert",
    "list_inquiries",
]

_C = inquiries.c


@dataclass(frozen=True)
class Inquiry:
    """One inquiry."""

    id: str
    status: str
    schema: dict[str, Any]
    route: str
    roles: list[str]
    users: list[str]
    ttl: int
    user: str
    parent_id: str | None
    response: dict[str, Any] | None
    responder: str | None
    created_at: datetime
    expires_at: datetime | None
    responded_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Inquiry:
        m = row._mapping
        return cls(
            id=m["id"],
            status=m["status"],
            schema=dict(m["schema"] or {}),
            route=m["route"],
            roles=list(m["roles"] or []),
            users=list(m["users"] or []),
            ttl=int(m["ttl"]),
            user=m["user"],
            parent_id=m["parent_id"],
            response=m["response"],
            responder=m["responder"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            responded_at=m["responded_at"],
        )

    def as_api(self) -> dict[str, Any]:
        """StackStorm's ``Inquiry`` shape (plus Squall's ``status`` and ``parent``)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "schema": self.schema,
            "roles": self.roles,
            "users": self.users,
            "route": self.route,
            "ttl": self.ttl,
            "status": self.status,
        }
        if self.parent_id:
            doc["parent"] = self.parent_id
        return doc


def insert(conn: Connection, row: Mapping[str, Any]) -> None:
    """Record a new pending inquiry."""
    conn.execute(inquiries.insert().values(**dict(row)))


def get(conn: Connection, inquiry_id: str, *, lock: bool = False) -> Inquiry | None:
    """One inquiry (locked for update when ``lock``)."""
    stmt = sa.select(inquiries).where(_C.id == inquiry_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return Inquiry.from_row(row) if row else None


def list_inquiries(
    conn: Connection, *, status: str | None = "pending", limit: int = 50, offset: int = 0
) -> list[Inquiry]:
    """Inquiries, newest first (pending ones by default)."""
    stmt = sa.select(inquiries)
    if status:
        stmt = stmt.where(_C.status == status)
    stmt = stmt.order_by(_C.created_at.desc(), _C.id.desc()).limit(limit).offset(offset)
    return [Inquiry.from_row(r) for r in conn.execute(stmt).all()]


def count(conn: Connection, *, status: str | None = "pending") -> int:
    """How many inquiries (in ``status``)."""
    stmt = sa.select(sa.func.count()).select_from(inquiries)
    if status:
        stmt = stmt.where(_C.status == status)
    return int(conn.execute(stmt).scalar_one())


def close(
    conn: Connection,
    inquiry_id: str,
    *,
    status: str,
    now: datetime,
    response: Mapping[str, Any] | None = None,
    responder: str | None = None,
) -> bool:
    """Close a pending inquiry; False when it was no longer pending."""
    res = conn.execute(
        inquiries.update()
        .where(_C.id == inquiry_id, _C.status == "pending")
        .values(
            status=status,
            response=dict(response) if response is not None else None,
            responder=responder,
            responded_at=now,
        )
    )
    return bool(res.rowcount)


def due(conn: Connection, *, now: datetime, limit: int = 200) -> Sequence[str]:
    """Ids of pending inquiries whose time to live has passed."""
    stmt = (
        sa.select(_C.id)
        .where(_C.status == "pending", _C.expires_at.is_not(None), _C.expires_at <= now)
        .order_by(_C.expires_at)
        .limit(limit)
    )
    return [r.id for r in conn.execute(stmt).all()]
