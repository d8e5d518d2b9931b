"""Garbage collection and recovery: abandoned executions, expired keys and tokens.

An execution whose runner stopped renewing its lease (the process died) is marked
``abandoned`` — never left ``running``. In one-process SQLite mode the process holds an
exclusive lock on its home, so at start every execution still ``running`` belonged to a
process that is gone and is abandoned at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.model.status import ExecutionStatus
from squall.store import executions as exrepo
from squall.store import kv as kvstore
from squall.store.db import Database
from squall.store.schema import executions, tokens
from squall.store.util import utcnow

__all__ = ["GarbageCollector", "abandon_orphans"]

log = logging.getLogger(__name__)

_S = ExecutionStatus

AbandonHook = Callable[[Connection, exrepo.Execution], None]


async def abandon_orphans(
    db: Database, *, reason: str, on_abandon: AbandonHook | None = None
) -> int:
    """Abandon every execution still marked running (caller knows no runner is alive)."""
    now = utcnow()

    def _do(conn: Connection) -> int:
        rows = conn.execute(
            # Only executions a runner leased: a workflow holds no lease while its children run.
            sa.select(executions.c.id).where(
                executions.c.status.in_([_S.RUNNING, _S.CANCELING]),
                executions.c.lease_owner.is_not(None),
            )
        )
        count = 0
        for (execution_id,) in rows.all():
            done = exrepo.abandon(conn, execution_id, now=now, reason=reason)
            if done is not None:
                count += 1
                if on_abandon is not None:
                    on_abandon(conn, done)
        return count

    return await db.write(_do)


class GarbageCollector:
    """Service loop of the ``gc`` role."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 5.0,
        on_abandon: AbandonHook | None = None,
    ) -> None:
        self.db = db
        self.interval = interval
        self.on_abandon = on_abandon

    async def reap_expired_leases(self) -> int:
        now = utcnow()

        def _do(conn: Connection) -> int:
            expired = exrepo.expired_leases(conn, now=now)
            count = 0
            for ex in expired:
                done = exrepo.abandon(
                    conn,
                    ex.id,
                    now=now,
                    reason=f"the runner {ex.lease_owner} stopped renewing its lease",
                )
                if done is not None:
                    count += 1
                    if self.on_abandon is not None:
                        self.on_abandon(conn, done)
            return count

        count = await self.db.write(_do)
        if count:
            log.warning("marked %d executions abandoned (their runner is gone)", count)
        return count

    async def purge(self) -> None:
        now = utcnow()

        def _do(conn: Connection) -> None:
            kvstore.purge_expired(conn, now=now)
            conn.execute(tokens.delete().where(tokens.c.expiry < now))

        await self.db.write(_do)

    async def run(self) -> None:
        ticks = 0
        while True:
            try:
                await self.reap_expired_leases()
                if ticks % 12 == 0:
                    await self.purge()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("garbage collection failed; retrying")
            ticks += 1
            await asyncio.sleep(self.interval)
