"""RBAC roles and assignments: loaded from the definition files into the database, read back
(cached) when a principal is built.

A user's roles are the union of the roles set with ``squall user`` (``users.roles``, shown
with source ``local``) and those the assignment files give (``rbac/assignments/<user>.yaml``,
which also covers users that exist only behind an authenticating proxy). The grants of a
principal are those of its enabled custom roles.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection

from squall.auth.rbac import SYSTEM_ROLES, Grant, Role
from squall.auth.rbac_files import RoleAssignment, load_definitions
from squall.errors import NotFoundError
from squall.store import identity
from squall.store import rbac as rbacstore
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["LOCAL_SOURCE", "RbacService", "system_roles"]

log = logging.getLogger(__name__)

#: The source of assignments made with ``squall user`` (stored in ``users.roles``).
LOCAL_SOURCE = "local"


def system_roles() -> list[Role]:
    """The built-in roles."""
    return [Role(name, description, system=True) for name, description in SYSTEM_ROLES.items()]


class RbacService:
    """Reads and loads RBAC definitions.

    Args:
        db: The database.
        directory: Where ``roles/`` and ``assignments/`` live (``$SQUALL_HOME/rbac``).
    """

    def __init__(self, db: Database, *, directory: Path | None = None) -> None:
        self.db = db
        self.directory = directory
        self._catalog: tuple[int, dict[str, Role]] = (-1, {})

    # --- used while building principals (inside a read transaction) ------------------------

    def roles_of(
        self, conn: Connection, user: str, local: list[str] | tuple[str, ...]
    ) -> tuple[str, ...]:
        """``local`` roles plus the roles the assignment files give ``user``."""
        assigned = rbacstore.assignments_of(conn, user)
        return tuple(dict.fromkeys([*local, *assigned]))

    def catalog(self, conn: Connection) -> dict[str, Role]:
        """Custom roles by name (re-read only when the definitions changed)."""
        current = rbacstore.version(conn)
        if current != self._catalog[0]:
            self._catalog = (current, {r.name: r for r in rbacstore.list_roles(conn)})
        return self._catalog[1]

    def grants_of(self, conn: Connection, roles: tuple[str, ...]) -> tuple[Grant, ...]:
        """The grants of the enabled custom roles among ``roles``."""
        if not roles:
            return ()
        catalog = self.catalog(conn)
        out: list[Grant] = []
        for name in roles:
            role = catalog.get(name)
            if role is not None and role.enabled:
                out.extend(role.grants)
        return tuple(out)

    # --- API ---------------------------------------------------------------------------------

    async def load(self, directory: Path | None = None) -> dict[str, object]:
        """Replace the stored roles and file assignments with those under ``directory``.

        Raises:
            ValidationError: a definition file is invalid (nothing is changed).
        """
        where = directory or self.directory
        if where is None:
            raise NotFoundError("no RBAC directory is configured")
        definitions = load_definitions(where)
        now = utcnow()

        def _replace(conn: Connection) -> None:
            rbacstore.replace_definitions(conn, definitions.roles, definitions.assignments, now=now)

        await self.db.write(_replace)
        log.info(
            "RBAC definitions loaded from %s: %d roles, %d assignments",
            where,
            len(definitions.roles),
            len(definitions.assignments),
        )
        return {
            "directory": str(where),
            "roles": sorted(r.name for r in definitions.roles),
            "assignments": len(definitions.assignments),
        }

    async def list_roles(self, *, system: bool | None = None) -> list[Role]:
        """System roles first, then custom roles by name."""
        custom = await self.db.read(rbacstore.list_roles)
        roles = [*system_roles(), *custom]
        if system is not None:
            roles = [r for r in roles if r.system == system]
        return roles

    async def get_role(self, name: str) -> Role:
        for role in await self.list_roles():
            if role.name == name:
                return role
        raise NotFoundError(f"role {name!r} not found", hint="`squall rbac roles` lists them")

    async def list_assignments(
        self,
        *,
        user: str | None = None,
        role: str | None = None,
        source: str | None = None,
        remote: bool | None = None,
    ) -> list[RoleAssignment]:
        """File assignments and local ones (``users.roles``), filtered."""

        def _read(conn: Connection) -> list[RoleAssignment]:
            out = rbacstore.list_assignments(conn, user=user, role=role)
            users = [identity.get_user(conn, user)] if user else identity.list_users(conn)
            for record in users:
                if record is None:
                    continue
                out.extend(
                    RoleAssignment(record.name, name, LOCAL_SOURCE)
                    for name in record.roles
                    if role in (None, name)
                )
            return out

        found = await self.db.read(_read)
        if source is not None:
            found = [a for a in found if a.source == source]
        if remote is not None:
            found = [a for a in found if a.is_remote == remote]
        return sorted(found, key=lambda a: (a.user, a.role, a.source))
