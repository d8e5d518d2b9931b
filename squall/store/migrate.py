"""Schema migrations (Alembic), applied at start-up and by ``squall db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from squall.errors import StoreError
from squall.store.db import Database

__all__ = ["HEAD_REVISION", "MIGRATION_LOCK", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"

#: The newest revision of ``migrations/versions`` (a test checks it against Alembic), so that
#: an up-to-date database starts without importing Alembic at all.
HEAD_REVISION = "0006"


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision this code knows."""
    return HEAD_REVISION


def alembic_head() -> str:
    """The head according to Alembic's script directory (slow: imports Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return str(head)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""

    def _read(sync_conn: Any) -> str | None:
        if not sa.inspect(sync_conn).has_table("alembic_version"):
            return None
        rev = sync_conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return str(rev) if rev is not None else None

    return await db.run_sync_ddl(_read)


#: PostgreSQL advisory lock key held while migrating: processes starting together take turns.
MIGRATION_LOCK = 0x5351_4C4C  # "SQLL"


async def upgrade(db: Database, *, apply: bool = True, create: bool | None = None) -> str:
    """Bring the schema to the code's head revision and return it.

    Refuses to touch a database whose schema is newer than this code (it was upgraded by a
    newer Squall), and with ``apply=False`` refuses one that is older instead of migrating.
    ``create`` (default: ``apply``) allows creating the schema in an empty database. On
    PostgreSQL the migration runs under an advisory lock, so several processes starting at
    once migrate one after the other (the later ones find the schema at head).
    """
    head = head_revision()
    current = await current_revision(db)
    if current == head:
        return head
    if create is None:
        create = apply
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"the database schema (revision {current}) is newer than this Squall (head {head})",
            hint="upgrade Squall to the version that migrated the database",
        )
    if not (apply or (create and current is None)):
        raise StoreError(
            f"the database schema is at revision {current or 'empty'}, this Squall needs {head}",
            hint="run `squall db upgrade` (with this Squall's version) to migrate, then start "
            "the services again",
        )
    cfg = _config()

    def _upgrade(sync_conn: Any) -> None:
        if sync_conn.dialect.name == "postgresql":
            # Released at commit; whoever waited sees the new revision and has nothing to do.
            sync_conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    await db.run_sync_ddl(_upgrade)
    reached = await current_revision(db)
    if reached != head:  # pragma: no cover - HEAD_REVISION out of date (a test guards it)
        raise StoreError(f"migrations ended at {reached}, expected {head}")
    return head
