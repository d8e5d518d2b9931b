"""The runner host: claims scheduled executions under a lease and runs them.

* Claims up to its free capacity in one transaction (``scheduled`` → ``running``).
* Renews the leases of everything in flight every ``lease/3`` seconds; if this process dies,
  its leases expire and garbage collection marks the executions ``abandoned``.
* Watches for ``canceling`` executions it holds and cancels their runs (runners kill the
  process group).
* Writes the result, the last output pieces and the terminal status in one transaction, and
  only while it still holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from squall.auth.service import AuthService, Principal
from squall.config import Settings
from squall.engine.datastore import DatastoreService
from squall.engine.executions import ActionBundle, ExecutionService
from squall.engine.output import BufferSink, OutputBuffer
from squall.engine.virtualenvs import virtualenv_python
from squall.engine.wakeup import Wakeups
from squall.errors import DomainError, SquallError, StoreError
from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, RunResult
from squall.runners.registry import RunnerRegistry
from squall.store import executions as exrepo
from squall.store.db import Database, after_commit
from squall.store.util import utcnow

__all__ = ["ActionDatastore", "RunnerHost"]

log = logging.getLogger(__name__)

_S = ExecutionStatus

#: Runners whose actions run as processes and get ``ST2_ACTION_AUTH_TOKEN``.
_PROCESS_RUNNERS = frozenset({"local-shell-cmd", "local-shell-script", "python-script"})


class ActionDatastore:
    """The datastore as a Python action's ``action_service`` sees it.

    ``local=True`` (the default, as in StackStorm) prefixes the key with ``<pack>:`` so
    actions of different packs do not collide.
    """

    def __init__(
        self,
        datastore: DatastoreService,
        principal: Principal,
        pack: str,
        dispatcher: Any = None,
    ) -> None:
        self._ds = datastore
        self._principal = principal
        self._pack = pack
        self._dispatcher = dispatcher

    async def dispatch(
        self, trigger: str, payload: Any = None, trace_tag: str | None = None
    ) -> dict[str, Any]:
        """Record a trigger instance (``core.inject_trigger``); returns its id and trigger."""
        if self._dispatcher is None:
            raise RuntimeError("trigger dispatch is not available in this process")
        instance = await self._dispatcher.dispatch(trigger, payload or {}, trace_tag=trace_tag)
        return {"id": instance.id, "trigger": instance.trigger}

    def _name(self, name: str, local: bool) -> str:
        return f"{self._pack}:{name}" if local else name

    async def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        try:
            view = await self._ds.get(
                self._principal, self._name(name, local), scope=scope, decrypt=decrypt
            )
        except DomainError as exc:
            if exc.http_status == 404:
                return None
            raise
        return view.value

    async def set_value(
        self,
        name: str,
        value: str,
        *,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        await self._ds.set(
            self._principal,
            self._name(name, local),
            value,
            scope=scope,
            secret=encrypt,
            ttl=ttl,
        )
        return True

    async def delete_value(self, name: str, *, local: bool = True, scope: str = "system") -> bool:
        try:
            await self._ds.delete(self._principal, self._name(name, local), scope=scope)
        except DomainError as exc:
            if exc.http_status == 404:
                return False
            raise
        return True

    async def list_values(
        self, *, local: bool = True, prefix: str | None = None, scope: str = "system"
    ) -> list[dict[str, Any]]:
        full_prefix = self._name(prefix or "", local) if (local or prefix) else None
        views = await self._ds.list(self._principal, scope=scope, prefix=full_prefix)
        return [v.as_api() for v in views]


@dataclass
class _InFlight:
    task: asyncio.Task[None]
    cancel_requested: bool = False


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Row:
    """Lets :meth:`Execution.from_row` read a plain dict."""

    def __init__(self, row: dict[str, Any]) -> None:
        self._mapping = row


class RunnerHost:
    """Service loop of the ``runner`` role."""

    POLL_SECONDS = 1.0

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        wakeups: Wakeups,
        executions: ExecutionService,
        datastore: DatastoreService,
        auth: AuthService,
        runners: RunnerRegistry,
        owner: str,
        triggers: Any = None,
    ) -> None:
        self.settings = settings
        self.triggers = triggers
        self.db = db
        self.wakeups = wakeups
        self.executions = executions
        self.datastore = datastore
        self.auth = auth
        self.runners = runners
        self.owner = owner
        self.capacity = max(1, settings.runner_concurrency)
        self.shutdown_grace = settings.shutdown_grace
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.output = OutputBuffer(db, interval=settings.output_flush_interval)
        self._inflight: dict[str, _InFlight] = {}
        self._stopping = False
        self._heart: asyncio.Task[None] | None = None
        #: Set when the claim loop has exited (stop() waits for it: no claim after stop).
        self._claims_stopped = asyncio.Event()
        self.metrics: Any = None
        self._finishing: list[
            tuple[exrepo.Execution, str, Any, list[Any], asyncio.Future[bool]]
        ] = []
        self._finisher: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    # --- loops ------------------------------------------------------------------------------

    async def run(self) -> None:
        self.output.start()
        # Leases are renewed until stop() has let the in-flight actions finish.
        self._heart = asyncio.get_running_loop().create_task(self._heartbeat(), name="runner-lease")
        while not self._stopping:
            free = self.capacity - len(self._inflight)
            claimed: list[exrepo.Execution] = []
            if free > 0:
                try:
                    claimed = await self._claim(min(free, 128))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("claiming executions failed; retrying")
                    await asyncio.sleep(1.0)
                    continue
                for ex in claimed:
                    task = asyncio.get_running_loop().create_task(
                        self._execute(ex), name=f"execution-{ex.id}"
                    )
                    self._inflight[ex.id] = _InFlight(task)
                if claimed and self.metrics is not None:
                    self.metrics.executions_in_flight.set(len(self._inflight))
            if claimed and len(claimed) >= free and len(self._inflight) < self.capacity:
                # The claim was full, so more work may wait, and slots freed while it ran:
                # those executions saw a host that was not full and signalled nothing.
                continue
            if not claimed or len(claimed) >= free:
                # Nothing to do, or full: wait for work or a free slot ("runner" wake-up).
                await self.wakeups.wait("runner", self.POLL_SECONDS)
        self._claims_stopped.set()

    # --- local hand-off -------------------------------------------------------------------

    def adopt(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Take new ``scheduled`` rows about to be inserted by this process, in its transaction.

        Rows this host can run, up to its free capacity, are written as ``running`` under its
        lease and start once the transaction commits — no claim transaction, no wake-up. Rows
        it leaves are claimed the usual way (by this or any other runner process).
        """
        if self._stopping:
            return
        free = self.capacity - len(self._inflight)
        if free <= 0:
            return
        hosted = self.runners.hosted_types
        now = utcnow()
        until = now + self.lease
        taken: list[dict[str, Any]] = []
        for row in rows:
            if len(taken) >= free:
                break
            if row["status"] != _S.SCHEDULED or row["runner_type"] not in hosted:
                continue
            row["status"] = _S.RUNNING
            row["log"] = [*row["log"], {"status": _S.RUNNING, "timestamp": _stamp(now)}]
            row["started_at"] = now
            row["lease_owner"] = self.owner
            row["lease_expires_at"] = until
            taken.append(row)
        if taken:
            after_commit(conn, functools.partial(self._start_adopted, taken))

    def _start_adopted(self, rows: list[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        for row in rows:
            ex = exrepo.Execution.from_row(_Row(row))
            task = loop.create_task(self._execute(ex), name=f"execution-{ex.id}")
            self._inflight[ex.id] = _InFlight(task)
        if self.metrics is not None:
            self.metrics.executions_in_flight.set(len(self._inflight))

    async def _claim(self, limit: int) -> list[exrepo.Execution]:
        now = utcnow()
        until = now + self.lease

        def _do(conn: Connection) -> list[exrepo.Execution]:
            # Workflow and inquiry executions are the workflow engine's, not a runner's.
            return exrepo.claim_scheduled(
                conn,
                owner=self.owner,
                now=now,
                lease_until=until,
                limit=limit,
                runner_types=self.runners.hosted_types,
            )

        return await self.db.write(_do)

    async def _heartbeat(self) -> None:
        interval = max(0.5, self.lease.total_seconds() / 3)
        while True:
            await self.wakeups.wait("cancel", interval)
            try:
                await self._renew_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease renewal failed; retrying")

    async def _renew_and_watch(self) -> None:
        ids = list(self._inflight)
        if not ids:
            return
        until = utcnow() + self.lease

        def _renew(conn: Connection) -> list[tuple[str, str]]:
            exrepo.renew_leases(conn, self.owner, ids, until)
            return exrepo.owned_by(conn, self.owner, statuses=[_S.CANCELING])

        for execution_id, _status in await self.db.write(_renew):
            entry = self._inflight.get(execution_id)
            if entry is not None and not entry.cancel_requested:
                entry.cancel_requested = True
                entry.task.cancel()

    # --- one execution ----------------------------------------------------------------------

    async def _execute(self, ex: exrepo.Execution) -> None:
        status: str = _S.FAILED
        result: Any = None
        token: str | None = None
        try:
            bundle, ctx, token = await self._prepare(ex)
            runner = self.runners.get(bundle.runner.name)
            run_result: RunResult = await runner.run(ctx)
            status, result = run_result.status, run_result.result
        except asyncio.CancelledError:
            entry = self._inflight.get(ex.id)
            if entry is not None and entry.cancel_requested:
                status, result = _S.CANCELED, {"error": "canceled by request"}
            else:
                # Shutdown: the action was killed with its runner host.
                status, result = _S.ABANDONED, {"error": "Squall stopped while it ran"}
        except SquallError as exc:
            status, result = _S.FAILED, {"error": str(exc)}
        except Exception as exc:
            log.exception("execution %s crashed its runner", ex.id)
            status, result = (
                _S.FAILED,
                {"error": f"internal error: {exc!r}", "traceback": traceback.format_exc()},
            )
        finally:
            await self._finish(ex, status, result)
            was_full = len(self._inflight) >= self.capacity
            self._inflight.pop(ex.id, None)
            if self.metrics is not None:
                self.metrics.executions_in_flight.set(len(self._inflight))
            if token is not None:
                with contextlib.suppress(Exception):
                    await self.auth.revoke_token(token)
            if was_full:
                # A slot opened while work may be waiting: claim now, not at the next poll.
                self.wakeups.signal("runner", local=True)

    async def _prepare(self, ex: exrepo.Execution) -> tuple[ActionBundle, RunContext, str | None]:
        """The action and its run context. Database hiccups (a lost connection, a restart)
        are waited out for up to half the lease: the action has not run yet, and failing it
        would blame it for the database."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds() / 2
        delay = 0.25
        while True:
            try:
                bundle = await self.executions.bundle(ex.action_snapshot)
                ctx, token = await self._context(ex, bundle)
                return bundle, ctx, token
            except StoreError as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning(
                    "execution %s: preparing failed (%s); retrying in %.2fs", ex.id, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    async def _context(
        self, ex: exrepo.Execution, bundle: ActionBundle
    ) -> tuple[RunContext, str | None]:
        cache = self.executions.content
        pack_config: dict[str, Any] = {}
        if bundle.runner.name != "noop":
            pack_config, _secret_paths = await cache.pack_config(bundle.pack)
            pack_config = await self.executions.render_config(pack_config, user=ex.user)
        resolved = await self.executions.resolve(
            bundle, ex.parameters, user=ex.user, context=ex.context, pack_config=pack_config
        )
        token: str | None = None
        env: dict[str, str] = {}
        if bundle.runner.name in _PROCESS_RUNNERS:
            timeout = resolved.runner.get("timeout") or 600
            token, _record = await self.auth.issue_token(
                ex.user,
                ttl=min(int(timeout) + 300, self.auth.token_max_ttl),
                metadata={"execution_id": ex.id},
            )
            env = {
                "ST2_ACTION_PACK_NAME": bundle.pack,
                "ST2_ACTION_EXECUTION_ID": ex.id,
                "ST2_ACTION_API_URL": f"{self.settings.api_url}/api/v1",
                "ST2_ACTION_AUTH_TOKEN": token,
            }
        pack_path = None
        python = None
        pack = await cache.pack(bundle.pack)
        if pack is not None:
            pack_path = Path(pack.path)
        if bundle.runner.name == "python-script":
            venv = virtualenv_python(self.settings.home, bundle.pack)
            python = str(venv) if venv else None
        # The action acts as its user, with that user's roles and grants (RBAC).
        principal = await self.auth.principal_for(ex.user)
        ctx = RunContext(
            execution_id=ex.id,
            action_ref=bundle.ref,
            pack=bundle.pack,
            runner_type=bundle.runner.name,
            entry_point=bundle.doc.get("entry_point") or None,
            pack_path=pack_path,
            runner_parameters=resolved.runner,
            action_parameters=resolved.action,
            parameter_specs=bundle.specs,
            output=BufferSink(self.output, ex.id),
            datastore=ActionDatastore(
                self.datastore, principal, bundle.pack, dispatcher=self.triggers
            ),
            user=ex.user,
            pack_config=pack_config,
            env=env,
            python=python,
            context=dict(ex.context),
            secret_names=bundle.secret_names,
        )
        return ctx, token

    async def _finish(self, ex: exrepo.Execution, status: str, result: Any) -> None:
        """Queue the result for the finisher, which writes many results per transaction."""
        chunks = await self.output.take(ex.id)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._finishing.append((ex, status, result, chunks, fut))
        if self._finisher is None or self._finisher.done():
            self._finisher = asyncio.get_running_loop().create_task(
                self._finish_loop(), name="runner-finisher"
            )
        await asyncio.shield(fut)

    def _write_finished(
        self,
        conn: Connection,
        items: list[tuple[str, str, Any]],
        chunks: list[tuple[str, str, str]],
        now: datetime,
    ) -> set[str]:
        exrepo.append_output(conn, chunks, now=now)
        done = exrepo.finish_many(conn, items, now=now, owner=self.owner)
        for ex in done:
            self.executions.on_terminal(conn, ex)
        return {ex.id for ex in done}

    async def _finish_loop(self) -> None:
        # Results that arrive while a batch is being written form the next batch.
        while self._finishing:
            batch, self._finishing = self._finishing, []
            now = utcnow()
            items = [(ex.id, status, result) for ex, status, result, _c, _f in batch]
            chunks = [c for _ex, _s, _r, cs, _f in batch for c in cs]
            write = functools.partial(self._write_finished, items=items, chunks=chunks, now=now)
            try:
                written = await self._write_results(write)
            except Exception:
                log.exception("could not record the results of %d executions", len(batch))
                written = set()
            for ex, status, _result, _chunks, fut in batch:
                if ex.id not in written:
                    log.warning(
                        "execution %s finished (%s) after its lease was lost; result dropped",
                        ex.id,
                        status,
                    )
                if not fut.done():
                    fut.set_result(ex.id in written)

    async def _write_results(self, write: Any) -> set[str]:
        """Write finished results, retrying while the database is away (a restart, a lost
        connection) for as long as our leases can still be valid."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds()
        delay = 0.5
        while True:
            try:
                written: set[str] = await self.db.write(write)
                return written
            except StoreError as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning("could not record results (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    # --- shutdown ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop claiming; give running actions a grace period, then kill them."""
        self._stopping = True
        if self._heart is not None:
            # A claim in progress still starts what it took: wait for it before the snapshot.
            self.wakeups.signal("runner", local=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claims_stopped.wait(), 2 * self.POLL_SECONDS)
        tasks = [e.task for e in self._inflight.values()]
        if tasks:
            log.info("waiting up to %.0fs for %d running actions", self.shutdown_grace, len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._heart is not None:
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
        await self.output.close()
