"""The runtime: one object wiring settings, storage and the services of this process.

``squall up`` = :meth:`Runtime.open` + every role + the HTTP API in one asyncio loop.
``squall serve --role …`` runs the same services, a subset per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from squall.auth.rbac_service import RbacService
from squall.auth.secrets import Cipher, load_or_create_key
from squall.auth.service import SYSTEM_USER, AuthService, Principal
from squall.config import Settings
from squall.engine.datastore import DatastoreService
from squall.engine.executions import ExecutionService
from squall.engine.gc import GarbageCollector, abandon_orphans
from squall.engine.metrics import Metrics
from squall.engine.packs import PackService
from squall.engine.policies import PolicyService
from squall.engine.registry import ServiceRegistry
from squall.engine.rules_admin import RuleService
from squall.engine.rules_engine import RulesEngine
from squall.engine.runner_host import RunnerHost
from squall.engine.scheduler import Scheduler
from squall.engine.sensors import SensorContainer
from squall.engine.stream import StreamService
from squall.engine.timers import TimerService
from squall.engine.triggers import TriggerService
from squall.engine.wakeup import LocalWakeups, Wakeups
from squall.engine.webhooks import WebhookService
from squall.engine.workflows import WorkflowService
from squall.errors import StoreError, ValidationError
from squall.model.ids import new_id
from squall.runners.registry import RunnerRegistry, RunnerSettings
from squall.store import identity
from squall.store.db import Database
from squall.store.migrate import upgrade
from squall.store.util import utcnow

__all__ = ["ALL_ROLES", "Runtime", "parse_roles"]

log = logging.getLogger(__name__)

ALL_ROLES = (
    "api",
    "rules",
    "scheduler",
    "runner",
    "workflow",
    "timers",
    "sensors",
    "notifier",
    "gc",
)


def parse_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Expand ``all`` and validate role names."""
    out: list[str] = []
    for role in roles:
        if role == "all":
            out.extend(ALL_ROLES)
        elif role in ALL_ROLES:
            out.append(role)
        else:
            raise ValidationError(
                f"unknown role {role!r}", hint=f"roles: all, {', '.join(ALL_ROLES)}"
            )
    return tuple(dict.fromkeys(out))


@dataclass
class Runtime:
    """Everything one Squall process runs."""

    settings: Settings
    db: Database
    wakeups: Wakeups
    cipher: Cipher
    auth: AuthService
    datastore: DatastoreService
    executions: ExecutionService
    packs: PackService
    triggers: TriggerService
    policies: PolicyService
    rules: RuleService
    webhooks: WebhookService
    runners: RunnerRegistry
    process_id: str
    roles: tuple[str, ...]
    metrics: Metrics = field(default_factory=Metrics)
    runner_host: RunnerHost | None = None
    rules_engine: RulesEngine | None = None
    timers: TimerService | None = None
    sensors: SensorContainer | None = None
    gc: GarbageCollector | None = None
    registry: ServiceRegistry | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _lock_file: IO[str] | None = None
    #: The workflow engine (its loop runs under the ``workflow`` role; the API uses it too).
    workflows: WorkflowService = field(init=False)
    #: The event stream (``/stream/v1``); it tails the database only while clients listen.
    stream: StreamService = field(init=False)

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(
        cls, settings: Settings, *, roles: tuple[str, ...] = ("all",), migrate: bool = True
    ) -> Runtime:
        """Open the database (migrating it), load keys and build the services.

        On PostgreSQL, an unreachable database is waited for (with backoff, one log line per
        attempt). ``migrate=False`` refuses a schema older than the code (an empty database
        is still created) and names the command that migrates it.
        """
        home = settings.home
        home.mkdir(parents=True, exist_ok=True)
        lock = cls._lock_home(home) if settings.is_sqlite else None
        parsed = parse_roles(roles)
        pool = settings.db_pool_size or (8 if "api" in parsed else 3)
        db = Database(
            settings.db_url, sqlite_synchronous=settings.sqlite_synchronous, pool_size=pool
        )
        wakeups: Wakeups
        try:
            if not settings.is_sqlite:
                await db.wait_reachable()
            await upgrade(db, apply=migrate, create=True)
            if settings.is_sqlite:
                wakeups = LocalWakeups()
            else:
                from squall.engine.wakeup_pg import PgWakeups

                wakeups = PgWakeups(db)
                await wakeups.start()
        except BaseException:
            await db.close()
            if lock is not None:
                lock.close()
            raise
        cipher = Cipher(load_or_create_key(home / "datastore.key"))
        auth = AuthService(
            db,
            token_ttl=settings.token_ttl,
            token_max_ttl=settings.token_max_ttl,
            rbac=RbacService(db, directory=settings.rbac_dir),
        )
        datastore = DatastoreService(db, cipher, wakeups)
        executions = ExecutionService(db, wakeups, datastore, cipher)
        executions.principal_for = auth.principal_for
        triggers = TriggerService(db, wakeups, executions)
        executions.add_terminal_hook(triggers.on_execution_terminal)
        datastore.change_hooks.append(triggers.on_kv_change)
        policies = PolicyService(db, wakeups)
        policies.insert = executions.insert_rows
        executions.add_terminal_hook(policies.on_terminal)

        async def may_skip_scheduler(action_ref: str) -> bool:
            await policies.refresh()
            return not policies.has_concurrency(action_ref)

        executions.may_skip_scheduler = may_skip_scheduler
        webhooks = WebhookService(db, triggers, cipher)

        holder: list[Runtime] = []  # the runtime, once built (its rules engine starts later)

        def on_rules_change() -> None:
            triggers.invalidate_subscriptions()
            for opened in holder:
                if opened.rules_engine is not None:
                    opened.rules_engine.invalidate()
            webhooks.invalidate()
            wakeups.signal("rules")
            wakeups.signal("timers")
            wakeups.signal("sensors")

        def on_packs_change() -> None:
            executions.content.invalidate()
            policies.invalidate()
            on_rules_change()

        runners = RunnerRegistry(
            RunnerSettings(
                python_workers=settings.python_workers,
                python_max_runs_per_worker=settings.python_worker_max_runs,
                http_allow_hosts=tuple(settings.http_allow_hosts),
                http_deny_hosts=tuple(settings.http_deny_hosts),
                ssh_user=settings.ssh_user,
                ssh_key_file=settings.ssh_key_file,
                ssh_known_hosts=settings.ssh_known_hosts,
            )
        )
        rt = cls(
            settings=settings,
            db=db,
            wakeups=wakeups,
            cipher=cipher,
            auth=auth,
            datastore=datastore,
            executions=executions,
            packs=PackService(settings, db, on_change=on_packs_change),
            triggers=triggers,
            policies=policies,
            rules=RuleService(db, datastore, cipher, on_change=on_rules_change),
            webhooks=webhooks,
            runners=runners,
            # Fits the 64-character owner columns (lease_owner, leases.owner, processes.id).
            process_id=f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id()[-8:]}",
            roles=parse_roles(roles),
        )
        rt._lock_file = lock
        rt.workflows = WorkflowService(
            settings=settings,
            db=db,
            wakeups=wakeups,
            executions=executions,
            triggers=triggers,
            cipher=cipher,
            owner=rt.process_id,
            policies=policies,
        )
        executions.add_terminal_hook(rt.workflows.on_terminal)
        rt.stream = StreamService(db, executions)
        holder.append(rt)
        rt._install_metrics()
        return rt

    def _install_metrics(self) -> None:
        m = self.metrics

        def count_terminal(_conn: Any, ex: Any) -> None:
            m.executions_finished.labels(ex.status, ex.runner_type).inc()

        self.executions.add_terminal_hook(count_terminal)
        self.executions.metrics = m
        self.db.on_batch = m.db_write_batch.observe

    @staticmethod
    def _lock_home(home: Path) -> IO[str]:
        """One process per SQLite home: the database has a single writer."""
        fh = (home / "squall.lock").open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreError(
                f"another Squall process is running with home {home}",
                hint="stop it first, or use another --home (or PostgreSQL to run several)",
            ) from None
        return fh

    # --- first start ------------------------------------------------------------------------

    async def ensure_admin(self) -> str | None:
        """Create the admin user on first start. Returns the password if one was generated."""
        name = self.settings.admin_user

        existing = await self.db.read(lambda conn: identity.get_user(conn, name))
        if existing is not None:
            return None
        password = self.settings.admin_password or secrets.token_urlsafe(12)
        await self.auth.add_user(name, password, roles=["system_admin"])
        creds = self.settings.home / "credentials"
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"user": name, "password": password, "url": self.settings.api_url}, fh)
            fh.write("\n")
        return None if self.settings.admin_password else password

    @property
    def system_principal(self) -> Principal:
        return Principal(SYSTEM_USER, ("system_admin",), "internal")

    # --- services ---------------------------------------------------------------------------

    def status_info(self) -> dict[str, Any]:
        """Work in flight and leases held, for the service registry (``squall status``)."""
        in_flight: dict[str, int] = {}
        held: list[str] = []
        if self.runner_host is not None:
            in_flight["executions"] = self.runner_host.in_flight
        if self.rules_engine is not None:
            in_flight["trigger_instances"] = self.rules_engine.in_flight
        if "workflow" in self.roles:
            in_flight["workflows_cached"] = len(getattr(self.workflows, "_cache", ()))
        if self.timers is not None and self.timers.leader:
            held.append("timers")
        if self.gc is not None and self.gc.leader and self.gc.owner is not None:
            held.append("gc")
        if self.sensors is not None:
            held.extend(self.sensors.held())
        return {"in_flight": in_flight, "leases": held, "api_url": self.settings.api_url}

    async def start_services(self) -> None:
        """Start the background services of this process's roles."""
        loop = asyncio.get_running_loop()
        if "api" in self.roles and self.settings.rbac_dir.is_dir():
            # RBAC files are the source of truth: an invalid file stops the start (with its
            # file and line) rather than serving with permissions nobody intended.
            await self.auth.rbac.load()
        if self.settings.is_sqlite and {"runner", "gc"} <= set(self.roles):
            # We hold the home lock: no other runner exists, so nothing can still be running.
            n = await abandon_orphans(
                self.db,
                reason="Squall restarted while it was running",
                on_abandon=self.executions.on_terminal,
            )
            if n:
                log.warning("marked %d executions abandoned: Squall stopped while they ran", n)
        if "rules" in self.roles:
            self.rules_engine = RulesEngine(
                db=self.db,
                wakeups=self.wakeups,
                executions=self.executions,
                triggers=self.triggers,
                datastore=self.datastore,
                cipher=self.cipher,
                owner=self.process_id,
                lease_seconds=self.settings.lease_seconds,
            )
            self.rules_engine.metrics = self.metrics
            await self.rules_engine.refresh()
            self._tasks.append(loop.create_task(self.rules_engine.run(), name="rules"))
        if "timers" in self.roles:
            self.timers = TimerService(
                db=self.db,
                wakeups=self.wakeups,
                triggers=self.triggers,
                owner=self.process_id,
                lease_seconds=self.settings.lease_seconds,
            )
            self.timers.metrics = self.metrics
            self._tasks.append(loop.create_task(self.timers.run(), name="timers"))
        if "sensors" in self.roles and self.settings.sensors:
            self.sensors = SensorContainer(
                db=self.db,
                wakeups=self.wakeups,
                triggers=self.triggers,
                datastore=self.datastore,
                executions=self.executions,
                home=self.settings.home,
                owner=self.process_id,
                lease_seconds=self.settings.lease_seconds,
                stop_grace=self.settings.sensor_stop_grace,
            )
            self._tasks.append(loop.create_task(self.sensors.run(), name="sensors"))
        if "scheduler" in self.roles:
            scheduler = Scheduler(
                self.db, self.wakeups, executions=self.executions, policies=self.policies
            )
            self._tasks.append(loop.create_task(scheduler.run(), name="scheduler"))
        if "runner" in self.roles:
            self.runner_host = RunnerHost(
                settings=self.settings,
                db=self.db,
                wakeups=self.wakeups,
                executions=self.executions,
                datastore=self.datastore,
                auth=self.auth,
                runners=self.runners,
                owner=self.process_id,
                triggers=self.triggers,
            )
            self.runner_host.metrics = self.metrics
            self.executions.adopt = self.runner_host.adopt
            self._tasks.append(loop.create_task(self.runner_host.run(), name="runner-host"))
        if "workflow" in self.roles:
            self._tasks.append(loop.create_task(self.workflows.run(), name="workflows"))
        if "gc" in self.roles:
            self._tasks.append(
                loop.create_task(self.workflows.inquiries.run_expiry(), name="inquiry-expiry")
            )
            lease = self.settings.lease_seconds
            self.gc = GarbageCollector(
                self.db,
                interval=max(0.5, min(2.0, lease / 6)),
                on_abandon=self.executions.on_terminal,
                # One process per home on SQLite: no lease needed.
                owner=None if self.settings.is_sqlite else self.process_id,
                lease_seconds=lease,
                before_reap=self.policies.refresh,  # retry policies apply to abandonments
            )
            self._tasks.append(loop.create_task(self.gc.run(), name="gc"))
        for task in self._tasks:
            task.add_done_callback(self._service_done)
        self.registry = ServiceRegistry(
            self.db,
            process_id=self.process_id,
            roles=self.roles,
            interval=max(0.5, min(5.0, self.settings.lease_seconds / 3)),
            info=self.status_info,
        )
        try:
            await self.registry.register()
        except StoreError as exc:
            log.warning("could not register in the service registry: %s", exc)
        self.registry.start()

    @staticmethod
    def _service_done(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("service %s stopped: %r", task.get_name(), exc, exc_info=exc)

    async def close(self) -> None:
        """Stop services (giving running actions a grace period) and close the database."""
        if self.rules_engine is not None:
            await self.rules_engine.stop()
        if self.runner_host is not None:
            await self.runner_host.stop()
        if self.timers is not None:
            await self.timers.stop()
        if self.sensors is not None:
            await self.sensors.stop()
        if self.gc is not None:
            await self.gc.stop()
        await self.workflows.stop()
        if self.registry is not None:
            await self.registry.stop()
            self.registry = None
        await self.stream.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.runners.close()
        await self.wakeups.close()
        await self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @staticmethod
    def now() -> Any:
        return utcnow()
