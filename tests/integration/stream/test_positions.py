"""Stream positions in the store, on both backends: unique, in commit order, nothing lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from squall.model.ids import new_id
from squall.store import executions as ex
from squall.store import stream as positions
from squall.store.db import Database
from squall.store.schema import execution_output, executions

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": new_id(),
        "action_ref": "core.noop",
        "action_snapshot": "s" * 64,
        "runner_type": "noop",
        "parameters": {},
        "context": {"user": "admin"},
        "user": "admin",
        "now": NOW,
    }
    base.update(kw)
    return ex.new_row(**base)


async def _all_positions(db: Database) -> list[int]:
    def _read(conn: sa.Connection) -> list[int]:
        a = conn.execute(sa.select(executions.c.seq)).scalars().all()
        b = conn.execute(sa.select(execution_output.c.seq)).scalars().all()
        return [*a, *b]

    return await db.read(_read)


async def test_every_change_gets_a_new_unique_position(db: Database) -> None:
    rows = [_row() for _ in range(5)]
    await db.write(lambda c: ex.insert(c, rows))
    start = await db.read(positions.head)
    got = await db.read(lambda c: positions.read_changes(c, 0))
    assert [ch.execution.id for ch in got.executions] == [r["id"] for r in rows]
    assert all(ch.created == ch.pos for ch in got.executions)

    await db.write(lambda c: ex.claim_requested(c, now=NOW, limit=10))
    await db.write(
        lambda c: ex.append_output(
            c, [(rows[0]["id"], "stdout", "a"), (rows[0]["id"], "stderr", "b")], now=NOW
        )
    )
    await db.write(lambda c: ex.finish(c, rows[1]["id"], status="succeeded", result={}, now=NOW))
    seqs = await _all_positions(db)
    assert len(seqs) == len(set(seqs)) == 7
    after = await db.read(lambda c: positions.read_changes(c, start))
    assert {ch.execution.id for ch in after.executions} == {r["id"] for r in rows}
    # rows[1] changed last, after the output chunks.
    assert after.executions[-1].execution.id == rows[1]["id"]
    assert after.executions[-1].execution.status == "succeeded"
    assert [o.chunk.data for o in after.output] == ["a", "b"]
    assert max(o.pos for o in after.output) < after.executions[-1].pos
    # Updated executions remember where they were created.
    first = {ch.execution.id: ch.pos for ch in got.executions}
    assert all(ch.created == first[ch.execution.id] for ch in after.executions)
    assert after.complete and after.end == await db.read(positions.head)


async def test_limited_reads_page_without_loss(db: Database) -> None:
    rows = [_row() for _ in range(7)]
    await db.write(lambda c: ex.insert(c, rows))
    await db.write(
        lambda c: ex.append_output(c, [(r["id"], "stdout", r["id"]) for r in rows], now=NOW)
    )
    seen_ex: list[str] = []
    seen_out: list[str] = []
    cursor = 0
    for _ in range(20):
        page = await db.read(lambda c, at=cursor: positions.read_changes(c, at, limit=3))
        seen_ex += [ch.execution.id for ch in page.executions]
        seen_out += [o.chunk.data for o in page.output]
        assert page.end >= cursor
        cursor = page.end
        if page.complete:
            break
    assert seen_ex == [r["id"] for r in rows]
    assert seen_out == [r["id"] for r in rows]


async def test_concurrent_writers_never_pass_an_unfinished_change(db: Database) -> None:
    """A reader following ``end`` sees every change exactly once while writers run."""
    ids = [new_id() for _ in range(40)]

    async def writer(i: int) -> None:
        row = _row(id=ids[i])
        await db.write(lambda c: ex.insert(c, [row]))
        await db.write(lambda c: ex.append_output(c, [(ids[i], "stdout", str(i))], now=NOW))

    seen: list[str] = []
    cursor = await db.read(positions.head)
    done = False

    async def reader() -> None:
        nonlocal cursor
        while True:
            last = done  # decided before the read: a read begun earlier may miss the end
            page = await db.read(lambda c, at=cursor: positions.read_changes(c, at))
            seen.extend(o.chunk.data for o in page.output)
            cursor = page.end
            if last and page.complete:
                return
            await asyncio.sleep(0.001)

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(40)))
    done = True
    await asyncio.wait_for(task, 30)
    assert sorted(seen, key=int) == [str(i) for i in range(40)]
    assert len(seen) == 40


async def test_group_commit_retry_keeps_positions_unique(db: Database) -> None:
    """A failing write in a SQLite batch re-runs its siblings: no duplicate positions."""
    good = [_row() for _ in range(10)]
    dup = _row()
    await db.write(lambda c: ex.insert(c, [dup]))

    async def put(r: dict[str, Any]) -> bool:
        try:
            await db.write(lambda c: ex.insert(c, [r]))
        except Exception:
            return False
        return True

    results = await asyncio.gather(*(put(r) for r in [*good[:5], dup, *good[5:]]))
    assert results.count(False) == 1
    seqs = await _all_positions(db)
    assert len(seqs) == len(set(seqs)) == 11


async def test_postgres_reader_waits_for_an_older_open_transaction(db: Database) -> None:
    """PostgreSQL: a change committed after an older, still open one is held back."""
    if db.is_sqlite:
        return  # one writer at a time: commit order is position order by construction
    from sqlalchemy.ext.asyncio import create_async_engine

    from squall.store.db import async_url

    engine = create_async_engine(async_url(db.url))
    first, second = _row(), _row()
    try:
        async with engine.connect() as older:
            await older.begin()
            await older.run_sync(lambda c: ex.insert(c, [first]))
            await db.write(lambda c: ex.insert(c, [second]))  # commits while `older` is open
            start = 0
            page = await db.read(lambda c: positions.read_changes(c, start))
            assert page.executions == []
            await older.commit()
        page = await db.read(lambda c: positions.read_changes(c, start))
        assert [ch.execution.id for ch in page.executions] == [first["id"], second["id"]]
    finally:
        await engine.dispose()


async def test_postgres_open_transaction_in_another_database_does_not_stall(
    db: Database,
) -> None:
    """Only this database's open transactions hold the stream back, not the cluster's."""
    if db.is_sqlite:
        return
    import os

    import asyncpg

    elsewhere = os.environ.get(
        "SQUALL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    other = await asyncpg.connect(elsewhere)
    tx = other.transaction()
    await tx.start()
    try:
        await other.fetchval("SELECT pg_current_xact_id()")  # an open write transaction
        row = _row()
        await db.write(lambda c: ex.insert(c, [row]))
        page = await db.read(lambda c: positions.read_changes(c, 0))
        assert [ch.execution.id for ch in page.executions] == [row["id"]]
    finally:
        await tx.rollback()
        await other.close()
