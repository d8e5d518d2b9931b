"""Batched writes on PostgreSQL: a failing write in a shared transaction fails alone."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from squall.errors import ConflictError
from squall.store import events
from squall.store.db import Database
from squall.store.schema import trigger_instances
from squall.store.util import utcnow

pytestmark = pytest.mark.postgres


async def test_a_failing_write_in_a_batch_fails_alone(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        now = utcnow()

        def insert(i: int) -> object:
            def _write(conn: sa.Connection) -> int:
                row = events.new_instance(
                    id=f"{i:024d}", trigger="t", trigger_type="t", payload={"i": i}, now=now
                )
                events.insert_instances(conn, [row])
                if i == 7:
                    raise ConflictError("refused")  # after its insert: that must roll back
                return i

            return _write

        results = await asyncio.gather(
            *(db.write(insert(i), batch=True) for i in range(40)), return_exceptions=True
        )
        assert isinstance(results[7], ConflictError)
        assert [r for r in results if not isinstance(r, BaseException)] == [
            i for i in range(40) if i != 7
        ]
        stored = await db.read(
            lambda conn: conn.execute(
                sa.select(sa.func.count()).select_from(trigger_instances)
            ).scalar_one()
        )
        assert stored == 39
    finally:
        await db.close()
