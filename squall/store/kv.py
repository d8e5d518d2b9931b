"""The key-value datastore: ``system`` and ``user`` scopes, TTLs and encrypted secrets.

Values are strings. Secret values are stored encrypted (the caller encrypts, see
``squall.auth.secrets``); this module never sees plaintext secrets. Expired keys read as
absent at once and are purged by garbage collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.errors import ValidationError
from squall.store.schema import kv
from squall.store.util import like_prefix, upsert

__all__ = [
    "SCOPES",
    "KeyValue",
    "delete",
    "get",
    "get_many",
    "list_keys",
    "normalize_scope",
    "purge_expired",
    "set_value",
]

#: StackStorm accepts both spellings; ``st2kv.system`` / ``st2kv.user`` in templates.
SCOPES = {"system": "system", "st2kv.system": "system", "user": "user", "st2kv.user": "user"}


def normalize_scope(scope: str | None) -> str:
    """Map a scope name from the API or CLI to ``system`` or ``user``."""
    if scope is None or scope == "":
        return "system"
    try:
        return SCOPES[scope]
    except KeyError:
        raise ValidationError(
            f"invalid datastore scope {scope!r}", hint="use 'system' or 'user'"
        ) from None


@dataclass(frozen=True)
class KeyValue:
    scope: str
    owner: str
    name: str
    value: str
    secret: bool
    expire_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> KeyValue:
        return cls(
            row.scope,
            row.owner,
            row.name,
            row.value,
            row.secret,
            row.expire_at,
            row.created_at,
            row.updated_at,
        )


def _alive(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(kv.c.expire_at.is_(None), kv.c.expire_at > now)


def _owner(scope: str, user: str | None) -> str:
    if scope == "user":
        if not user:
            raise ValidationError("a user-scoped key needs a user")
        return user
    return ""


def get(
    conn: Connection, name: str, *, scope: str, user: str | None, now: datetime
) -> KeyValue | None:
    c = kv.c
    row = (
        conn.execute(
            sa.select(kv).where(
                c.scope == scope, c.owner == _owner(scope, user), c.name == name, _alive(now)
            )
        )
    ).first()
    return KeyValue.from_row(row) if row else None


def get_many(
    conn: Connection,
    keys: Sequence[tuple[str, str, str]],
    *,
    now: datetime,
) -> dict[tuple[str, str, str], KeyValue]:
    """Fetch ``(scope, owner, name)`` keys in one query; missing keys are absent."""
    if not keys:
        return {}
    c = kv.c
    conds = [sa.and_(c.scope == s, c.owner == o, c.name == n) for s, o, n in set(keys)]
    rows = (conn.execute(sa.select(kv).where(sa.or_(*conds), _alive(now)))).all()
    return {(r.scope, r.owner, r.name): KeyValue.from_row(r) for r in rows}


def list_keys(
    conn: Connection,
    *,
    scope: str | None,
    user: str | None,
    prefix: str | None,
    now: datetime,
    limit: int = 1000,
    offset: int = 0,
) -> list[KeyValue]:
    """Keys in ``scope`` (``None`` = system keys plus ``user``'s own keys)."""
    c = kv.c
    where: list[sa.ColumnElement[bool]] = [_alive(now)]
    if scope == "system":
        where.append(c.scope == "system")
    elif scope == "user":
        where.extend([c.scope == "user", c.owner == _owner("user", user)])
    else:
        where.append(
            sa.or_(c.scope == "system", sa.and_(c.scope == "user", c.owner == (user or "")))
        )
    if prefix:
        where.append(like_prefix(c.name, prefix))
    stmt = sa.select(kv).where(*where).order_by(c.scope, c.name).limit(limit).offset(offset)
    return [KeyValue.from_row(r) for r in (conn.execute(stmt)).all()]


def set_value(
    conn: Connection,
    name: str,
    value: str,
    *,
    scope: str,
    user: str | None,
    secret: bool,
    ttl: int | None,
    now: datetime,
) -> tuple[KeyValue, KeyValue | None]:
    """Create or replace a key. Returns (new, previous) — previous is ``None`` on create."""
    if not name:
        raise ValidationError("a datastore key needs a name")
    if ttl is not None and ttl <= 0:
        raise ValidationError(f"invalid ttl {ttl!r}", hint="ttl is a positive number of seconds")
    owner = _owner(scope, user)
    previous = get(conn, name, scope=scope, user=user, now=now)
    expire_at = now + timedelta(seconds=ttl) if ttl else None
    created = previous.created_at if previous else now
    row: dict[str, Any] = {
        "scope": scope,
        "owner": owner,
        "name": name,
        "value": value,
        "secret": secret,
        "expire_at": expire_at,
        "team": None,
        "created_at": created,
        "updated_at": now,
    }
    upsert(conn, kv, [row], keys=["scope", "owner", "name"])
    row.pop("team")
    return KeyValue(**row), previous


def delete(
    conn: Connection, name: str, *, scope: str, user: str | None, now: datetime
) -> KeyValue | None:
    """Delete a key; returns what was deleted, ``None`` if it did not exist (or expired)."""
    previous = get(conn, name, scope=scope, user=user, now=now)
    if previous is None:
        return None
    c = kv.c
    conn.execute(kv.delete().where(c.scope == scope, c.owner == previous.owner, c.name == name))
    return previous


def purge_expired(conn: Connection, *, now: datetime, limit: int = 1000) -> int:
    c = kv.c
    doomed = sa.select(c.scope, c.owner, c.name).where(c.expire_at <= now).limit(limit)
    rows = (conn.execute(doomed)).all()
    if not rows:
        return 0
    conds = [sa.and_(c.scope == r.scope, c.owner == r.owner, c.name == r.name) for r in rows]
    conn.execute(kv.delete().where(sa.or_(*conds)))
    return len(rows)
