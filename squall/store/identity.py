"""Users, tokens and API keys. Secrets (passwords, tokens, keys) are stored only as hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import api_keys, tokens, users

__all__ = [
    "ApiKey",
    "Token",
    "User",
    "create_api_key",
    "create_token",
    "create_user",
    "delete_api_key",
    "delete_user",
    "find_api_key",
    "find_token",
    "get_api_key",
    "get_token",
    "get_user",
    "list_api_keys",
    "list_users",
    "revoke_token",
    "revoke_token_id",
    "revoke_user_tokens",
    "set_api_key_enabled",
    "update_user",
]


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str | None
    enabled: bool
    roles: list[str]
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return bool({"admin", "system_admin"} & set(self.roles))


@dataclass(frozen=True)
class Token:
    id: str
    user: str
    expiry: datetime
    revoked: bool
    doc: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    id: str
    user: str
    enabled: bool
    doc: dict[str, Any]
    created_at: datetime


def _user(row: Any) -> User:
    return User(row.name, row.password_hash, row.enabled, list(row.roles), row.created_at)


def get_user(conn: Connection, name: str) -> User | None:
    row = (conn.execute(sa.select(users).where(users.c.name == name))).first()
    return _user(row) if row else None


def list_users(conn: Connection) -> list[User]:
    rows = (conn.execute(sa.select(users).order_by(users.c.name))).all()
    return [_user(r) for r in rows]


def create_user(
    conn: Connection,
    name: str,
    *,
    password_hash: str | None,
    roles: list[str],
    now: datetime,
) -> User:
    conn.execute(
        users.insert().values(
            name=name,
            password_hash=password_hash,
            enabled=True,
            roles=roles,
            doc={},
            created_at=now,
            updated_at=now,
        )
    )
    return User(name, password_hash, True, roles, now)


def update_user(conn: Connection, name: str, *, now: datetime, **values: Any) -> bool:
    res = conn.execute(users.update().where(users.c.name == name).values(updated_at=now, **values))
    return bool(res.rowcount)


def delete_user(conn: Connection, name: str) -> bool:
    conn.execute(tokens.delete().where(tokens.c.user == name))
    conn.execute(api_keys.delete().where(api_keys.c.user == name))
    res = conn.execute(users.delete().where(users.c.name == name))
    return bool(res.rowcount)


def create_token(
    conn: Connection,
    *,
    id: str,
    token_hash: str,
    user: str,
    expiry: datetime,
    now: datetime,
    doc: dict[str, Any] | None = None,
) -> Token:
    conn.execute(
        tokens.insert().values(
            id=id,
            token_hash=token_hash,
            user=user,
            expiry=expiry,
            revoked=False,
            doc=doc or {},
            created_at=now,
        )
    )
    return Token(id, user, expiry, False, doc or {}, now)


def find_token(conn: Connection, token_hash: str) -> Token | None:
    row = (conn.execute(sa.select(tokens).where(tokens.c.token_hash == token_hash))).first()
    if row is None:
        return None
    return Token(row.id, row.user, row.expiry, row.revoked, row.doc, row.created_at)


def get_token(conn: Connection, token_id: str) -> Token | None:
    row = (conn.execute(sa.select(tokens).where(tokens.c.id == token_id))).first()
    if row is None:
        return None
    return Token(row.id, row.user, row.expiry, row.revoked, row.doc, row.created_at)


def revoke_token_id(conn: Connection, token_id: str) -> bool:
    res = conn.execute(tokens.update().where(tokens.c.id == token_id).values(revoked=True))
    return bool(res.rowcount)


def revoke_user_tokens(conn: Connection, user: str) -> int:
    """Revoke every token of ``user``; returns how many were still valid."""
    res = conn.execute(
        tokens.update()
        .where(tokens.c.user == user, tokens.c.revoked.is_(False))
        .values(revoked=True)
    )
    return int(res.rowcount or 0)


def revoke_token(conn: Connection, token_hash: str) -> bool:
    res = conn.execute(
        tokens.update().where(tokens.c.token_hash == token_hash).values(revoked=True)
    )
    return bool(res.rowcount)


def create_api_key(
    conn: Connection,
    *,
    id: str,
    key_hash: str,
    user: str,
    now: datetime,
    doc: dict[str, Any] | None = None,
) -> ApiKey:
    conn.execute(
        api_keys.insert().values(
            id=id, key_hash=key_hash, user=user, enabled=True, doc=doc or {}, created_at=now
        )
    )
    return ApiKey(id, user, True, doc or {}, now)


def find_api_key(conn: Connection, key_hash: str) -> ApiKey | None:
    row = (conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    if row is None:
        return None
    return ApiKey(row.id, row.user, row.enabled, row.doc, row.created_at)


def get_api_key(conn: Connection, key_id: str) -> ApiKey | None:
    row = (conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    if row is None:
        return None
    return ApiKey(row.id, row.user, row.enabled, row.doc, row.created_at)


def set_api_key_enabled(conn: Connection, key_id: str, enabled: bool) -> bool:
    res = conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(enabled=enabled))
    return bool(res.rowcount)


def list_api_keys(conn: Connection, *, user: str | None = None) -> list[ApiKey]:
    stmt = sa.select(api_keys).order_by(api_keys.c.created_at)
    if user:
        stmt = stmt.where(api_keys.c.user == user)
    return [
        ApiKey(r.id, r.user, r.enabled, r.doc, r.created_at) for r in (conn.execute(stmt)).all()
    ]


def delete_api_key(conn: Connection, key_id: str) -> bool:
    res = conn.execute(api_keys.delete().where(api_keys.c.id == key_id))
    return bool(res.rowcount)
