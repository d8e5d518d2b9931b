"""LISTEN/NOTIFY wake-ups between processes (two Database objects on one PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from squall.engine.wakeup_pg import PgWakeups
from squall.store.db import Database, signals_in_transaction
from squall.testing import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[PgWakeups, PgWakeups]]:
    dbs = [Database(pg_url), Database(pg_url)]
    wakes = [PgWakeups(db) for db in dbs]
    for w in wakes:
        await w.start()
    try:
        yield wakes[0], wakes[1]
    finally:
        for w in wakes:
            await w.close()
        for db in dbs:
            await db.close()


async def test_a_signal_wakes_the_other_process(pair: tuple[PgWakeups, PgWakeups]) -> None:
    a, b = pair
    started = time.monotonic()
    waiter = asyncio.create_task(b.wait("runner", 5.0))
    await asyncio.sleep(0.05)
    a.signal("runner")
    assert await waiter, "the other process was not woken"
    assert time.monotonic() - started < 1.0
    # Local-only signals (a free runner slot) stay in the process.
    a.signal("runner", local=True)
    assert not await b.wait("runner", 0.3)


async def test_a_signal_inside_a_write_is_sent_after_the_commit(
    pair: tuple[PgWakeups, PgWakeups],
) -> None:
    a, b = pair
    during: list[object] = []

    def _write(conn: sa.Connection) -> None:
        a.signal("scheduler")  # e.g. a terminal hook inside the transaction
        during.append(signals_in_transaction())
        during.append(set(a._outbox))

    sent_before = a.sent
    watcher = asyncio.create_task(b.wait("scheduler", 5.0))
    await asyncio.sleep(0.05)
    await a.db.write(_write)
    # Held with the transaction, not queued for sending while it was open ...
    assert during == [{"scheduler"}, set()]
    # ... and sent once it committed.
    assert await watcher, "the other process was not woken after the commit"
    assert b.received >= 1
    await eventually(lambda: a.sent > sent_before, timeout=5, message="the send counted")


async def test_the_listener_reconnects_after_losing_its_connection(
    pair: tuple[PgWakeups, PgWakeups], pg_url: str
) -> None:
    a, b = pair
    db = Database(pg_url)
    try:
        killed = await db.write(
            lambda conn: conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND query LIKE 'LISTEN%'"
                )
            ).scalar()
        )
    finally:
        await db.close()
    assert killed, "no listening connection found"
    await eventually(lambda: b.reconnects >= 1 and b.connected, timeout=15, message="reconnect")

    async def delivered() -> bool:
        a.signal("rules")
        return await b.wait("rules", 0.5)

    await eventually(delivered, timeout=15, message="a wake-up after the reconnect")
