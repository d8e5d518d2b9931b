"""Processing one task (or item) status change: the heart of the conductor.

For a completed task this evaluates its transitions in order (``when``, then ``publish``),
stages the next tasks on the right route (a task reached from several places splits the
workflow into routes; a join collects its inbound branches), runs engine commands
(``continue``, ``noop``, ``fail``) inline, applies the retry policy, and moves the workflow
status (fail fast, remediation, pause/cancel while tasks are active). The rules follow
Orquesta's conductor; the bookkeeping is indexed so one event costs the same whatever the
workflow's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from squall.errors import WorkflowError
from squall.workflow import machines
from squall.workflow import statuses as st
from squall.workflow.expressions import ExpressionEvaluationError, compile_value
from squall.workflow.functions import EvalScope
from squall.workflow.graph import Edge, Node
from squall.workflow.joins import NOT_SATISFIED, SATISFIED
from squall.workflow.spec import ENGINE_COMMANDS
from squall.workflow.state import StagedTask, TaskEntry, merge_dicts

if TYPE_CHECKING:
    from squall.workflow.conductor import WorkflowConductor

__all__ = ["UnreachableJoinError", "update_task_state"]

_EVENT_STATUS = {
    "continue": st.SUCCEEDED,
    "noop": st.SUCCEEDED,
    "fail": st.FAILED,
    "retry": st.RETRYING,
}
FAILED_MESSAGE = "Execution failed. See result for details."


class UnreachableJoinError(WorkflowError):
    """A join was partially satisfied but can no longer be reached."""

    def __init__(self, task_id: str, route: int) -> None:
        super().__init__(
            f'The join task|route "{task_id}|{route}" is partially satisfied but unreachable.'
        )


def update_task_state(
    wc: WorkflowConductor,
    node: Node,
    route: int,
    event: str,
    result: Any = None,
    item_id: int | None = None,
) -> TaskEntry:
    """Apply one event (an action status, an item status or an engine command) to a task."""
    state = wc.state
    task_id = node.name
    engine_queue: list[tuple[str, int]] = []
    staged = state.staged.get((task_id, route))
    entry = state.latest.get((task_id, route))
    if staged is None and entry is None:
        raise WorkflowError(f'Task "{task_id}" is not staged or has not started yet.')
    event_status = _EVENT_STATUS.get(event, event)
    if entry is None or node.is_engine_command:
        assert staged is not None
        entry = _new_entry(wc, node, staged)
    elif entry.status in st.COMPLETED_STATUSES and event_status in st.STARTING_STATUSES:
        if staged is None:
            raise WorkflowError(f'Task "{task_id}" is not staged or has not started yet.')
        entry = _new_entry(wc, node, staged)  # re-entered through a cycle
    if staged is not None and staged.items is None:
        state.remove_staged(task_id, route)
    tracker = staged.items if staged is not None and item_id is not None else None
    if tracker is not None and staged is not None:
        has_result = event_status in st.COMPLETED_STATUSES or result is not None
        tracker.set_status(item_id, event_status, result, has_result)  # type: ignore[arg-type]
        state.touch_items(staged)
    if event_status == st.FAILED:
        wc.log_entry("error", FAILED_MESSAGE, task_id=task_id, result=result)
    old = entry.status
    if tracker is not None:
        new = machines.task_on_item(old, event_status, tracker.summary(exclude=item_id))
    else:
        new = machines.task_on_action(old, event)
    if new is not None:
        state.set_status(entry, new)
        if node.feeds_joins:
            wc.joins.source_changed(task_id, route)
    new_status = entry.status
    if new_status == st.RETRYING and entry.retry is not None:
        entry.retry["tally"] += 1
        state.touch(entry)
        state.remove_staged(task_id, route)
        state.add_staged(task_id, route, entry.ctx, entry.prev, ready=True, retry=dict(entry.retry))
    scope: EvalScope | None = None
    if new_status in st.COMPLETED_STATUSES:
        task_result = _task_result(node, staged, item_id, result)
        if node.items is not None and new_status in st.ABENDED_STATUSES:
            current = state.staged.get((task_id, route))
            if current is not None:
                state.set_staged_flags(current, completed=True)
        else:
            state.remove_staged(task_id, route)
        entry.result, entry.has_result = task_result, True
        state.touch(entry)
        scope = wc.scope(entry.ctx, task={"id": task_id, "route": route, "result": task_result})
        if state.status in st.ACTIVE_STATUSES and _retry_due(wc, entry, scope):
            return update_task_state(wc, node, route, "retry")
    if new_status in st.COMPLETED_STATUSES and new_status != old and scope is not None:
        _transitions(wc, node, entry, route, scope, engine_queue)
    _workflow_on_task(wc, entry, route)
    for command, command_route in engine_queue:
        update_task_state(wc, wc.graph.nodes[command], command_route, command)
    if state.status in st.COMPLETED_STATUSES:
        state.set_term(entry, True)
    return entry


def _task_result(node: Node, staged: StagedTask | None, item_id: int | None, result: Any) -> Any:
    if node.items is None:
        return result
    if item_id is not None and staged is not None and staged.items is not None:
        return staged.items.result_list()
    return result or []


def _new_entry(wc: WorkflowConductor, node: Node, staged: StagedTask) -> TaskEntry:
    entry = wc.state.add_entry(node.name, staged.route, staged.ctx, staged.prev)
    if node.retry is not None:
        entry.retry = _setup_retry(wc, node, entry)
    if node.feeds_joins:
        wc.joins.source_changed(node.name, staged.route)
    return entry


def _setup_retry(wc: WorkflowConductor, node: Node, entry: TaskEntry) -> dict[str, Any] | None:
    assert node.retry is not None
    retry = {
        "when": node.retry.when,
        "count": node.retry.count,
        "delay": node.retry.delay,
        "tally": 0,
    }
    scope = wc.scope(entry.ctx)
    try:
        for key in ("delay", "count"):
            if isinstance(retry[key], str):
                value = compile_value(retry[key]).evaluate(scope)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f'The retry {key} for task "{node.name}" is not an integer.')
                retry[key] = value
    except Exception as e:
        wc.log_error(e, task_id=node.name, route=entry.route)
        wc.fail()
        return None
    return retry


def _retry_due(wc: WorkflowConductor, entry: TaskEntry, scope: EvalScope) -> bool:
    retry = entry.retry
    if retry is None or retry["tally"] >= retry["count"]:
        return False
    if retry["when"] is None:
        return entry.status in st.ABENDED_STATUSES
    try:
        return bool(compile_value(retry["when"]).evaluate(scope))
    except Exception as e:
        wc.log_error(e, task_id=entry.task_id, route=entry.route)
        wc.fail()
        return False


def _transitions(
    wc: WorkflowConductor,
    node: Node,
    entry: TaskEntry,
    route: int,
    scope: EvalScope,
    engine_queue: list[tuple[str, int]],
) -> None:
    state = wc.state
    manual_fail = False
    ready_next: list[StagedTask] = []
    if not node.out_edges:
        state.set_term(entry, True)
    for edge in node.out_edges:
        tid = edge.transition_id
        try:
            criteria = edge.compiled_criteria
            satisfied = True if criteria is None else bool(criteria.evaluate(scope))
        except Exception as e:
            wc.log_error(e, task_id=node.name, route=route, task_transition_id=tid)
            wc.fail()
            continue
        entry.next[tid] = satisfied
        state.touch(entry)
        if node.feeds_joins:
            wc.joins.source_changed(node.name, route)
        if not satisfied:
            continue
        out_ctx, errors = _publish(wc, edge, entry, scope)
        if errors:
            for error in errors:
                wc.log_error(error, task_id=node.name, route=route, task_transition_id=tid)
            wc.fail()
            continue
        target = _stage(wc, edge, entry, route, out_ctx)
        if edge.dst in ENGINE_COMMANDS:
            engine_queue.append((edge.dst, target.route))
            manual_fail = manual_fail or edge.dst == "fail"
        elif target.ready:
            ready_next.append(target)
    if manual_fail:
        # "do: cleanup, fail": the cleanup still runs although the workflow has failed.
        for target in ready_next:
            target.run_on_fail = True
            state.touch_staged(target)


def _publish(
    wc: WorkflowConductor, edge: Edge, entry: TaskEntry, scope: EvalScope
) -> tuple[int, list[Exception]]:
    if not edge.publish:
        return entry.ctx, []
    rolling = dict(scope.vars)
    new: dict[str, Any] = {}
    errors: list[Exception] = []
    for name, compiled in edge.publish:
        try:
            value = compiled.evaluate(scope.with_vars(rolling))
        except ExpressionEvaluationError as e:
            errors.append(e)
            continue
        rolling[name] = value
        new[name] = value
    if errors:
        return entry.ctx, errors
    snapshot = wc.state.contexts[entry.ctx]
    return wc.state.add_context(
        merge_dicts(snapshot["merged"], new), merge_dicts(snapshot["delta"], new)
    ), []


def _stage(
    wc: WorkflowConductor, edge: Edge, entry: TaskEntry, route: int, out_ctx: int
) -> StagedTask:
    state = wc.state
    next_route = _route(wc, edge, route)
    target = state.staged.get((edge.dst, next_route))
    if target is not None:
        # A join collecting another branch: merge what that branch published.
        delta = state.contexts[out_ctx]["delta"]
        if delta:
            base = state.contexts[target.ctx]
            target.ctx = state.add_context(
                merge_dicts(base["merged"], delta), merge_dicts(base["delta"], delta)
            )
        target.prev[edge.route_id] = entry.idx
        target.items = None
        state.set_staged_flags(target, completed=False)
    else:
        target = state.add_staged(
            edge.dst, next_route, out_ctx, {edge.route_id: entry.idx}, ready=False
        )
    dst = wc.graph.nodes[edge.dst]
    ready = dst.barrier is None or wc.joins.status(edge.dst, route) == SATISFIED
    state.set_staged_flags(target, ready=ready)
    return target


def _route(wc: WorkflowConductor, edge: Edge, route: int) -> int:
    if not wc.graph.nodes[edge.dst].splits:
        return route
    details = wc.state.routes[route]
    if edge.route_id in details:
        return route
    wc.state.routes.append([*details, edge.route_id])
    wc.state.mark_header()
    return len(wc.state.routes) - 1


def has_next_tasks(wc: WorkflowConductor, task_id: str, route: int) -> bool:
    """Whether a completed task has a fired transition that leads somewhere (not continue)."""
    entry = wc.state.latest.get((task_id, route))
    if entry is None or entry.status not in st.COMPLETED_STATUSES:
        return False
    for edge in wc.graph.nodes[task_id].out_edges:
        if edge.dst == "continue" or not entry.next.get(edge.transition_id):
            continue
        is_join = wc.graph.nodes[edge.dst].barrier is not None
        if is_join and wc.joins.status(edge.dst, route) == NOT_SATISFIED:
            continue
        return True
    return False


def _workflow_on_task(wc: WorkflowConductor, entry: TaskEntry, route: int) -> None:
    state = wc.state
    status = entry.status
    remediated = status in st.ABENDED_STATUSES and has_next_tasks(wc, entry.task_id, route)
    outlook = "completed"
    if status == st.SUCCEEDED or remediated:
        if state.has_status(st.CANCELING, st.CANCELED):
            outlook = "canceled"
        elif state.has_status(st.PAUSING, st.PAUSED, st.PENDING):
            outlook = "paused"
        elif state.staged_ready > 0 or has_next_tasks(wc, entry.task_id, route):
            outlook = "incomplete"
    new = machines.workflow_on_task(
        state.status,
        status,
        remediated=remediated,
        active=state.has_active_tasks(),
        outlook=outlook,
    )
    if new is None:
        return
    wc.set_status(new)
    # Orquesta also checks (and fails) a canceled workflow; a cancel should stay a cancel.
    if state.status in (st.SUCCEEDED, st.FAILED):
        check_unreachable_joins(wc)


def check_unreachable_joins(wc: WorkflowConductor) -> None:
    """Fail the workflow for joins that got some inbound branches but can never run."""
    unreachable = [
        staged
        for staged in wc.state.staged.values()
        if wc.graph.nodes[staged.task_id].barrier is not None
        and not staged.ready
        and wc.joins.status(staged.task_id, staged.route, final=True) == NOT_SATISFIED
    ]
    if not unreachable:
        return
    wc.set_status(st.FAILED)
    for staged in unreachable:
        error = UnreachableJoinError(staged.task_id, staged.route)
        wc.log_error(error, task_id=staged.task_id, route=staged.route)
