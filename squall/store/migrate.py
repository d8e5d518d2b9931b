"""Schema migrations (Alembic), applied at start-up and by ``squall db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from squall.errors import StoreError
from squall.store.db import Database

__all__ = ["current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""

    def _read(sync_conn: Any) -> str | None:
        rev: str | None = MigrationContext.configure(sync_conn).get_current_revision()
        return rev

    return await db.run_sync_ddl(_read)


async def upgrade(db: Database, *, apply: bool = True) -> str:
    """Bring the schema to the code's head revision and return it.

    Refuses to touch a database whose schema is newer than this code (it was upgraded by a
    newer Squall), and with ``apply=False`` refuses one that is older instead of migrating.
    """
    script = ScriptDirectory.from_config(_config())
    head = head_revision()
    current = await current_revision(db)
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"the database schema (revision {current}) is newer than this Squall (head {head})",
            hint="upgrade Squall to the version that migrated the database",
        )
    if current == head:
        return head
    if not apply:
        raise StoreError(
            f"the database schema is at revision {current or 'empty'}, this Squall needs {head}",
            hint="run `squall db upgrade` to migrate",
        )
    cfg = _config()

    def _upgrade(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    await db.run_sync_ddl(_upgrade)
    return head
