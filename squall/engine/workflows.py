"""The workflow engine (role ``workflow``): Orquesta and action-chain runs, and inquiries.

How work reaches it, and how it never races:

* **Starts.** Executions of the ``orquesta``, ``action-chain`` and ``inquirer`` runner types
  go through the scheduler like any other (so concurrency policies apply) and are then
  claimed by this service, never by a runner host (see :mod:`.workflows_start`).
* **Events.** A child finishing records a ``child`` event for its workflow in the transaction
  that ends it (:meth:`WorkflowService.on_terminal`); pause/resume/cancel requests are events
  too. One processing transaction locks the workflow rows it works on (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite has one writer), feeds their events to the warm runs, writes
  the new child executions, the state changes and the events' deletion, and commits once.
  Concurrent completions of one workflow are serialized by that lock and a version counter:
  a run kept in memory is only reused when its version is the stored one.
* **Leases.** A workflow execution holds no lease while it runs: its state is in the
  database and any engine process may continue it, so garbage collection never abandons a
  healthy long workflow; a restart resumes every run from its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from squall.auth.secrets import Cipher
from squall.auth.service import Principal
from squall.config import Settings
from squall.engine.executions import ExecutionService
from squall.engine.inquiries import InquiryService
from squall.engine.policies import PolicyService
from squall.engine.triggers import TriggerService
from squall.engine.wakeup import Wakeups
from squall.engine.workflows_chain import ChainRun
from squall.engine.workflows_check import APP_CONTEXT
from squall.engine.workflows_children import ActionIndex, ChildFactory
from squall.engine.workflows_orquesta import OrquestaRun
from squall.engine.workflows_runs import (
    ENGINE_RUNNERS,
    WORKFLOW_RUNNERS,
    Env,
    Run,
    Txn,
    cancel_execution,
    child_event,
)
from squall.engine.workflows_start import Starter
from squall.errors import ConflictError, PermissionDenied, ValidationError
from squall.model.status import TERMINAL_STATUSES
from squall.store import executions as exrepo
from squall.store import workflow_inbox as inbox
from squall.store import workflows as wfrepo
from squall.store.db import Database, after_commit
from squall.store.executions import Execution
from squall.store.util import utcnow
from squall.workflow import compile_workflow

__all__ = ["WorkflowService"]

log = logging.getLogger(__name__)


class _RunFailed(Exception):
    """Processing one run raised: the transaction is rolled back and the run is failed."""

    def __init__(
        self, row: wfrepo.WorkflowRow, events: list[inbox.WorkflowEvent], error: Exception
    ) -> None:
        super().__init__(f"workflow {row.id}: {error!r}")
        self.workflow_id = row.id
        self.events = events
        self.error = error


class WorkflowService:
    """Service loop of the ``workflow`` role, and the operations the API calls."""

    #: Safety-net poll for events (a wake-up normally arrives first).
    POLL_SECONDS = 0.5
    #: How often to look for claimable executions (the scheduler does not wake this role).
    CLAIM_SECONDS = 0.05
    CLAIM_BATCH = 64
    PROCESS_BATCH = 64
    EVENT_BATCH = 5000
    SCAN_SECONDS = 0.5
    CACHE_SIZE = 10_000

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        wakeups: Wakeups,
        executions: ExecutionService,
        triggers: TriggerService,
        cipher: Cipher,
        owner: str,
        policies: PolicyService | None = None,
    ) -> None:
        self.db = db
        self.policies = policies
        self.wakeups = wakeups
        self.executions = executions
        self.owner = owner
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.actions = ActionIndex(executions)
        skip = None if policies is None else (lambda ref: not policies.has_concurrency(ref))
        children = ChildFactory(executions, cipher, self.actions, skip_scheduler=skip)
        self.env = Env(executions, children, self.actions, cipher)
        self.inquiries = InquiryService(db, wakeups, executions, triggers)
        self.starter = Starter(settings, self.env, self.inquiries, owner)
        self._cache: dict[str, Run] = {}
        self._last_scan = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        #: New engine-held executions were written: look for claimable ones at once.
        self._claim_soon = True

    # --- the terminal hook (inside the transaction that ends a child) --------------------------

    def on_terminal(self, conn: Connection, ex: Execution) -> None:
        """A workflow's child ended: queue a ``child`` event for the workflow."""
        if ex.parent_id is None:
            return
        policies = ex.context.get("policies")
        if isinstance(policies, Mapping) and policies.get("retry"):
            return  # a retry policy's re-run: the workflow already saw the first attempt
        data = child_event(ex.id, ex.status, ex.context)
        if data is None:
            return
        inbox.add_event(conn, ex.parent_id, "child", data, now=utcnow(), result=ex.result_blob)
        if not self._apply_now(conn, ex.parent_id):
            after_commit(conn, functools.partial(self.wakeups.signal, "workflow"))

    def _apply_now(self, conn: Connection, workflow_id: str) -> bool:
        """The fast path for a run that waits on this one child (a sequential stretch): apply
        the event right here, in the child's own transaction, saving a transaction and two
        wake-ups per task. Still recorded in the inbox and consumed once; the run is locked
        (``SKIP LOCKED``: if another engine holds it, the inbox path takes over) and any error
        rolls back to a savepoint and leaves the event to the engine loop."""
        run = self._cache.get(workflow_id)
        if run is None or self._loop is None or not run.waits_on_one():
            return False
        try:
            with conn.begin_nested():
                tx = self._process(conn, [workflow_id], False)
        except Exception:
            log.debug("workflow %s: fast path failed; left to the engine loop", workflow_id)
            return False
        if not tx.done:
            return False
        after_commit(conn, functools.partial(self._after, tx))
        return True

    # --- service loop --------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        last_process = last_claim = 0.0
        signaled = True
        while not self._stopping:
            try:
                now = time.monotonic()
                processed = 0
                if signaled or now - last_process >= self.POLL_SECONDS:
                    last_process = now
                    processed = await self.process()
                started = 0
                if self._claim_soon or now - last_claim >= self.CLAIM_SECONDS:
                    last_claim, self._claim_soon = now, False
                    if self.policies is not None:
                        await self.policies.refresh()
                    started = await self.start_claimed()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("workflow engine iteration failed; retrying")
                await asyncio.sleep(1.0)
                signaled = True
                continue
            if started or processed >= self.PROCESS_BATCH:
                signaled = True
                continue
            signaled = await self.wakeups.wait("workflow", self.CLAIM_SECONDS)
        self._stopped.set()

    async def stop(self) -> None:
        """Finish the current iteration (a start in progress commits), then stop."""
        self._stopping = True
        if self._loop is not None:
            self.wakeups.signal("workflow")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), 10)

    # --- starts --------------------------------------------------------------------------------

    async def start_claimed(self) -> int:
        """Claim scheduled executions of the engine's runner types and start them."""
        types = sorted(ENGINE_RUNNERS)
        if not await self.db.read(lambda conn: inbox.has_scheduled(conn, types)):
            return 0
        now = utcnow()

        def _claim(conn: Connection) -> list[Execution]:
            return exrepo.claim_scheduled(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + self.lease,
                limit=self.CLAIM_BATCH,
                runner_types=types,
            )

        claimed = await self.db.write(_claim)
        if not claimed:
            return 0
        plans = await asyncio.gather(*(self.starter.plan(ex) for ex in claimed))

        def _commit(conn: Connection) -> Txn:
            tx = Txn(conn, utcnow(), insert=self.executions.insert_rows)
            for plan in plans:
                try:
                    with conn.begin_nested():
                        run = self.starter.commit(tx, plan)
                except Exception as exc:
                    log.exception("starting execution %s failed", plan.ex.id)
                    with conn.begin_nested():
                        self.starter.fail(tx, plan.ex.id, plan.kind, f"internal error: {exc!r}")
                    continue
                if run is not None:
                    tx.done.append(run)
            return tx

        self._after(await self.db.write(_commit))
        return len(claimed)

    # --- events --------------------------------------------------------------------------------

    async def process(self, ids: Sequence[str] | None = None, *, wait: bool = False) -> int:
        """Apply queued events (of ``ids``, or of the runs waiting longest); returns how many
        runs were processed."""
        try:
            tx = await self.db.write(lambda conn: self._process(conn, ids, wait))
        except _RunFailed as exc:
            # A bug while processing one run: its events are dropped and it fails, with the
            # error, in a transaction of its own; the others are processed again next round.
            failed = exc
            log.error("workflow %s: processing failed: %r", failed.workflow_id, failed.error)
            tx = await self.db.write(lambda conn: self._crash(conn, failed))
        self._after(tx)
        return len(tx.done)

    def _process(self, conn: Connection, ids: Sequence[str] | None, wait: bool) -> Txn:
        tx = Txn(conn, utcnow(), insert=self.executions.insert_rows)
        if ids is None:
            if time.monotonic() - self._last_scan >= self.SCAN_SECONDS:
                self._scan(tx)
            queued: dict[str, list[inbox.WorkflowEvent]] = {}
            for event in inbox.pending_events(conn, limit=self.EVENT_BATCH):
                if event.workflow_id in queued or len(queued) < self.PROCESS_BATCH:
                    queued.setdefault(event.workflow_id, []).append(event)
        else:
            queued = {i: inbox.events_for(conn, i) for i in ids}
        queued = {k: v for k, v in queued.items() if v}
        if not queued:
            return tx
        rows = wfrepo.lock_workflows(conn, list(queued), skip_locked=not wait)
        locked = {row.id for row in rows}
        missing = [i for i in queued if i not in locked]
        if missing:
            self._drop_orphans(tx, missing)
        if rows and conn.dialect.name == "postgresql":
            # The events were read before the locks: another engine may have applied some
            # of them and committed in between (READ COMMITTED). Keep only those still queued.
            event_ids = [e.id for row in rows for e in queued[row.id]]
            still = inbox.existing_events(conn, event_ids)
            if len(still) < len(event_ids):
                for row in rows:
                    queued[row.id] = [e for e in queued[row.id] if e.id in still]
                rows = [row for row in rows if queued[row.id]]
        for row in rows:
            events = queued[row.id]
            try:
                self._handle(tx, row, events)
            except DBAPIError as exc:
                self._cache.pop(row.id, None)
                if exc.connection_invalidated:
                    # The connection failed (lost, the server restarted), not the workflow:
                    # the transaction is rolled back and its events are applied again.
                    raise
                raise _RunFailed(row, events, exc) from exc
            except Exception as exc:
                self._cache.pop(row.id, None)
                raise _RunFailed(row, events, exc) from exc
            inbox.consume_events(conn, events)
        return tx

    def _handle(self, tx: Txn, row: wfrepo.WorkflowRow, events: list[inbox.WorkflowEvent]) -> None:
        if row.status in TERMINAL_STATUSES:
            self._cache.pop(row.id, None)  # late news for a finished run: nothing to do
            return
        run = self._checkout(tx.conn, row) or self._load(tx.conn, row)
        run.handle(tx, events)
        tx.done.append(run)

    def _crash(self, conn: Connection, failed: _RunFailed) -> Txn:
        tx = Txn(conn, utcnow(), insert=self.executions.insert_rows)
        row = wfrepo.get_workflow(conn, failed.workflow_id)
        if row is None:
            return tx
        inbox.consume_events(conn, failed.events)
        if row.status in TERMINAL_STATUSES:
            return tx
        message = f"Internal error while processing workflow events: {failed.error!r}"
        try:
            run = self._load(conn, row)
        except Exception:
            self._abort(tx, row, message)
            return tx
        run.crash(tx, message)
        tx.done.append(run)
        return tx

    def _checkout(self, conn: Connection, row: wfrepo.WorkflowRow) -> Run | None:
        run = self._cache.pop(row.id, None)
        if run is not None and run.version == row.version:
            run.conn = conn
            return run
        return None

    def _load(self, conn: Connection, row: wfrepo.WorkflowRow) -> Run:
        if row.kind == "action-chain":
            return ChainRun.load(self.env, conn, row)
        return OrquestaRun.load(self.env, conn, row)

    def _abort(self, tx: Txn, row: wfrepo.WorkflowRow, message: str) -> None:
        """A run whose state cannot even be loaded: fail its execution."""
        done = exrepo.finish(
            tx.conn,
            row.id,
            status="failed",
            result={"output": None, "errors": [{"type": "error", "message": message}]},
            now=tx.now,
        )
        if done is not None:
            self.executions.on_terminal(tx.conn, done)
        wfrepo.save_header(
            tx.conn, row.id, status="failed", header=None, version=row.version + 1, now=tx.now
        )

    def _drop_orphans(self, tx: Txn, ids: Sequence[str]) -> None:
        """Delete events of runs that will never exist (their execution ended unstarted)."""
        for workflow_id in ids:
            if wfrepo.get_workflow(tx.conn, workflow_id) is not None:
                continue  # locked by another engine
            ex = exrepo.get(tx.conn, workflow_id, with_result=False)
            if ex is None or ex.is_terminal:
                inbox.delete_events(tx.conn, [e.id for e in inbox.events_for(tx.conn, workflow_id)])

    def _scan(self, tx: Txn) -> None:
        """Act on cancellations requested through the executions API (they only mark the
        execution ``canceling``; nothing else would reach the engine-held ones)."""
        self._last_scan = time.monotonic()
        for row in inbox.unattended_canceling(tx.conn, limit=500):
            if row.runner_type in WORKFLOW_RUNNERS:
                if row.wf_status is not None:
                    tx.event(row.id, "cancel")
                continue
            ex = exrepo.get(tx.conn, row.id, with_result=False)
            if ex is not None:
                cancel_execution(self.env, tx, ex)

    def _after(self, tx: Txn) -> None:
        """After the commit: keep the runs warm, wake whoever has new work."""
        for run in tx.done:
            if run.finished:
                self._cache.pop(run.id, None)
                continue
            current = self._cache.get(run.id)
            # ">=": a run from a rolled-back fast path is put back before any later commit
            # of the same run, whose (correct) run then replaces it.
            if current is None or run.version >= current.version:
                self._cache[run.id] = run
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        if "workflow" in tx.signals:
            self._claim_soon = True  # a child workflow or inquiry may wait to be claimed
        for channel in tx.signals:
            self.wakeups.signal(channel)

    # --- operations (API) ----------------------------------------------------------------------

    async def request(self, principal: Principal, execution_id: str, kind: str) -> Execution:
        """Pause or resume a workflow execution (``kind``: ``pause`` / ``resume``)."""
        ex = await self.executions.get(execution_id, with_result=False)
        _check_owner(principal, ex, kind)
        if ex.runner_type not in WORKFLOW_RUNNERS:
            raise ValidationError(
                f"execution {execution_id} runs {ex.action_ref} ({ex.runner_type}); "
                "only workflows (orquesta, action-chain) can be paused or resumed"
            )
        if ex.is_terminal:
            raise ConflictError(f"execution {execution_id} is already {ex.status}")
        now = utcnow()

        def _do(conn: Connection) -> Txn | None:
            if wfrepo.get_workflow(conn, execution_id) is None:
                return None
            inbox.add_event(conn, execution_id, kind, {}, now=now)
            return self._process(conn, [execution_id], True)

        tx = await self.db.write(_do)
        if tx is None:
            raise ConflictError(f"workflow {execution_id} is still starting; try again")
        self._after(tx)
        if execution_id in tx.rejections:
            raise ConflictError(tx.rejections[execution_id])
        return await self.executions.get(execution_id)

    async def rerun(
        self,
        principal: Principal,
        execution_id: str,
        parameters: Mapping[str, Any] | None,
        *,
        tasks: Sequence[str],
        reset: Sequence[str],
        delay_ms: int | None = None,
    ) -> Execution:
        """Re-run a completed Orquesta workflow from ``tasks`` (``reset``: with-items tasks
        whose every item runs again), as StackStorm's ``re_run`` does."""
        original = await self.executions.get(execution_id, with_result=False)
        _check_owner(principal, original, "re-run")
        if original.runner_type != "orquesta":
            raise ValidationError("tasks and reset apply to orquesta workflow executions only")
        if not original.is_terminal:
            raise ConflictError(
                f"execution {execution_id} is {original.status}; only a completed workflow "
                "can be re-run from tasks"
            )

        def _read(conn: Connection) -> str | None:
            row = wfrepo.get_workflow(conn, execution_id)
            return wfrepo.get_definition(conn, row.definition_hash) if row else None

        text = await self.db.read(_read)
        if text is None:
            raise ConflictError(f"execution {execution_id} never started running its tasks")
        spec = compile_workflow(text, check=False, app_ctx=list(APP_CONTEXT)).spec
        unknown = [t for t in {*tasks, *reset} if t not in spec.tasks]
        if unknown:
            raise ValidationError(
                f"unknown task(s) {', '.join(sorted(unknown))} in workflow {original.action_ref}"
            )
        merged = {**original.parameters, **dict(parameters or {})}
        names = list(dict.fromkeys([*tasks, *reset]))  # a reset task is re-run too
        context = {"re-run": {"ref": execution_id, "tasks": names, "reset": list(reset)}}
        return await self.executions.request(
            principal,
            original.action_ref,
            merged,
            context=context,
            notify=original.notify,
            delay_ms=delay_ms,
        )


def _check_owner(principal: Principal, ex: Execution, verb: str) -> None:
    if principal.is_admin or ex.user == principal.user:
        return
    raise PermissionDenied(
        f"user {principal.user!r} may not {verb} execution {ex.id} of user {ex.user!r}"
    )
