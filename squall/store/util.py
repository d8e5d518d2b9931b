"""Small SQL helpers that hide the differences between the two backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["like_prefix", "upsert", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``, updating ``update`` columns (default: all but keys) on key conflict."""
    if not rows:
        return
    dialect = conn.dialect.name
    stmt: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    cols = update if update is not None else [c for c in rows[0] if c not in keys]
    if cols:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, [dict(r) for r in rows])


def like_prefix(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """``column LIKE prefix%`` with LIKE metacharacters in ``prefix`` escaped."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")
