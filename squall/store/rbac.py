"""Custom RBAC roles and role assignments (synchronized from the RBAC definition files)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.auth.rbac import Grant, Role
from squall.auth.rbac_files import RoleAssignment
from squall.store.events import bump_version, read_version
from squall.store.schema import rbac_role_assignments, rbac_roles

__all__ = [
    "VERSION_KEY",
    "assignments_of",
    "list_assignments",
    "list_roles",
    "replace_definitions",
    "version",
]

#: The ``system_state`` counter bumped whenever roles or assignments change.
VERSION_KEY = "rbac"


def _role(row: Any) -> Role:
    grants = tuple(
        Grant(frozenset(g.get("permission_types") or ()), g.get("resource_uid"))
        for g in row.grants or ()
    )
    return Role(
        name=row.name,
        description=row.description,
        grants=grants,
        enabled=row.enabled,
        source=row.source,
    )


def _assignment(row: Any) -> RoleAssignment:
    return RoleAssignment(
        user=row.user,
        role=row.role,
        source=row.source,
        description=row.description,
        is_remote=row.is_remote,
    )


def version(conn: Connection) -> int:
    """The change counter of roles and assignments."""
    return read_version(conn, VERSION_KEY)


def list_roles(conn: Connection) -> list[Role]:
    rows = conn.execute(sa.select(rbac_roles).order_by(rbac_roles.c.name)).all()
    return [_role(r) for r in rows]


def list_assignments(
    conn: Connection, *, user: str | None = None, role: str | None = None
) -> list[RoleAssignment]:
    t = rbac_role_assignments
    stmt = sa.select(t).order_by(t.c.user, t.c.role, t.c.source)
    if user:
        stmt = stmt.where(t.c.user == user)
    if role:
        stmt = stmt.where(t.c.role == role)
    return [_assignment(r) for r in conn.execute(stmt).all()]


def assignments_of(conn: Connection, user: str) -> list[str]:
    """Role names assigned to ``user`` by the definition files."""
    t = rbac_role_assignments
    rows = conn.execute(sa.select(t.c.role).where(t.c.user == user)).all()
    return [r.role for r in rows]


def replace_definitions(
    conn: Connection,
    roles: Sequence[Role],
    assignments: Sequence[RoleAssignment],
    *,
    now: datetime,
) -> None:
    """Make the stored roles and file assignments exactly ``roles`` and ``assignments``."""
    conn.execute(rbac_roles.delete())
    conn.execute(rbac_role_assignments.delete())
    if roles:
        conn.execute(
            rbac_roles.insert(),
            [
                {
                    "name": r.name,
                    "description": r.description,
                    "enabled": r.enabled,
                    "grants": [g.as_api() for g in r.grants],
                    "source": r.source,
                    "team": None,
                    "updated_at": now,
                }
                for r in roles
            ],
        )
    unique = {(a.user, a.role, a.source): a for a in assignments}
    if unique:
        conn.execute(
            rbac_role_assignments.insert(),
            [
                {
                    "user": a.user,
                    "role": a.role,
                    "source": a.source,
                    "description": a.description,
                    "is_remote": a.is_remote,
                    "team": None,
                    "updated_at": now,
                }
                for a in unique.values()
            ],
        )
    bump_version(conn, VERSION_KEY)
