"""Two processes with the ``sensors`` role on one PostgreSQL database: each sensor runs in
exactly one of them, and the other takes a sensor over when its holder stops or dies."""

from __future__ import annotations

import asyncio

import pytest

from squall.engine.runtime import Runtime
from squall.engine.sensors import lease_name
from squall.store import leases
from squall.store.util import utcnow
from squall.testing import eventually
from tests.integration.sensors.conftest import GOOD, Runtimes

pytestmark = pytest.mark.postgres

SENSORS = {"sensorpack.CounterSensor", "sensorpack.PassiveSensor"}
LEASE = 2.0


def _running(rt: Runtime) -> set[str]:
    assert rt.sensors is not None
    return {ref for ref, sup in rt.sensors.supervisors.items() if sup.process is not None}


async def _holders(rt: Runtime) -> dict[str, str | None]:
    now = utcnow()
    return await rt.db.read(
        lambda conn: {ref: leases.holder(conn, lease_name(ref), now=now) for ref in sorted(SENSORS)}
    )


async def _each_once(first: Runtime, second: Runtime) -> bool:
    a, b = _running(first), _running(second)
    return not (a & b) and (a | b) == SENSORS


async def test_each_sensor_runs_once_and_moves_when_its_process_stops(
    pg_runtimes: Runtimes,
) -> None:
    first = await pg_runtimes.open(GOOD, roles=("sensors",), lease_seconds=LEASE)
    second = await pg_runtimes.open(GOOD, roles=("sensors",), lease_seconds=LEASE)
    await eventually(lambda: _each_once(first, second), timeout=15, message="all sensors running")
    # Several lease rounds later, still exactly once each, and the lease table agrees.
    for _ in range(3):
        await asyncio.sleep(LEASE / 3)
        assert await _each_once(first, second)
    holders = await _holders(first)
    owner = {rt.process_id: rt for rt in (first, second)}
    for ref, holder in holders.items():
        assert holder is not None and ref in _running(owner[holder])

    # The process holding the counter stops: the other runs it within the lease time.
    holder_rt = owner[holders["sensorpack.CounterSensor"]]
    other = second if holder_rt is first else first
    await pg_runtimes.close(holder_rt)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await eventually(lambda: _running(other) == SENSORS, timeout=LEASE + 2, message="take-over")
    assert loop.time() - began < LEASE


async def test_a_dead_holder_is_taken_over_when_its_lease_lapses(pg_runtimes: Runtimes) -> None:
    first = await pg_runtimes.open(GOOD, roles=("sensors",), lease_seconds=LEASE)
    await eventually(lambda: _running(first) == SENSORS, timeout=15, message="sensors running")
    second = await pg_runtimes.open(GOOD, roles=("sensors",), lease_seconds=LEASE)
    await asyncio.sleep(LEASE / 2)
    assert _running(second) == set()  # held by the first process

    # The first process "dies": its sensors loop stops renewing and its sensors are gone,
    # but it releases nothing.
    assert first.sensors is not None
    (loop_task,) = [t for t in first._tasks if t.get_name() == "sensors"]
    loop_task.cancel()
    for sup in list(first.sensors.supervisors.values()):
        await sup.stop(grace=None)
    first.sensors.supervisors.clear()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await eventually(lambda: _running(second) == SENSORS, timeout=LEASE * 3, message="take-over")
    waited = loop.time() - began
    assert waited <= LEASE + 0.5, f"took {waited:.2f}s with a {LEASE}s lease"
    holders = await _holders(second)
    assert set(holders.values()) == {second.process_id}
