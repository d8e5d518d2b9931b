"""Batched writes on PostgreSQL: a failing write in a shared transaction fails alone."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from squall.engine.batching import RowBatcher
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


async def test_rows_from_concurrent_callers_share_an_insert_and_a_bad_row_fails_alone(
    pg_url: str,
) -> None:
    db = Database(pg_url)
    statements: list[int] = []

    def insert(conn: sa.Connection, rows: object) -> None:
        statements.append(len(rows))  # type: ignore[arg-type]
        events.insert_instances(conn, rows)  # type: ignore[arg-type]

    batcher = RowBatcher(db, insert)
    try:
        now = utcnow()
        rows = [
            events.new_instance(
                id=f"{i:024d}", trigger="t", trigger_type="t", payload={"i": i}, now=now
            )
            for i in range(60)
        ]
        rows[13] = {**rows[13], "id": rows[12]["id"]}  # a duplicate key: that one fails
        results = await asyncio.gather(*(batcher.add(r) for r in rows), return_exceptions=True)
        failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
        assert len(failed) == 1 and failed[0] in (12, 13)
        stored = await db.read(
            lambda conn: conn.execute(
                sa.select(sa.func.count()).select_from(trigger_instances)
            ).scalar_one()
        )
        assert stored == 59
        assert max(statements) > 1, "rows arriving together should share a statement"
    finally:
        await db.close()
