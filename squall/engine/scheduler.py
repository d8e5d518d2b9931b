"""The scheduler: moves ``requested`` (and due ``delayed``) executions to ``scheduled``.

Claims are batched: one transaction moves up to a few hundred executions. Concurrency
policies are applied in that same transaction: each claimed execution is scheduled now,
delayed (re-checked shortly) or canceled.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection

from squall.engine.executions import ExecutionService
from squall.engine.policies import PolicyService
from squall.engine.wakeup import Wakeups
from squall.store import executions as exrepo
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """Service loop of the ``scheduler`` role."""

    BATCH = 256
    #: Safety-net poll: also picks up delayed executions that became due.
    POLL_SECONDS = 0.5

    def __init__(
        self,
        db: Database,
        wakeups: Wakeups,
        *,
        executions: ExecutionService | None = None,
        policies: PolicyService | None = None,
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.executions = executions
        self.policies = policies

    async def tick(self) -> int:
        """Schedule what is due; returns how many executions were claimed."""
        if self.policies is not None:
            await self.policies.refresh()
        now = utcnow()

        def _claim(conn: Connection) -> int:
            claimed = exrepo.claim_requested(conn, now=now, limit=self.BATCH)
            if claimed and self.policies is not None:
                for done in self.policies.on_scheduled(conn, claimed):
                    if self.executions is not None:
                        self.executions.on_terminal(conn, done)
            return len(claimed)

        count = await self.db.write(_claim)
        if count:
            self.wakeups.signal("runner")
        return count

    async def run(self) -> None:
        while True:
            try:
                count = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if count >= self.BATCH:
                continue  # more waiting: keep going without sleeping
            await self.wakeups.wait("scheduler", self.POLL_SECONDS)
