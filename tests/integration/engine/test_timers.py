"""Timers: ticks fire on schedule, exactly once even with two timer services, and at most one
catch-up tick after downtime."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from squall.engine.runtime import Runtime
from squall.engine.timers import TimerService
from squall.store import events
from squall.store.schema import timer_ticks, trigger_instances
from squall.store.util import utcnow
from squall.testing import eventually

RULE = {
    "name": "every_second",
    "pack": "ops",
    "enabled": True,
    "trigger": {
        "type": "core.st2.IntervalTimer",
        "parameters": {"unit": "seconds", "delta": 1},
    },
    "action": {"ref": "core.noop"},
}


async def _instances(rt: Runtime) -> int:
    def _count(conn: sa.Connection) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(trigger_instances)
                .where(trigger_instances.c.trigger_type == "core.st2.IntervalTimer")
            ).scalar_one()
        )

    return await rt.db.read(_count)


async def test_interval_timer_fires_and_runs_the_rule(runtime: Runtime) -> None:
    await runtime.rules.create(RULE)
    await eventually(lambda: _instances(runtime), timeout=10, message="a tick")

    async def enforced() -> bool:
        rows, _ = await runtime.db.read(
            lambda conn: events.list_enforcements(conn, rule_ref="ops.every_second")
        )
        return bool(rows) and rows[0].status == "succeeded"

    await eventually(enforced, timeout=10, message="the timer rule to run")


async def test_two_timer_services_fire_each_tick_once(runtime: Runtime) -> None:
    await runtime.rules.create(RULE)
    second = TimerService(
        db=runtime.db,
        wakeups=runtime.wakeups,
        triggers=runtime.triggers,
        owner="another-process",
        lease_seconds=runtime.settings.lease_seconds,
    )
    # The other process believes it leads, but the lease check in the firing transaction
    # stops it; and the tick record is unique, so a tick can never be stored twice.
    second.leader = True
    for _ in range(30):
        await second.tick()
    await eventually(lambda: _instances(runtime), timeout=10, message="ticks")

    def _dupes(conn: sa.Connection) -> list[tuple[str, int]]:
        rows = conn.execute(
            sa.select(timer_ticks.c.tick_at, sa.func.count())
            .group_by(timer_ticks.c.tick_at, timer_ticks.c.trigger_key)
            .having(sa.func.count() > 1)
        ).all()
        return [(str(r[0]), int(r[1])) for r in rows]

    assert await runtime.db.read(_dupes) == []
    ticks = await runtime.db.read(
        lambda conn: conn.execute(sa.select(sa.func.count()).select_from(timer_ticks)).scalar_one()
    )
    assert ticks == await _instances(runtime)


async def test_downtime_gives_one_catch_up_tick(runtime: Runtime) -> None:
    """A timer whose last tick was long ago fires once, not once per missed tick."""
    await runtime.rules.create(RULE)
    await eventually(lambda: _instances(runtime), timeout=10, message="a first tick")
    service = TimerService(
        db=runtime.db,
        wakeups=runtime.wakeups,
        triggers=runtime.triggers,
        owner="catch-up-check",
        max_lateness=timedelta(hours=1),
    )
    await service._load()
    (timer,) = service._timers.values()
    # Pretend the last tick was 10 minutes ago: 600 ticks were missed.
    timer.last = utcnow() - timedelta(minutes=10)
    before = await _instances(runtime)
    await service.tick()
    after = await _instances(runtime)
    assert after - before <= 2  # the catch-up tick (plus possibly the live service's tick)
    assert timer.last is not None and utcnow() - timer.last < timedelta(seconds=2)
