"""Shared test configuration: database backends for the contract suites.

``db_url`` is parametrized over SQLite and PostgreSQL. PostgreSQL tests use one template
database per session (migrated once) and a fresh copy per test (``CREATE DATABASE … TEMPLATE``).
Locally they skip with the reason when PostgreSQL is unreachable; under ``CI=true`` they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("SQUALL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
_TEMPLATE = f"squall_tpl_{os.getpid()}"


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    import asyncpg

    parts = urlsplit(PG_URL)
    conn = await asyncpg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database=(parts.path or "/postgres").lstrip("/") or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable ({PG_URL}): {reason}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test session."""
    from squall.store.db import Database
    from squall.store.migrate import upgrade

    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{_TEMPLATE}"'))
    except Exception as exc:  # unreachable, auth …
        _pg_unavailable(repr(exc))

    async def _migrate() -> None:
        db = Database(_with_db(PG_URL, _TEMPLATE))
        try:
            await upgrade(db)
        finally:
            await db.close()

    asyncio.run(_migrate())
    yield _TEMPLATE
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of the migrated template) for one test."""
    name = f"squall_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _with_db(PG_URL, name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'squall.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[object]:
    """An open, migrated :class:`squall.store.db.Database` on each backend."""
    from squall.store.db import Database
    from squall.store.migrate import upgrade

    database = Database(db_url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.close()
