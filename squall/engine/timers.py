"""The timers service: interval, cron and date timers, each tick fired exactly once.

One process at a time holds the ``timers`` lease and fires ticks; if it dies another takes
over when the lease lapses. Each tick is recorded under its scheduled time in the same
transaction as its trigger instance, with a unique key, so even two leaders overlapping for a
moment cannot fire a tick twice.

Missed ticks (Squall was down, or the leader died): when the service finds ticks that were due
while nobody fired them, it fires **one** catch-up tick — the earliest missed one — if it is
not older than ``max_lateness`` (default one hour), records the rest as skipped, and carries on
with the schedule. There is never a burst of stale ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from squall.engine.triggers import TriggerService
from squall.engine.wakeup import Wakeups
from squall.model.formatting import iso
from squall.rules import RuleSet
from squall.rules.timers import TIMER_TRIGGER_TYPES, Timer, parse_timer, plan_ticks
from squall.store import events, leases
from squall.store.db import Database
from squall.store.schema import triggers as triggers_table
from squall.store.util import utcnow

__all__ = ["TimerService"]

log = logging.getLogger(__name__)

LEASE_NAME = "timers"


@dataclass
class _Timer:
    key: str
    type: str
    parameters: dict[str, Any]
    timer: Timer
    anchor: datetime
    last: datetime | None = None


class TimerService:
    """Service loop of the ``timers`` role."""

    MAX_SLEEP = 1.0
    #: How often a process that is not the leader checks whether the lease lapsed.
    FOLLOWER_SECONDS = 2.0

    def __init__(
        self,
        *,
        db: Database,
        wakeups: Wakeups,
        triggers: TriggerService,
        owner: str,
        lease_seconds: float = 30.0,
        max_lateness: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.triggers = triggers
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.max_lateness = max_lateness
        self.leader = False
        self._timers: dict[str, _Timer] = {}
        self._version = -1
        self.fired = 0
        self.metrics: Any = None

    async def _load(self) -> None:
        version = await self.db.read(lambda conn: events.read_version(conn, "rules"))
        if version == self._version:
            return
        from squall.engine.rules_engine import load_ruleset

        ruleset: RuleSet = await load_ruleset(self.db)
        specs = [s for t in TIMER_TRIGGER_TYPES for s in ruleset.triggers(t)]

        def _read(conn: Connection) -> tuple[dict[str, datetime], dict[str, datetime | None]]:
            created = {
                r.key: r.created_at
                for r in conn.execute(
                    triggers_table.select().where(triggers_table.c.type.in_(TIMER_TRIGGER_TYPES))
                ).all()
            }
            last = {s.key: events.last_tick(conn, s.key) for s in specs}
            return created, last

        created, last = await self.db.read(_read)
        now = utcnow()
        timers: dict[str, _Timer] = {}
        for spec in specs:
            try:
                timer = parse_timer(spec.type, spec.parameters)
            except Exception as exc:  # validated at registration; be defensive anyway
                log.error("timer %s is invalid: %s", spec.key, exc)
                continue
            timers[spec.key] = _Timer(
                spec.key,
                spec.type,
                dict(spec.parameters),
                timer,
                anchor=created.get(spec.key, now),
                last=last.get(spec.key),
            )
        self._timers = timers
        self._version = version
        log.debug("timers: %d active", len(timers))

    async def _hold_lease(self) -> bool:
        now = utcnow()
        until = now + self.lease
        held = await self.db.write(
            lambda conn: leases.acquire(conn, LEASE_NAME, owner=self.owner, now=now, until=until)
        )
        if held and not self.leader:
            log.debug("this process now fires the timers")
            self._version = -1  # reload everything when becoming leader
        self.leader = held
        return held

    async def tick(self) -> float:
        """Fire what is due; returns seconds until the next tick (bounded)."""
        await self._load()
        now = utcnow()
        sleep = self.MAX_SLEEP
        for t in list(self._timers.values()):
            plan = plan_ticks(t.timer, t.last, now, anchor=t.anchor, max_lateness=self.max_lateness)
            due = plan.fire
            skipped_to = None
            if plan.missed:
                skipped_to = self._latest_due(t, now)
            if due is not None or skipped_to is not None:
                await self._fire(t, due, skipped_to, now)
            if plan.next_at is not None:
                sleep = min(sleep, max(0.0, (plan.next_at - utcnow()).total_seconds()))
        return sleep

    @staticmethod
    def _latest_due(t: _Timer, now: datetime) -> datetime | None:
        since = t.last if t.last is not None else t.anchor
        tick = t.timer.next_after(since, t.anchor)
        latest = None
        guard = 0
        while tick is not None and tick <= now and guard < 100_000:
            latest, tick = tick, t.timer.next_after(tick, t.anchor)
            guard += 1
        return latest

    async def _fire(
        self, t: _Timer, due: datetime | None, skipped_to: datetime | None, now: datetime
    ) -> None:
        row = None
        if due is not None:
            payload = {"executed_at": iso(now), "schedule": {"type": t.type, **t.parameters}}
            row = self.triggers.instance_row(t.type, payload, now=now, parameters=t.parameters)

        def _write(conn: Connection) -> bool:
            if not leases.acquire(
                conn, LEASE_NAME, owner=self.owner, now=now, until=now + self.lease
            ):
                return False  # lost leadership: another process fires from now on
            fired = False
            if (
                due is not None
                and row is not None
                and events.record_tick(
                    conn, trigger_key=t.key, tick_at=due, instance_id=row["id"], now=now
                )
            ):
                events.insert_instances(conn, [row])
                fired = True
            if skipped_to is not None and skipped_to != due:
                events.record_tick(
                    conn, trigger_key=t.key, tick_at=skipped_to, instance_id=None, now=now
                )
            return fired

        fired = await self.db.write(_write)
        t.last = max(x for x in (due, skipped_to, t.last) if x is not None)
        if fired:
            self.fired += 1
            if self.metrics is not None:
                self.metrics.timer_ticks.inc()
            self.wakeups.signal("rules")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every = self.lease.total_seconds() / 3
        renewed = 0.0
        while True:
            try:
                if loop.time() - renewed > renew_every or not self.leader:
                    renewed = loop.time()
                    await self._hold_lease()
                sleep = (
                    await self.tick() if self.leader else min(renew_every, self.FOLLOWER_SECONDS)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timers failed; retrying")
                sleep = 1.0
            await self.wakeups.wait("timers", max(0.01, sleep))

    async def stop(self) -> None:
        if self.leader:
            with contextlib.suppress(Exception):
                await self.db.write(lambda conn: leases.release(conn, LEASE_NAME, owner=self.owner))
            self.leader = False
