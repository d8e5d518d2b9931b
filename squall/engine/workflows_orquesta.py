"""Orquesta runs: the pure conductor driven by child executions, kept warm between events.

For each transaction: child completions and pause/resume/cancel requests are fed to the
conductor; ``get_next_tasks()`` is asked until nothing is ready, and every task (every item of
a with-items task) becomes a child execution, reported ``running`` in the same transaction;
when the conductor has completed and no task is active the output is rendered and the
execution finishes with ``{output, errors}``. Only the changes (``pop_changes``) are written.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from squall.engine.workflows_children import kv_lookup
from squall.engine.workflows_runs import Env, Run, Txn
from squall.errors import DomainError, WorkflowError
from squall.model.status import TERMINAL_STATUSES
from squall.store import workflow_inbox as inbox
from squall.store import workflows as wfrepo
from squall.store.executions import Execution, decode_result
from squall.workflow import WorkflowConductor, compile_workflow
from squall.workflow import statuses as st
from squall.workflow.requests import ActionRequest, TaskRequest
from squall.workflow.workflow import Workflow

__all__ = ["OrquestaRun"]

log = logging.getLogger(__name__)

#: Rounds of "get next tasks" in one transaction before a run is considered looping (tasks
#: without actions chained in a cycle would otherwise never yield).
MAX_ROUNDS = 10_000


class OrquestaRun(Run):
    """One Orquesta workflow execution."""

    def __init__(self, env: Env, row: wfrepo.WorkflowRow, workflow: Workflow) -> None:
        super().__init__(env, row)
        self.workflow = workflow
        self.conductor: WorkflowConductor
        self._full_save = False
        #: Staged tasks (and with-items tasks) that have rows, to skip needless deletes.
        self.staged_rows: set[str] = set()
        self.item_keys: set[str] = set()
        user = self.info.user
        self.kv = kv_lookup(
            self._conn, user, env.cipher, lambda: env.actions.is_admin(self._conn(), user)
        )

    def _conn(self) -> Any:
        if self.conn is None:  # pragma: no cover - a run is always bound before use
            raise WorkflowError("the workflow run is not bound to a transaction")
        return self.conn

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, env: Env, conn: Any, row: wfrepo.WorkflowRow) -> OrquestaRun:
        """Rebuild a run from the database (a cache miss, or after a restart)."""
        text = wfrepo.get_definition(conn, row.definition_hash)
        if text is None:
            raise WorkflowError(f"the definition of workflow {row.id} is missing")
        workflow = compile_workflow(
            text, check=False, app_ctx=list(row.static.get("context") or {})
        )
        run = cls(env, row, workflow)
        run.conn = conn
        document = wfrepo.load_state(conn, row)
        for staged in document["staged"]:
            key = f"{staged['id']}__r{staged['route']}"
            run.staged_rows.add(key)
            if isinstance(staged.get("items"), dict):
                run.item_keys.add(key)
        run.conductor = WorkflowConductor.from_state(workflow, document, kv_lookup=run.kv)
        return run

    @classmethod
    def start(
        cls,
        env: Env,
        tx: Txn,
        row: wfrepo.WorkflowRow,
        workflow: Workflow,
        inputs: dict[str, Any],
        context: dict[str, Any],
    ) -> OrquestaRun:
        """A new run: render inputs and vars, then start the first tasks."""
        run = cls(env, row, workflow)
        run.conn = tx.conn
        run.conductor = WorkflowConductor(workflow, inputs, context, kv_lookup=run.kv)
        if run.conductor.status != st.FAILED:
            run.conductor.request_workflow_status(st.RUNNING)
        run.dispatch(tx)
        run.settle(tx)
        return run

    @classmethod
    def rerun(
        cls,
        env: Env,
        tx: Txn,
        row: wfrepo.WorkflowRow,
        workflow: Workflow,
        state: dict[str, Any],
        tasks: list[str],
        reset: list[str],
    ) -> OrquestaRun:
        """A re-run of a completed run from ``tasks`` (StackStorm's ``re_run``)."""
        run = cls(env, row, workflow)
        run.conn = tx.conn
        run.conductor = WorkflowConductor.rerun(
            workflow, state, tasks or None, reset or None, kv_lookup=run.kv
        )
        run._full_save = True
        run.dispatch(tx)
        run.settle(tx)
        return run

    # --- events -------------------------------------------------------------------------------

    def apply(self, tx: Txn, event: inbox.WorkflowEvent) -> None:
        kind = event.kind
        if kind == "child":
            self._child(event)
        elif kind == "pause":
            if self._request(tx, st.PAUSING):
                for child in self.cascade_pause(tx):
                    self._report(child, st.PAUSED)
        elif kind == "resume":
            if self._request(tx, st.RESUMING):
                for child in self.cascade_resume(tx):
                    self._report(child, st.RUNNING)
        elif kind == "cancel":
            self._request(tx, st.CANCELING)
            self.cascade_cancel(tx)
        else:
            log.warning("workflow %s: unknown event %r ignored", self.id, kind)

    def _request(self, tx: Txn, status: str) -> bool:
        try:
            self.conductor.request_workflow_status(status)
        except WorkflowError as exc:
            tx.rejections[self.id] = str(exc)
            return False
        return True

    def _report(self, child: Execution, status: str) -> None:
        orquesta = child.context.get("orquesta") or {}
        with contextlib.suppress(WorkflowError):
            self.conductor.update_task_state(
                str(orquesta.get("task_id")),
                int(orquesta.get("task_route") or 0),
                status,
                item_id=orquesta.get("item_id"),
            )

    def _child(self, event: inbox.WorkflowEvent) -> None:
        data = event.data
        task_id = data.get("task_id")
        if not task_id:
            return
        route = int(data.get("route") or 0)
        item_id = data.get("item_id")
        status = data["status"]
        result = decode_result(event.result) if event.result is not None else None
        conductor = self.conductor
        if (
            status in TERMINAL_STATUSES
            and conductor.status == st.PAUSED
            and self._pending(task_id, route, item_id)
        ):
            # An answered inquiry resumes the branch it paused.
            with contextlib.suppress(WorkflowError):
                conductor.request_workflow_status(st.RESUMING)
        try:
            conductor.update_task_state(task_id, route, status, result, item_id=item_id)
        except WorkflowError as exc:
            log.warning(
                "workflow %s: %s of task %s (route %d, item %s) ignored: %s",
                self.id,
                status,
                task_id,
                route,
                item_id,
                exc,
            )

    def _pending(self, task_id: str, route: int, item_id: int | None) -> bool:
        if item_id is not None:
            staged = self.conductor.state.staged.get((task_id, route))
            if staged is None or staged.items is None or item_id >= staged.items.count:
                return False
            return staged.items.statuses[item_id] == st.PENDING
        entry = self.conductor.get_task_entry(task_id, route)
        return entry is not None and entry.status == st.PENDING

    # --- dispatch -----------------------------------------------------------------------------

    def dispatch(self, tx: Txn) -> None:
        conductor = self.conductor
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_ROUNDS):
            requests = conductor.get_next_tasks()
            if not requests:
                break
            for request in requests:
                self._start_task(tx, request, rows)
        else:
            conductor.log_entry("error", "The workflow ran tasks without actions in a loop.")
            conductor.fail()
        if rows:
            tx.children(rows)

    def _start_task(self, tx: Txn, request: TaskRequest, rows: list[dict[str, Any]]) -> None:
        conductor = self.conductor
        task_id, route = request.task_id, request.route
        if not request.actions or (request.items_count is None and request.action is None):
            # Nothing to execute: a task without an action, or with-items over [].
            conductor.update_task_state(task_id, route, st.RUNNING)
            conductor.update_task_state(
                task_id, route, st.SUCCEEDED, [] if request.items_count is not None else None
            )
            return
        for action in request.actions:
            error = None
            try:
                rows.append(self._child_row(tx, request, action))
            except DomainError as exc:
                error = str(exc)
            conductor.update_task_state(task_id, route, st.RUNNING, item_id=action.item_id)
            if error is not None:
                conductor.update_task_state(
                    task_id, route, st.FAILED, {"error": error}, item_id=action.item_id
                )

    def _child_row(self, tx: Txn, request: TaskRequest, action: ActionRequest) -> dict[str, Any]:
        orquesta: dict[str, Any] = {
            "task_id": request.task_id,
            "task_name": request.task_id,
            "task_route": request.route,
            "workflow_execution_id": self.id,
        }
        if action.item_id is not None:
            orquesta["item_id"] = action.item_id
        notify = self.info.notify if request.task_id in self.info.notify_tasks else None
        return self.env.children.build(
            tx.conn,
            self.info,
            action_ref=action.action,  # type: ignore[arg-type]
            parameters=action.input,
            context={"orquesta": orquesta},
            now=tx.now,
            delay=request.delay,
            notify=notify,
        )

    # --- status and persistence ---------------------------------------------------------------

    def settle(self, tx: Txn) -> None:
        conductor = self.conductor
        if (
            not self.finished
            and conductor.status in st.COMPLETED_STATUSES
            and not conductor.state.has_active_tasks()
        ):
            conductor.render_workflow_output()
        super().settle(tx)

    def desired_status(self) -> str:
        status = self.conductor.status
        if status in st.COMPLETED_STATUSES:
            # Fail fast lets tasks already running finish: the execution ends after them.
            return self.exec_status if self.conductor.state.has_active_tasks() else status
        if status in (st.UNSET, st.REQUESTED, st.SCHEDULED, st.DELAYED):
            return st.RUNNING
        return status

    def waits_on_one(self) -> bool:
        state = self.conductor.state
        if len(state.active) != 1 or self.finished:
            return False
        entry = next(iter(state.active.values()))
        staged = state.staged.get((entry.task_id, entry.route))
        return staged is None or staged.items is None or staged.items.active <= 1

    def result(self) -> Any:
        conductor = self.conductor
        result: dict[str, Any] = {"output": conductor.output}
        if conductor.errors:
            result["errors"] = list(conductor.errors)
        return result

    def persist(self, tx: Txn, status: str) -> None:
        conductor = self.conductor
        changes = conductor.pop_changes()
        if self._full_save:
            document = conductor.serialize()
            wfrepo.save_document(tx.conn, self.id, document)
            changes["header"] = conductor.state.header()
            changes["static"] = {"input": document["input"], "context": document["context"]}
            self.staged_rows = {f"{t['id']}__r{t['route']}" for t in document["staged"]}
            self.item_keys = {
                f"{t['id']}__r{t['route']}" for t in document["staged"] if t.get("items")
            }
            self._full_save = False
        else:
            wfrepo.save_changes(
                tx.conn,
                self.id,
                changes,
                staged_rows=self.staged_rows,
                item_keys=self.item_keys,
            )
        wfrepo.save_header(
            tx.conn,
            self.id,
            status=status,
            header=changes["header"],
            version=self.version + 1,
            now=tx.now,
            static=changes.get("static"),
        )

    def crash(self, tx: Txn, message: str) -> None:
        self.conductor.log_entry("error", message)
        self.conductor.fail()
        self.cascade_cancel(tx)
        self.mirror(tx, st.FAILED)
        self.persist(tx, self.exec_status)
        self.version += 1
