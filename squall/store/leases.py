"""Leases for singleton work (timers, each sensor, garbage collection).

A holder renews its lease before it expires; when it dies the lease lapses and another
process takes it over. Taking a lease is one conditional write, so two processes never hold
the same lease at once (the row is locked on PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import leases

__all__ = ["acquire", "holder", "release"]


def acquire(conn: Connection, name: str, *, owner: str, now: datetime, until: datetime) -> bool:
    """Take or renew lease ``name`` for ``owner``; False while someone else holds it."""
    c = leases.c
    row = conn.execute(
        sa.select(c.owner, c.expires_at).where(c.name == name).with_for_update()
    ).first()
    if row is None:
        conn.execute(leases.insert().values(name=name, owner=owner, expires_at=until))
        return True
    if row.owner != owner and row.expires_at > now:
        return False
    conn.execute(leases.update().where(c.name == name).values(owner=owner, expires_at=until))
    return True


def release(conn: Connection, name: str, *, owner: str) -> None:
    """Give up a lease (on clean shutdown) so a successor need not wait for expiry."""
    conn.execute(leases.delete().where(leases.c.name == name, leases.c.owner == owner))


def holder(conn: Connection, name: str, *, now: datetime) -> str | None:
    row = conn.execute(
        sa.select(leases.c.owner, leases.c.expires_at).where(leases.c.name == name)
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return str(row.owner)
