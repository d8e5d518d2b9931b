"""Garbage collection and recovery: abandoned executions, expired keys and tokens.

An execution whose runner stopped renewing its lease (the process died) is marked
``abandoned`` — never left ``running`` — or retried when an ``action.retry`` policy says so
(the terminal hooks run in the same transaction). In one-process SQLite mode the process
holds an exclusive lock on its home, so at start every execution still ``running`` belonged
to a process that is gone and is abandoned at once.

With several ``gc`` processes one of them works at a time: it holds the ``gc`` lease, and
another takes over within the lease time when it dies. Expired leases are looked for every
couple of seconds, so a dead runner's executions end within the lease time plus that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.errors import StoreError
from squall.model.status import ExecutionStatus
from squall.store import executions as exrepo
from squall.store import kv as kvstore
from squall.store import leases, processes
from squall.store.db import Database
from squall.store.schema import executions, tokens
from squall.store.util import utcnow

__all__ = ["LEASE_NAME", "GarbageCollector", "abandon_orphans"]

log = logging.getLogger(__name__)

_S = ExecutionStatus

LEASE_NAME = "gc"

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

    #: Rows of processes whose heartbeat is older than this leave the service registry.
    PROCESS_RETENTION = timedelta(minutes=10)
    PURGE_SECONDS = 60.0

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 5.0,
        on_abandon: AbandonHook | None = None,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        before_reap: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.interval = interval
        self.on_abandon = on_abandon
        #: The lease holder name; ``None`` works without a lease (one process, tests).
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        #: Awaited before each reaping (the policy cache, for retries on abandonment).
        self.before_reap = before_reap
        self.leader = owner is None

    async def hold_lease(self) -> bool:
        """Take or renew the ``gc`` lease; whether this process does the work now."""
        if self.owner is None:
            return True
        owner = self.owner
        now = utcnow()
        until = now + self.lease
        held = await self.db.write(
            lambda conn: leases.acquire(conn, LEASE_NAME, owner=owner, now=now, until=until)
        )
        if held != self.leader:
            log.info("garbage collection %s", "taken over" if held else "handed over")
        self.leader = held
        return held

    async def stop(self) -> None:
        """Give the lease up so another process takes over at once."""
        if self.owner is not None and self.leader:
            owner = self.owner
            with contextlib.suppress(Exception):
                await self.db.write(lambda conn: leases.release(conn, LEASE_NAME, owner=owner))
            self.leader = False

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
            processes.purge(conn, before=now - self.PROCESS_RETENTION)

        await self.db.write(_do)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        purged = -1e9
        while True:
            try:
                if await self.hold_lease():
                    if self.before_reap is not None:
                        await self.before_reap()
                    await self.reap_expired_leases()
                    if loop.time() - purged >= self.PURGE_SECONDS:
                        purged = loop.time()
                        await self.purge()
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                log.warning("garbage collection failed (%s); retrying", exc)
            except Exception:
                log.exception("garbage collection failed; retrying")
            await asyncio.sleep(self.interval)
