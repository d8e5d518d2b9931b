"""The sensors service: every enabled pack sensor runs exactly once across the cluster.

Each sensor is a singleton held by its own lease, ``sensor:<ref>``, so the processes with
the ``sensors`` role share the sensors between them and a sensor whose holder dies is taken
over by another process when its lease lapses. Every ``lease/3`` seconds this service renews
the leases it holds and takes free ones, in one transaction. A watchdog, apart from that
loop, kills every sensor once ``0.8 × lease`` has passed since the last successful renewal —
before the lease can lapse and another process take the sensors over — whatever kept the
renewal from happening (an unreachable or hung database); each round's database work is
bounded by half the lease, so a hung connection cannot stall the service.

A held sensor runs in its own subprocess (:class:`~squall.runners.sensor_host.SensorProcess`)
with the pack's virtualenv interpreter, so a crash takes down nothing else. A sensor that
exits or crashes is restarted after 1 s, 2 s, 4 s … up to 60 s (back to 1 s after it has run
for a minute). A lost lease stops the sensor at once (its new holder runs it); a sensor
removed, disabled or changed by registration (its metadata or its module file) is stopped
gracefully (``cleanup()``), and restarted if it changed.

The sensor's ``dispatch`` goes through :meth:`TriggerService.dispatch`, the path webhooks
use: the trigger instance is committed before the call returns, and a payload that does not
match the trigger type's ``payload_schema`` is logged with the sensor's name and dropped.
Datastore calls act as the system user, with ``local`` keys under ``<pack>.<ClassName>:``.

Triggers (a rule's trigger type plus parameters) of a sensor's trigger types are handed to the
sensor: ``add_trigger`` for each at start, then ``add_trigger`` / ``update_trigger`` /
``remove_trigger`` as rules that use them come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from squall.auth.service import SYSTEM_USER, Principal
from squall.engine.datastore import DatastoreService
from squall.engine.executions import ExecutionService
from squall.engine.runner_host import ActionDatastore
from squall.engine.triggers import TriggerService
from squall.engine.virtualenvs import virtualenv_python
from squall.engine.wakeup import Wakeups
from squall.errors import DomainError, SquallError
from squall.runners.sensor_host import SensorProcess, SensorSpec
from squall.store import content, events, leases
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["SensorContainer", "SensorDispatcher", "lease_name"]

log = logging.getLogger(__name__)

#: Restart delays: the first, the cap, and how long a run must last to start over at the first.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
_STABLE_RUN = 60.0
#: Fraction of the lease after the last successful renewal at which every sensor is killed:
#: the margin covers the kill itself and clock drift between processes.
_LEASE_SAFETY = 0.8
#: Fraction of the lease a round's database work may take before it is abandoned.
_DB_TIMEOUT = 0.5
#: Seconds the final release of the leases may take on shutdown.
_RELEASE_TIMEOUT = 5.0


def lease_name(ref: str) -> str:
    """The lease that makes sensor ``ref`` a cluster-wide singleton."""
    return f"sensor:{ref}"


@dataclass(frozen=True)
class _SensorDef:
    """A registered, enabled sensor (what a change of it means a restart for)."""

    ref: str
    pack: str
    class_name: str
    entry_point: str
    pack_path: str
    poll_interval: float | None
    trigger_types: tuple[str, ...]
    #: Size and modification time of the module: registering an edited module restarts it.
    fingerprint: tuple[int, int] = (0, 0)


class SensorDispatcher(ActionDatastore):
    """``self.sensor_service`` on the host: dispatch and the datastore as the system user."""

    def __init__(
        self,
        datastore: DatastoreService,
        principal: Principal,
        *,
        ref: str,
        pack: str,
        class_name: str,
        triggers: TriggerService,
    ) -> None:
        # StackStorm keeps a sensor's local keys under "<pack>.<ClassName>:", whatever its
        # name (and so its ref) is.
        super().__init__(datastore, principal, f"{pack}.{class_name}")
        self.ref = ref
        self._triggers = triggers

    async def dispatch(
        self, trigger: str, payload: Any = None, trace_tag: str | None = None
    ) -> Any:
        """Store a trigger instance; an invalid payload or unknown trigger is logged, dropped
        (the sensor gets None)."""
        trigger_type, parameters = await self._triggers.resolve(trigger)
        try:
            instance = await self._triggers.dispatch(
                trigger_type,
                payload if payload is not None else {},
                parameters=parameters,
                trace_tag=trace_tag,
            )
        except DomainError as exc:
            log.warning(
                "sensor %s: dropped a trigger instance of %s: %s", self.ref, trigger, exc.message
            )
            return None
        return {"id": instance.id, "trigger": instance.trigger}


@dataclass
class _Supervisor:
    """Runs one held sensor, restarting it with backoff, and forwards trigger changes."""

    sensor: _SensorDef
    container: SensorContainer
    triggers: dict[str, dict[str, Any]]
    process: SensorProcess | None = None
    restarts: int = 0
    task: asyncio.Task[None] | None = None
    _sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The start and the container may both forward trigger changes: one at a time.
    _sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"sensor:{self.sensor.ref}"
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_FIRST
        ref = self.sensor.ref
        while True:
            began = loop.time()
            code: int | None = None
            try:
                spec = await self.container.spec(self.sensor, list(self.triggers.values()))
                self._sent = {str(t["ref"]): dict(t) for t in spec.triggers}
                self.process = await SensorProcess.start(
                    spec,
                    interpreter=self.container.interpreter(self.sensor.pack),
                    backend=self.container.dispatcher(self.sensor),
                )
                log.info("sensor %s: started (pid %d)", ref, self.process.pid)
                await self._sync_triggers()  # changes made while it was starting
                code = await self.process.wait()
            except asyncio.CancelledError:
                raise
            except (SquallError, OSError) as exc:
                log.error("sensor %s: cannot start: %s", ref, exc)
            except Exception:
                log.exception("sensor %s: supervision failed", ref)
            self.process = None
            if loop.time() - began >= _STABLE_RUN:
                delay = BACKOFF_FIRST
            self.restarts += 1
            log.warning("sensor %s: exited with status %s; restarting in %.0fs", ref, code, delay)
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    async def set_triggers(self, triggers: dict[str, dict[str, Any]]) -> None:
        self.triggers = triggers
        await self._sync_triggers()

    async def _sync_triggers(self) -> None:
        async with self._sync_lock:
            await self._sync_triggers_locked()

    async def _sync_triggers_locked(self) -> None:
        process = self.process
        if process is None:
            return  # the next start hands over the current triggers
        for ref, trigger in self.triggers.items():
            old = self._sent.get(ref)
            if old is None:
                await process.notify("add_trigger", trigger)
            elif old != trigger:
                await process.notify("update_trigger", trigger)
        for ref, trigger in self._sent.items():
            if ref not in self.triggers:
                await process.notify("remove_trigger", trigger)
        self._sent = dict(self.triggers)

    async def stop(self, *, grace: float | None) -> None:
        """Stop supervising; ``grace=None`` kills the sensor at once (lease lost)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        process, self.process = self.process, None
        if process is None:
            return
        if grace is None:
            await process.kill()
        else:
            await process.stop(grace)
        log.info("sensor %s: stopped", self.sensor.ref)


class SensorContainer:
    """Service loop of the ``sensors`` role.

    Args:
        lease_seconds: a sensor whose holder has not renewed its lease within this time is
            taken over by another process.
        stop_grace: seconds a stopping sensor gets for ``cleanup()`` before it is killed.
    """

    def __init__(
        self,
        *,
        db: Database,
        wakeups: Wakeups,
        triggers: TriggerService,
        datastore: DatastoreService,
        executions: ExecutionService,
        home: Path,
        owner: str,
        lease_seconds: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.triggers = triggers
        self.datastore = datastore
        self.executions = executions
        self.home = home
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.stop_grace = stop_grace
        self.interval = max(0.1, min(10.0, lease_seconds / 3))
        self.principal = Principal(SYSTEM_USER, ("system_admin",), "internal")
        self.supervisors: dict[str, _Supervisor] = {}
        self._defs: dict[str, _SensorDef] = {}
        self._packs_version = -1
        self._rules_version = -1
        self._triggers: dict[str, dict[str, dict[str, Any]]] = {}  # type -> ref -> trigger
        self._renewed_at: float | None = None
        self._closing = False
        #: Sensors being stopped in the background (cleanup grace), by ref: a changed sensor
        #: starts again only once its old process is gone.
        self._draining: dict[str, asyncio.Task[None]] = {}

    # --- what the supervisors use -----------------------------------------------------------

    def interpreter(self, pack: str) -> str:
        venv = virtualenv_python(self.home, pack)
        return str(venv) if venv else sys.executable

    def dispatcher(self, sensor: _SensorDef) -> SensorDispatcher:
        return SensorDispatcher(
            self.datastore,
            self.principal,
            ref=sensor.ref,
            pack=sensor.pack,
            class_name=sensor.class_name,
            triggers=self.triggers,
        )

    async def spec(self, sensor: _SensorDef, triggers: list[dict[str, Any]]) -> SensorSpec:
        """What the sensor process gets: read at every (re)start, so config changes apply."""
        config, _secret_paths = await self.executions.content.pack_config(sensor.pack)
        config = await self.executions.render_config(config, user=SYSTEM_USER)
        return SensorSpec(
            ref=sensor.ref,
            pack=sensor.pack,
            class_name=sensor.class_name,
            entry_point=sensor.entry_point,
            pack_path=sensor.pack_path,
            poll_interval=sensor.poll_interval,
            config=config,
            triggers=triggers,
        )

    # --- status -----------------------------------------------------------------------------

    def held(self) -> list[str]:
        """The sensor leases this process holds (for ``squall status``)."""
        return [lease_name(ref) for ref in sorted(self.supervisors)]

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        watchdog = asyncio.get_running_loop().create_task(self._watchdog(), name="sensors-watchdog")
        try:
            while True:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except TimeoutError:
                    log.error(
                        "sensors: the database did not answer within %.1fs; retrying",
                        self._db_timeout,
                    )
                except Exception:
                    log.exception("sensors: a round failed; retrying")
                await self.wakeups.wait("sensors", self.interval)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    @property
    def _db_timeout(self) -> float:
        return self.lease.total_seconds() * _DB_TIMEOUT

    async def tick(self) -> None:
        """One round: reload definitions, renew and take leases, start/stop, triggers.

        Raises:
            TimeoutError: the database work took longer than half the lease.
        """
        held = await asyncio.wait_for(self._renew(), timeout=self._db_timeout)
        await self._apply(held)
        await self._sync_triggers()

    async def _watchdog(self) -> None:
        """Kill every sensor once the last successful renewal is ``0.8 × lease`` old.

        Independent of the rounds, so it fires whatever keeps them from renewing: an error
        before the renewal is attempted, a hung connection, a round that never returns.
        """
        loop = asyncio.get_running_loop()
        safe = self.lease.total_seconds() * _LEASE_SAFETY
        while True:
            renewed = self._renewed_at
            if renewed is None or not self.supervisors:
                await asyncio.sleep(self.interval)
                continue
            left = renewed + safe - loop.time()
            if left > 0:
                await asyncio.sleep(left)
                continue  # renewed meanwhile, or not: look again
            # From now on another process may take the leases over and run these sensors.
            log.error(
                "sensors: leases not renewed for %.1fs (lease %.1fs); stopping every sensor",
                loop.time() - renewed,
                self.lease.total_seconds(),
            )
            try:
                await self._stop_all(grace=None)
            except Exception:
                log.exception("sensors: stopping the sensors failed")
                await asyncio.sleep(self.interval)

    async def _load(self) -> None:
        def _read(conn: Connection) -> tuple[int, int, list[dict[str, Any]], dict[str, str]]:
            packs_version = events.read_version(conn, "packs")
            rules_version = events.read_version(conn, "rules")
            if packs_version == self._packs_version:
                return packs_version, rules_version, [], {}
            docs = content.list_content(conn, "sensors")
            paths = {p.ref: p.path for p in content.list_packs(conn)}
            return packs_version, rules_version, docs, paths

        packs_version, rules_version, docs, paths = await self.db.read(_read)
        if packs_version != self._packs_version:
            self._defs = _definitions(docs, paths)
            self._packs_version = packs_version
            self._rules_version = -1  # trigger types may have changed
        if rules_version != self._rules_version:
            types = sorted({t for d in self._defs.values() for t in d.trigger_types})
            self._triggers = await self.db.read(lambda conn: _triggers_in_use(conn, types))
            self._rules_version = rules_version

    async def _renew(self) -> dict[str, bool]:
        """The round's database work: reload, then renew and take leases (which are held)."""
        await self._load()
        return await self._hold_leases()

    async def _hold_leases(self) -> dict[str, bool]:
        if self._closing:  # stop() released the leases: do not take them back
            return {}
        loop = asyncio.get_running_loop()
        wanted = sorted(self._defs)
        gone = [ref for ref in self.supervisors if ref not in self._defs]
        # Taken first, so the leases this grants last at least until ``attempt + lease``.
        attempt = loop.time()
        now = utcnow()
        until = now + self.lease

        def _write(conn: Connection) -> dict[str, bool]:
            for ref in gone:
                leases.release(conn, lease_name(ref), owner=self.owner)
            return {
                ref: leases.acquire(conn, lease_name(ref), owner=self.owner, now=now, until=until)
                for ref in wanted
            }

        held = await self.db.write(_write)
        self._renewed_at = attempt
        return held

    async def _apply(self, held: dict[str, bool]) -> None:
        """Stop the sensors lost, removed or changed; start those newly held."""
        gone = [ref for ref in self.supervisors if ref not in self._defs]
        lost = [ref for ref, ok in held.items() if not ok and ref in self.supervisors]
        for ref in lost:
            log.warning("sensor %s: lease lost to another process; stopping it", ref)
        changed = [
            ref
            for ref, ok in held.items()
            if ok and ref in self.supervisors and self.supervisors[ref].sensor != self._defs[ref]
        ]
        for ref in changed:
            log.info("sensor %s: changed by registration; restarting it", ref)
        # In the background: sensors cleaning up (up to their grace) must not hold back the
        # next renewal, or the watchdog would stop every other sensor of this process.
        for ref in lost:
            self._drain(ref, grace=None)
        for ref in [*gone, *changed]:
            self._drain(ref, grace=self.stop_grace)
        for ref, ok in held.items():
            if ok and ref not in self.supervisors and ref not in self._draining:
                self._start(self._defs[ref])

    def _drain(self, ref: str, *, grace: float | None) -> None:
        """Stop ``ref``'s sensor in the background; the next round may start it again."""
        sup = self.supervisors.pop(ref, None)
        if sup is None:
            return
        task = asyncio.get_running_loop().create_task(
            sup.stop(grace=grace), name=f"sensor-stop:{ref}"
        )
        self._draining[ref] = task

        def _done(_task: asyncio.Task[None]) -> None:
            if self._draining.get(ref) is _task:
                del self._draining[ref]
            self.wakeups.signal("sensors", local=True)  # start its replacement now

        task.add_done_callback(_done)

    def _start(self, sensor: _SensorDef) -> None:
        if self._closing:  # a round that was under way when stop() began
            return
        sup = _Supervisor(sensor, self, self._triggers_of(sensor))
        self.supervisors[sensor.ref] = sup
        sup.start()

    async def _stop(self, ref: str, *, grace: float | None) -> None:
        sup = self.supervisors.pop(ref, None)
        if sup is not None:
            await sup.stop(grace=grace)

    async def _stop_all(self, *, grace: float | None) -> None:
        refs = list(self.supervisors)
        await asyncio.gather(
            *(self._stop(ref, grace=grace) for ref in refs),
            *list(self._draining.values()),
            return_exceptions=True,
        )

    def _triggers_of(self, sensor: _SensorDef) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for ttype in sensor.trigger_types:
            out.update(self._triggers.get(ttype, {}))
        return out

    async def _sync_triggers(self) -> None:
        for sup in list(self.supervisors.values()):
            await sup.set_triggers(self._triggers_of(sup.sensor))

    async def stop(self) -> None:
        """Stop every sensor (``cleanup()``, then a kill after the grace) and free the leases."""
        self._closing = True
        refs = sorted({*self.supervisors, *self._draining})
        await self._stop_all(grace=self.stop_grace)
        if refs:
            with contextlib.suppress(Exception):

                def _release(conn: Connection) -> None:
                    for ref in refs:
                        leases.release(conn, lease_name(ref), owner=self.owner)

                await asyncio.wait_for(self.db.write(_release), timeout=_RELEASE_TIMEOUT)


def _definitions(docs: list[dict[str, Any]], paths: Mapping[str, str]) -> dict[str, _SensorDef]:
    """The enabled sensors that have a module to run."""
    defs: dict[str, _SensorDef] = {}
    for doc in docs:
        pack = str(doc.get("pack") or "")
        entry = doc.get("entry_point")
        if not doc.get("enabled", True) or not entry or pack not in paths:
            continue
        types = []
        for item in doc.get("trigger_types") or []:
            if isinstance(item, Mapping) and item.get("name"):
                types.append(f"{pack}.{item['name']}")
            elif isinstance(item, str):
                types.append(item)
        interval = doc.get("poll_interval")
        ref = str(doc["ref"])
        path = Path(paths[pack]) / "sensors" / str(entry)
        try:
            stat = path.stat()
            fingerprint = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            fingerprint = (0, 0)  # the sensor process reports the missing file
        defs[ref] = _SensorDef(
            ref=ref,
            pack=pack,
            class_name=str(doc["class_name"]),
            entry_point=str(path),
            pack_path=paths[pack],
            poll_interval=float(interval) if isinstance(interval, (int, float)) else None,
            trigger_types=tuple(types),
            fingerprint=fingerprint,
        )
    return defs


def _triggers_in_use(conn: Connection, types: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Triggers of ``types`` that at least one rule uses, by type and ref (as StackStorm's
    sensors see them: ``{id, ref, uid, name, pack, type, parameters}``)."""
    if not types:
        return {}
    wanted = set(types)
    used = {
        str((doc.get("trigger") or {}).get("ref") or "")
        for doc in content.list_content(conn, "rules")
        if (doc.get("trigger") or {}).get("type") in wanted
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for ttype in types:
        for trigger in events.list_triggers(conn, type=ttype):
            if trigger.get("ref") in used:
                out.setdefault(ttype, {})[str(trigger["ref"])] = trigger
    return out
