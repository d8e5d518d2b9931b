"""Pack sensors run in their own processes under the ``sensors`` role, on both backends:
dispatch through rules to executions, the datastore, trigger callbacks, restarts with
backoff, invalid payloads and modules that do not import."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from squall.engine.runtime import Runtime
from squall.engine.sensors import lease_name
from squall.errors import DomainError, StoreError
from squall.store import events, schema
from squall.store import executions as exrepo
from squall.store.util import utcnow
from squall.testing import eventually
from tests.integration.sensors.conftest import FAULTY, GOOD, Runtimes

COUNTER = "sensorpack.CounterSensor"
PASSIVE = "sensorpack.PassiveSensor"


async def _kv(rt: Runtime, name: str) -> str | None:
    try:
        view = await rt.datastore.get(rt.system_principal, name, scope="system")
    except DomainError as exc:
        if exc.http_status == 404:
            return None
        raise
    return view.value


async def _instances(rt: Runtime, trigger_type: str) -> list[events.TriggerInstance]:
    return await rt.db.read(
        lambda conn: events.list_instances(conn, trigger_type=trigger_type, limit=1000)
    )


async def _polls(rt: Runtime) -> int:
    return int(await _kv(rt, f"{COUNTER}:polls") or 0)


async def test_polling_and_passive_sensors_feed_rules(runtimes: Runtimes) -> None:
    rt = await runtimes.open(GOOD)
    assert rt.sensors is not None

    # The polling sensor counts its polls in its local datastore namespace ...
    await eventually(lambda: _polls(rt), timeout=15, message="a first poll")
    first = await _polls(rt)
    await eventually(
        lambda: _more_polls(rt, first + 3),
        timeout=10,
        message="three more polls",
    )
    # ... and dispatches a tick per poll, with the pack config, validated and stored.
    ticks = await _instances(rt, "sensorpack.tick")
    assert len(ticks) >= 3
    payload = ticks[0].payload
    assert payload["greeting"] == "hello from config"
    assert isinstance(payload["count"], int)
    assert ticks[0].trace_tag == f"tick-{payload['count']}"

    # A rule on the tick runs core.noop: executions appear and succeed.
    async def noops() -> list[exrepo.Execution]:
        flt = exrepo.ExecutionFilter(action="core.noop", status=("succeeded",))
        done = await rt.db.read(lambda conn: exrepo.list_executions(conn, flt, limit=100))
        return done if len(done) >= 3 else []

    await eventually(noops, timeout=15, message="core.noop executions from ticks")

    # The passive sensor dispatched once at setup.
    hellos = await _instances(rt, "sensorpack.hello")
    assert [h.payload for h in hellos] == [{"greeting": "hi"}]

    # The leases show in the status the service registry publishes.
    assert {f"sensor:{COUNTER}", f"sensor:{PASSIVE}"} <= set(rt.status_info()["leases"])


async def _more_polls(rt: Runtime, at_least: int) -> bool:
    return await _polls(rt) >= at_least


async def _rooms(rt: Runtime) -> list[str] | None:
    raw = await _kv(rt, f"{PASSIVE}:rooms")
    return None if raw is None else json.loads(raw)


async def test_sensor_hears_of_triggers_and_cleans_up(runtimes: Runtimes) -> None:
    rt = await runtimes.open(GOOD)
    # At start: add_trigger for the trigger of the pack's rule (room ops).
    await eventually(
        lambda: _has_rooms(rt, ["ops"]), timeout=15, message="add_trigger for the existing rule"
    )
    rule = {
        "name": "hello_dev",
        "pack": "sensorpack",
        "enabled": True,
        "trigger": {"type": "sensorpack.hello", "parameters": {"room": "dev"}},
        "action": {"ref": "core.noop"},
    }
    created = await rt.rules.create(rule)
    await eventually(lambda: _has_rooms(rt, ["dev", "ops"]), timeout=10, message="add_trigger")
    await rt.rules.delete(created["ref"])
    await eventually(lambda: _has_rooms(rt, ["ops"]), timeout=10, message="remove_trigger")

    # Stopping the runtime calls cleanup() in the sensor before its process ends.
    assert rt.sensors is not None
    await rt.sensors.stop()
    assert await _kv(rt, f"{PASSIVE}:cleaned_up") == "yes"
    assert rt.sensors.supervisors == {}


async def _has_rooms(rt: Runtime, rooms: list[str]) -> bool:
    return await _rooms(rt) == rooms


async def test_faulty_sensors_are_contained(
    runtimes: Runtimes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rt = await runtimes.open(FAULTY)

    # An invalid payload is dropped with a log line naming the sensor; the valid one is kept.
    async def strict() -> list[events.TriggerInstance]:
        return await _instances(rt, "faultypack.strict")

    stored = await eventually(strict, timeout=15, message="the valid strict payload")
    assert [i.payload for i in stored] == [{"n": 7}]
    assert await _kv(rt, "faultypack.StrictSensor:dropped") == "None"
    assert any(
        "sensor faultypack.StrictSensor: dropped a trigger instance of faultypack.strict" in m
        and "'not a number' is not of type 'integer'" in m
        for m in caplog.messages
    ), caplog.messages

    # A module that does not import: a clear error naming the file.
    broken = str(FAULTY / "faultypack" / "sensors" / "broken.py")
    await eventually(
        lambda: any(
            f"cannot import sensor module {broken}" in m
            and "No module named 'squall_no_such_module'" in m
            for m in caplog.messages
        ),
        timeout=15,
        message="the import error in the log",
    )

    # A crashing sensor is restarted with backoff (1 s, 2 s, …), not in a tight loop.
    async def starts() -> int:
        return int(await _kv(rt, "faultypack.CrashingSensor:starts") or 0)

    await eventually(lambda: _at_least(starts, 3), timeout=20, message="two restarts")
    restarts = [
        m
        for m in caplog.messages
        if m.startswith("sensor faultypack.CrashingSensor: exited with status 1; restarting in")
    ]
    assert restarts[:2] == [
        "sensor faultypack.CrashingSensor: exited with status 1; restarting in 1s",
        "sensor faultypack.CrashingSensor: exited with status 1; restarting in 2s",
    ]
    assert await starts() <= 4
    assert any(
        "sensor faultypack.CrashingSensor: RuntimeError: the crashing sensor crashed on purpose"
        in m
        for m in caplog.messages
    )

    # The server keeps working meanwhile.
    ex = await rt.executions.request(rt.system_principal, "core.noop", {})
    await eventually(
        lambda: _status(rt, ex.id, "succeeded"), timeout=10, message="a noop to succeed"
    )


async def _at_least(value: object, n: int) -> bool:
    return await value() >= n  # type: ignore[operator]


async def _status(rt: Runtime, execution_id: str, status: str) -> bool:
    ex = await rt.db.read(lambda conn: exrepo.get(conn, execution_id))
    return ex is not None and ex.status == status


async def test_a_killed_sensor_process_is_restarted(runtimes: Runtimes) -> None:
    rt = await runtimes.open(GOOD)
    assert rt.sensors is not None
    await eventually(lambda: _polls(rt), timeout=15, message="a first poll")
    sup = rt.sensors.supervisors[COUNTER]
    assert sup.process is not None
    pid = sup.process.pid
    os.kill(pid, signal.SIGKILL)
    await eventually(
        lambda: sup.process is not None and sup.process.pid != pid and sup.restarts == 1,
        timeout=10,
        message="a new sensor process",
    )
    before = await _polls(rt)
    await eventually(lambda: _more_polls(rt, before + 2), timeout=10, message="polls again")


async def test_sensors_can_be_switched_off(runtimes: Runtimes) -> None:
    rt = await runtimes.open(GOOD, sensors=False)
    assert rt.sensors is None
    assert not [lease for lease in rt.status_info()["leases"] if lease.startswith("sensor:")]


async def test_a_lost_lease_stops_the_sensor_at_once(runtimes: Runtimes) -> None:
    rt = await runtimes.open(GOOD, sensor_stop_grace=30.0)
    assert rt.sensors is not None
    await eventually(lambda: _polls(rt), timeout=15, message="a first poll")
    sup = rt.sensors.supervisors[COUNTER]
    assert sup.process is not None
    process = sup.process

    # Another process took the lease over (say this one stalled past its expiry).
    def _steal(conn: sa.Connection) -> None:
        conn.execute(
            schema.leases.update()
            .where(schema.leases.c.name == lease_name(COUNTER))
            .values(owner="another-process", expires_at=utcnow() + timedelta(minutes=5))
        )

    await rt.db.write(_steal)
    rt.wakeups.signal("sensors")
    # Killed without waiting for cleanup() (the grace is 30 s); the other sensor runs on.
    await eventually(lambda: process.exit_code is not None, timeout=5, message="a kill")
    assert process.exit_code == -signal.SIGKILL
    assert COUNTER not in rt.sensors.supervisors
    assert PASSIVE in rt.sensors.supervisors
    assert f"sensor:{COUNTER}" not in rt.status_info()["leases"]


@pytest.mark.parametrize("fault", ["fails", "hangs"])
async def test_a_process_cut_off_from_the_database_stops_its_sensors_before_its_leases_lapse(
    runtimes: Runtimes, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    lease = 2.0
    rt = await runtimes.open(GOOD, roles=("sensors",), lease_seconds=lease)
    container = rt.sensors
    assert container is not None
    await eventually(
        lambda: {COUNTER, PASSIVE} <= _running(rt), timeout=15, message="sensors running"
    )
    supervisors = list(container.supervisors.values())
    processes = [sup.process for sup in supervisors]

    # The database becomes unreachable (every call fails) or hangs (no call returns): from
    # now on nothing renews the leases, and another process may take them once they lapse.
    async def unreachable(*_args: object, **_kwargs: object) -> object:
        if fault == "hangs":
            await asyncio.Event().wait()
        raise StoreError("cannot connect to the database")

    monkeypatch.setattr(rt.db, "read", unreachable)
    monkeypatch.setattr(rt.db, "write", unreachable)
    loop = asyncio.get_running_loop()
    # (A sensor may also crash on its failing datastore calls and be restarted meanwhile.)
    await eventually(
        lambda: (
            not container.supervisors
            and all(sup.task is not None and sup.task.done() for sup in supervisors)
            and all(p is not None and p.exit_code is not None for p in processes)
        ),
        timeout=lease * 2,
        message="the sensors killed",
    )
    stopped = loop.time()
    renewed = container._renewed_at
    assert renewed is not None
    assert stopped < renewed + lease, f"killed {stopped - renewed:.2f}s after the last renewal"

    # Once the database answers again, the process takes its sensors back.
    monkeypatch.undo()
    await eventually(
        lambda: {COUNTER, PASSIVE} <= _running(rt), timeout=10, message="sensors running again"
    )


def _running(rt: Runtime) -> set[str]:
    assert rt.sensors is not None
    return {ref for ref, sup in rt.sensors.supervisors.items() if sup.process is not None}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


async def test_what_a_crashed_sensor_started_ends_with_it(runtimes: Runtimes) -> None:
    rt = await runtimes.open(FAULTY)

    async def children() -> list[int]:
        return json.loads(await _kv(rt, "faultypack.SpawningSensor:children") or "[]")

    try:
        await eventually(
            lambda: _at_least(lambda: _count(children), 2), timeout=15, message="a restart"
        )
        first = (await children())[0]
        # The child of the first run went with its sensor, not left behind for each restart.
        await eventually(lambda: not _alive(first), timeout=5, message="the first child gone")
    finally:
        for pid in await children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def _count(items: object) -> int:
    return len(await items())  # type: ignore[operator]


async def test_local_keys_are_under_the_class_name_not_the_sensor_name(
    runtimes: Runtimes,
) -> None:
    rt = await runtimes.open(FAULTY)
    assert rt.sensors is not None
    # The sensor's ref is faultypack.renamed (its name); StackStorm's prefix is the class.
    await eventually(
        lambda: _kv(rt, "faultypack.NamedSensor:where"), timeout=15, message="the local key"
    )
    assert await _kv(rt, "faultypack.NamedSensor:where") == "under the class name"
    assert "faultypack.renamed" in rt.sensors.supervisors
    assert await _kv(rt, "faultypack.renamed:where") is None


async def test_a_changed_sensor_restarts_and_the_others_run_on(
    runtimes: Runtimes, tmp_path: Path
) -> None:
    """Re-registering a changed sensor restarts it once its old process is gone (stopped in the
    background, so the lease rounds go on); an unchanged sensor keeps its process."""
    import shutil

    packs = tmp_path / "packs"
    shutil.copytree(GOOD, packs)
    rt = await runtimes.open(packs)
    assert rt.sensors is not None
    await eventually(lambda: _polls(rt), timeout=15, message="a first poll")
    counter = rt.sensors.supervisors[COUNTER].process
    passive = rt.sensors.supervisors[PASSIVE].process
    assert counter is not None and passive is not None

    meta = packs / "sensorpack" / "sensors" / "counter.yaml"
    meta.write_text(meta.read_text().replace("poll_interval: 0.2", "poll_interval: 0.25"))
    results = await rt.packs.register_all()
    assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
    rt.wakeups.signal("sensors")

    def _restarted() -> bool:
        sup = rt.sensors.supervisors.get(COUNTER) if rt.sensors else None
        return sup is not None and sup.process is not None and sup.process is not counter

    await eventually(_restarted, timeout=15, message="the changed sensor restarted")
    assert counter.exit_code is not None
    assert rt.sensors.supervisors[COUNTER].sensor.poll_interval == 0.25
    assert rt.sensors.supervisors[PASSIVE].process is passive  # untouched
    before = await _polls(rt)
    await eventually(lambda: _more_polls(rt, before + 2), timeout=10, message="polls again")
