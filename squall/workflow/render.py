"""Rendering: the initial context (inputs, vars), task requests, and the workflow output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from squall.workflow import statuses as st
from squall.workflow.expressions import ExpressionEvaluationError, compile_value
from squall.workflow.functions import EvalScope
from squall.workflow.items import ItemsTracker
from squall.workflow.requests import ActionRequest, TaskRequest
from squall.workflow.state import StagedTask, merge_dicts

if TYPE_CHECKING:
    from squall.workflow.conductor import WorkflowConductor

__all__ = ["render_task", "render_workflow_output", "start_workflow", "terminal_context"]


def start_workflow(wc: WorkflowConductor) -> None:
    """Render inputs and vars into the initial context and stage the start tasks.

    Rendering errors are logged and fail the workflow before anything runs.
    """
    state = wc.state
    rolling: dict[str, Any] = dict(state.parent_context)
    errors: list[Exception] = []

    def scope() -> EvalScope:
        return EvalScope(rolling, state=wc, kv_lookup=wc.kv_lookup, kv_misses=wc.kv_misses)

    for name, default, _has_default in wc.workflow.inputs:
        value = compile_value(state.inputs[name]) if name in state.inputs else default
        try:
            rolling[name] = value.evaluate(scope())
        except ExpressionEvaluationError as e:
            errors.append(e)
    for name, compiled in wc.workflow.vars:
        try:
            rolling[name] = compiled.evaluate(scope())
        except ExpressionEvaluationError as e:
            errors.append(e)
    if errors:
        for error in errors:
            wc.log_error(error)
        wc.set_status(st.FAILED)
        return
    state.add_context(rolling, {})
    state.routes.append([])
    for root in wc.graph.roots:
        state.add_staged(root, 0, 0, {}, ready=True)


def render_task(wc: WorkflowConductor, staged: StagedTask) -> TaskRequest | None:
    """Render a staged task into a request; None when a with-items task has nothing to start.

    Raises:
        Exception: any rendering error (the caller logs it and fails the workflow).
    """
    node = wc.graph.nodes[staged.task_id]
    task = {"id": staged.task_id, "route": staged.route}
    scope = wc.scope(staged.ctx, task=task)
    delay = _delay(wc, staged, scope)
    if node.items is None:
        assert node.action is not None and node.input is not None
        action = ActionRequest(node.action.evaluate(scope), node.input.evaluate(scope))
        return TaskRequest(
            staged.task_id, staged.route, (action,), delay, retry=staged.retry is not None
        )
    tracker = staged.items
    if tracker is None:
        tracker = _start_items(wc, staged, scope)
    actions = []
    for item_id in tracker.next_to_start():
        item_scope = wc.scope(staged.ctx, task=task, item=tracker.values[item_id])
        assert node.action is not None and node.input is not None
        actions.append(
            ActionRequest(
                node.action.evaluate(item_scope), node.input.evaluate(item_scope), item_id
            )
        )
    if not actions and tracker.count:
        return None
    return TaskRequest(
        staged.task_id,
        staged.route,
        tuple(actions),
        delay,
        items_count=tracker.count,
        concurrency=tracker.concurrency,
        retry=staged.retry is not None,
    )


def _delay(wc: WorkflowConductor, staged: StagedTask, scope: EvalScope) -> int | None:
    if staged.retry is not None:
        return int(staged.retry.get("delay") or 0)
    node = wc.graph.nodes[staged.task_id]
    if node.delay is None:
        return None
    value = node.delay.evaluate(scope)
    if not value:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("The value of task delay is not type of integer.")
    return value


def _start_items(wc: WorkflowConductor, staged: StagedTask, scope: EvalScope) -> ItemsTracker:
    node = wc.graph.nodes[staged.task_id]
    items_spec = node.spec.items
    assert node.items is not None and items_spec is not None
    values = node.items.evaluate(scope)
    if not isinstance(values, list):
        raise TypeError(f'The value of "{items_spec.expression}" is not type of list.')
    keys = items_spec.keys
    if keys:
        values = [
            dict(zip(keys, v, strict=False))
            if isinstance(v, list | tuple)
            else ({keys[0]: v} if len(keys) == 1 else v)
            for v in values
        ]
    concurrency = node.concurrency.evaluate(scope) if node.concurrency is not None else None
    if concurrency is not None and (
        not isinstance(concurrency, int) or isinstance(concurrency, bool)
    ):
        raise TypeError("The value of with items concurrency is not type of integer.")
    tracker = ItemsTracker(values, concurrency)
    staged.items = tracker
    wc.state.touch_staged(staged)
    wc.state.touch_items(staged)
    return tracker


def terminal_context(wc: WorkflowConductor) -> dict[str, Any]:
    """The context the workflow ended with: the first terminal task's context plus what
    the other terminal tasks' branches published."""
    terms = sorted(wc.state.terms)
    if not terms:
        return {}
    contexts, sequence = wc.state.contexts, wc.state.sequence
    merged: dict[str, Any] = contexts[sequence[terms[0]].ctx]["merged"]
    for idx in terms[1:]:
        merged = merge_dicts(merged, contexts[sequence[idx].ctx]["delta"])
    return merged


def render_workflow_output(wc: WorkflowConductor) -> None:
    """Render the output entry by entry; a failing entry is logged, left out, and fails the
    workflow (unless it was canceled)."""
    state = wc.state
    if state.status not in st.COMPLETED_STATUSES or state.output:
        return
    rolling = dict(terminal_context(wc))
    outputs: dict[str, Any] = {}
    errors: list[Exception] = []
    for name, compiled in wc.workflow.output:
        scope = EvalScope(rolling, state=wc, kv_lookup=wc.kv_lookup, kv_misses=wc.kv_misses)
        try:
            value = compiled.evaluate(scope)
        except ExpressionEvaluationError as e:
            errors.append(e)
            continue
        rolling[name] = value
        outputs[name] = value
    if outputs:
        state.output = outputs
        state.mark_header()
    if errors:
        for error in errors:
            wc.log_error(error)
        if state.status not in (st.TIMEOUT, st.ABANDONED, st.CANCELED):
            wc.fail()
