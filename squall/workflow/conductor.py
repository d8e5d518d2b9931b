"""The workflow conductor: a pure, serializable state machine driving one workflow execution.

How an engine drives it (one workflow execution, under that execution's lock)::

    conductor = WorkflowConductor(definition, inputs, context={"st2": {...}})
    conductor.request_workflow_status("running")
    for request in conductor.get_next_tasks():        # TaskRequest: id, route, actions, delay
        ...start each action (each item of a with-items task)...
        conductor.update_task_state(request.task_id, request.route, "running",
                                    item_id=action.item_id)
    store(conductor.pop_changes())                    # or conductor.serialize()

    # later, when an action execution changes status:
    conductor = WorkflowConductor.from_state(definition, stored_state)
    conductor.update_task_state(task_id, route, "succeeded", result=..., item_id=...)
    ...get_next_tasks() again, start them, report "running"...
    if conductor.status in COMPLETED: conductor.render_workflow_output()

Report a starting status (``requested``/``running``) for every returned task or item before
asking for next tasks again, in the same transaction: a task stays staged until then. A task
request without an action (``action: None``) and a with-items task over an empty list have
nothing to execute: report ``running`` then ``succeeded`` (result ``[]`` for items) at once.

``st2kv()`` reads through ``kv_lookup(key, decrypt)`` (return :data:`MISSING` when absent);
keys it asked for and did not find are collected in :attr:`kv_misses`, so an engine can
prefetch keys and evaluate again.
"""

from __future__ import annotations

from typing import Any

from squall.errors import WorkflowError
from squall.workflow import machines
from squall.workflow import statuses as st
from squall.workflow.functions import MISSING, EvalScope, KvLookup
from squall.workflow.joins import Joins
from squall.workflow.render import render_task, render_workflow_output, start_workflow
from squall.workflow.requests import RerunRequest, TaskRequest
from squall.workflow.rerun import request_workflow_rerun
from squall.workflow.spec import WorkflowSpec
from squall.workflow.state import TaskEntry, WorkflowState
from squall.workflow.task_events import update_task_state
from squall.workflow.workflow import Workflow, compile_workflow

__all__ = ["WorkflowConductor"]

Definition = Workflow | WorkflowSpec | str | bytes | dict[str, Any]


def _as_workflow(definition: Definition, context: dict[str, Any] | None) -> Workflow:
    if isinstance(definition, Workflow):
        return definition
    return compile_workflow(definition, app_ctx=list(context or {}))


class WorkflowConductor:
    """Conducts one execution of a workflow definition.

    Args:
        definition: a compiled :class:`Workflow`, a spec, YAML text or a mapping
            (inspected first, with the names in ``context`` as known variables; an
            invalid definition raises :class:`WorkflowError`).
        inputs: workflow input values; undeclared names are ignored, missing ones take the
            declared default (expressions in values are rendered, as in Orquesta).
        context: the parent context (``{"st2": {...}}``); visible through ``ctx()``.
        kv_lookup: datastore access for ``st2kv()``.
    """

    def __init__(
        self,
        definition: Definition,
        inputs: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        *,
        kv_lookup: KvLookup | None = None,
        _state: WorkflowState | None = None,
    ) -> None:
        parent = _state.parent_context if _state is not None else context
        self.workflow = _as_workflow(definition, parent)
        self.graph = self.workflow.graph
        self.kv_lookup = kv_lookup
        self.kv_misses: set[str] = set()
        if _state is not None:
            self.state = _state
            self.joins = Joins(self.graph, self.state)
            return
        self.state = WorkflowState()
        self.state.inputs = dict(inputs or {})
        self.state.parent_context = dict(context or {})
        self.joins = Joins(self.graph, self.state)
        start_workflow(self)

    @classmethod
    def from_state(
        cls, definition: Definition, state: dict[str, Any], *, kv_lookup: KvLookup | None = None
    ) -> WorkflowConductor:
        """Rebuild a conductor from :meth:`serialize` output (or an :func:`apply_changes`
        document)."""
        return cls(definition, kv_lookup=kv_lookup, _state=WorkflowState.from_dict(state))

    @classmethod
    def rerun(
        cls,
        definition: Definition,
        state: dict[str, Any],
        tasks: list[str] | None = None,
        reset: list[str] | None = None,
        *,
        kv_lookup: KvLookup | None = None,
    ) -> WorkflowConductor:
        """A conductor for re-running a completed execution (StackStorm's ``re_run``).

        Args:
            definition: the workflow definition.
            state: the completed execution's state (:meth:`serialize` output).
            tasks: task names to run again, on every route they ran on; default: the failed
                terminal tasks.
            reset: with-items tasks whose items all run again (default: failed items only).

        Returns:
            A new conductor in ``resuming``; the stored ``state`` is not modified.
        """
        conductor = cls.from_state(definition, state, kv_lookup=kv_lookup)
        requests = None
        if tasks:
            requests = []
            for name in tasks:
                routes = sorted(r for t, r in conductor.state.latest if t == name) or [0]
                requests += [RerunRequest(name, r, name in (reset or [])) for r in routes]
        conductor.request_workflow_rerun(requests)
        return conductor

    # --- state access -----------------------------------------------------------------------

    @property
    def status(self) -> str:
        """The workflow status."""
        return self.state.status

    def get_workflow_status(self) -> str:
        """The workflow status (Orquesta's name for :attr:`status`)."""
        return self.state.status

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The error log: ``{type, message, task_id?, route?, task_transition_id?, result?}``."""
        return self.state.errors

    @property
    def output(self) -> dict[str, Any] | None:
        """The rendered output (after :meth:`render_workflow_output`), or None."""
        return self.state.output

    def get_workflow_output(self) -> dict[str, Any] | None:
        """The rendered output, or None."""
        return self.state.output

    @property
    def routes(self) -> list[list[str]]:
        """Route details in creation order; route 0 is ``[]``."""
        return self.state.routes

    @property
    def sequence(self) -> list[TaskEntry]:
        """Task entries in the order they were created."""
        return self.state.sequence

    def get_terminal_tasks(self) -> list[TaskEntry]:
        """Entries marked terminal, in sequence order."""
        return [self.state.sequence[i] for i in sorted(self.state.terms)]

    def get_task_entry(self, task_id: str, route: int = 0) -> TaskEntry | None:
        """The latest entry of a task on a route."""
        return self.state.latest.get((task_id, route))

    def serialize(self) -> dict[str, Any]:
        """The whole state as plain data (for :meth:`from_state`)."""
        return self.state.to_dict()

    def pop_changes(self) -> dict[str, Any]:
        """State changes since the last call (see :meth:`WorkflowState.pop_changes`)."""
        return self.state.pop_changes()

    # --- StateView for expression functions -------------------------------------------------

    def task_status(self, task_id: str, route: int) -> str:
        """Status of a task on ``route``, looking in the routes it split from if needed."""
        entry = self.state.latest.get((task_id, route))
        if entry is not None:
            return entry.status
        if route > 0 and route < len(self.state.routes):
            current = set(self.state.routes[route])
            for offset, details in enumerate(reversed(self.state.routes[:route])):
                if not set(details) - current:
                    return self.task_status(task_id, route - offset - 1)
        return st.UNSET

    def task_info(self, task_id: str, route: int) -> dict[str, Any] | None:
        """``{id, route, status, result}`` for ``task()``."""
        entry = self.state.latest.get((task_id, route))
        if entry is None:
            status = self.task_status(task_id, route)
            if status == st.UNSET:
                return None
            return {"id": task_id, "route": route, "status": status, "result": None}
        return {
            "id": task_id,
            "route": entry.route,
            "status": entry.status,
            "result": entry.result if entry.has_result else None,
        }

    def scope(
        self, ctx: int, *, task: dict[str, Any] | None = None, item: Any = MISSING
    ) -> EvalScope:
        """An evaluation scope over context snapshot ``ctx``."""
        return EvalScope(
            self.state.contexts[ctx]["merged"],
            task=task,
            item=item,
            state=self,
            kv_lookup=self.kv_lookup,
            kv_misses=self.kv_misses,
        )

    # --- logging and status -----------------------------------------------------------------

    def log_entry(
        self,
        entry_type: str,
        message: str,
        *,
        task_id: str | None = None,
        route: int | None = None,
        task_transition_id: str | None = None,
        result: Any = None,
        data: Any = None,
    ) -> None:
        """Append to the error (or info) log; identical entries are logged once."""
        entry: dict[str, Any] = {"type": entry_type, "message": message}
        for key, value in (
            ("task_id", task_id),
            ("route", route),
            ("task_transition_id", task_transition_id),
            ("result", result),
            ("data", data),
        ):
            if value is not None:
                entry[key] = value
        self.state.log_entry(entry)

    def log_error(
        self,
        error: BaseException,
        *,
        task_id: str | None = None,
        route: int | None = None,
        task_transition_id: str | None = None,
    ) -> None:
        """Log an exception as ``"<ExceptionName>: <message>"``."""
        self.log_entry(
            "error",
            f"{type(error).__name__}: {error}",
            task_id=task_id,
            route=route,
            task_transition_id=task_transition_id,
        )

    def set_status(self, status: str) -> None:
        """Set the workflow status directly (internal; use :meth:`request_workflow_status`)."""
        if self.state.status != status:
            self.state.status = status
            self.state.mark_header()

    def fail(self) -> None:
        """Fail the workflow unless it already ended."""
        if self.state.status not in (st.FAILED, st.CANCELED):
            self.set_status(st.FAILED)

    def request_workflow_status(self, status: str) -> None:
        """Ask for a workflow status: running, pausing/paused, resuming, canceling/canceled,
        failed.

        Pausing or canceling with tasks still active gives ``pausing``/``canceling``; the
        workflow settles to ``paused``/``canceled`` when the last active task reports.

        Raises:
            WorkflowError: the transition is not possible from the current status.
        """
        if status not in st.ALL_STATUSES:
            raise WorkflowError(f'Status "{status}" is not valid.')
        state = self.state
        current = state.status
        for entry in list(state.active.values()):
            staged = state.staged.get((entry.task_id, entry.route))
            if staged is not None and staged.items is not None:
                new = machines.task_on_workflow_request(
                    entry.status, status, staged.items.summary()
                )
                if new is not None:
                    state.set_status(entry, new)
        done = (
            current == st.PAUSED
            and status in (st.RUNNING, st.RESUMING)
            and not state.has_active_tasks()
            and state.staged_ready == 0
            and not state.has_status(st.PAUSED, st.PENDING)
        )
        new_status = machines.workflow_on_request(
            current, status, active=state.has_active_tasks(), done=done
        )
        if new_status is not None:
            self.set_status(new_status)
        updated = state.status
        if status == st.PAUSED and current == st.PAUSING and updated == st.PAUSING:
            return
        if status == st.CANCELED and current == st.CANCELING and updated == st.CANCELING:
            return
        if status != current and current == updated:
            raise WorkflowError(
                f'Unable to process event "workflow_{status}" for workflow in "{current}" status.'
            )

    # --- tasks ------------------------------------------------------------------------------

    def get_next_tasks(self) -> list[TaskRequest]:
        """Tasks to run now, rendered, sorted by task name and route.

        A task whose rendering fails is logged (with task id and route) and fails the
        workflow; then nothing is returned.
        """
        state = self.state
        ready = [s for s in state.staged.values() if s.ready and not s.completed]
        remediation = []
        if state.status == st.FAILED:
            remediation = [s for s in ready if s.run_on_fail]
        if state.status not in st.RUNNING_STATUSES and not remediation:
            return []
        requests: list[TaskRequest] = []
        failed = False
        for staged in remediation or ready:
            try:
                request = render_task(self, staged)
            except Exception as e:
                failed = True
                self.log_error(e, task_id=staged.task_id, route=staged.route)
                continue
            if request is not None:
                requests.append(request)
        if failed:
            self.fail()
            return []
        return sorted(requests, key=lambda r: (r.task_id, r.route))

    def update_task_state(
        self,
        task_id: str,
        route: int,
        status: str,
        result: Any = None,
        *,
        item_id: int | None = None,
    ) -> TaskEntry:
        """Report a status change of a task's action execution (or of one item).

        Args:
            task_id: the task.
            route: the route from the :class:`TaskRequest`.
            status: the execution status (requested, running, succeeded, failed, ...).
            result: the action result (for completions).
            item_id: the item, for with-items tasks.

        Returns:
            The task's entry after the event.

        Raises:
            WorkflowError: unknown task, task neither staged nor started, invalid status.
        """
        if status not in st.ALL_STATUSES:
            raise WorkflowError(f'Status "{status}" is not valid.')
        node = self.graph.nodes.get(task_id)
        if node is None:
            raise WorkflowError(f'Task "{task_id}" does not exist.')
        return update_task_state(self, node, route, status, result, item_id)

    def render_workflow_output(self) -> None:
        """Render ``output`` from the terminal context once the workflow has completed."""
        render_workflow_output(self)

    def request_workflow_rerun(self, tasks: list[RerunRequest] | None = None) -> None:
        """Prepare a completed workflow to run again from failed (or the given) tasks.

        The status becomes ``resuming``; :meth:`get_next_tasks` returns the tasks to rerun.

        Raises:
            WorkflowError: the workflow is still active, or a task does not exist.
        """
        request_workflow_rerun(self, tasks)
