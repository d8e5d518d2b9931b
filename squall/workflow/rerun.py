"""Rerunning a completed workflow from its failed tasks, or from chosen tasks.

The state of the completed run is kept: the tasks to rerun get new entries (with-items tasks
reset their failed items, or all of them with ``reset_items``), their errors leave the log,
terminal tasks that still have somewhere to go are resumed, the output is cleared and the
workflow status becomes ``resuming``. ``get_next_tasks`` then returns the tasks to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from squall.errors import WorkflowError
from squall.workflow import statuses as st
from squall.workflow.requests import RerunRequest
from squall.workflow.state import TaskEntry, route_key

if TYPE_CHECKING:
    from squall.workflow.conductor import WorkflowConductor

__all__ = ["request_workflow_rerun"]


def request_workflow_rerun(wc: WorkflowConductor, tasks: list[RerunRequest] | None) -> None:
    """See :meth:`WorkflowConductor.request_workflow_rerun`."""
    state = wc.state
    if state.status not in st.COMPLETED_STATUSES:
        raise WorkflowError("Unable to rerun workflow because it is not in a completed state.")
    requests = {r.key: r for r in tasks or []}
    invalid = [r for r in requests.values() if (r.task_id, r.route) not in state.latest]
    if invalid:
        names = ", ".join(f"{r.task_id}|{r.route}" for r in invalid)
        raise WorkflowError(
            "Unable to rerun task|route(s) because it doesn't exist or isn't rerunnable: " + names
        )
    if not requests:
        candidates = {
            route_key(e.task_id, e.route): e
            for e in wc.get_terminal_tasks()
            # An engine command ("fail") is not something to run again.
            if e.status in st.ABENDED_STATUSES and not wc.graph.nodes[e.task_id].is_engine_command
        }
    else:
        keep = _collapse(wc, requests)
        candidates = {
            key: state.latest[(r.task_id, r.route)] for key, r in requests.items() if key in keep
        }
    state.reruns.append([e.idx for e in candidates.values()])
    for entry in sorted(candidates.values(), key=lambda e: (e.task_id, e.route)):
        key = route_key(entry.task_id, entry.route)
        reset_items = requests[key].reset_items if key in requests else False
        _rerun_task(wc, entry, reset_items)
    for entry in wc.get_terminal_tasks():
        if any(entry.next.values()):
            state.set_term(entry, False)
    state.output = None
    wc.set_status(st.RESUMING)
    state.mark_header()


def _successors(wc: WorkflowConductor, task_id: str, route: int) -> list[TaskEntry]:
    """Entries that some entry of ``task_id`` on ``route`` led to directly."""
    sources = {e.idx for e in wc.state.sequence if e.task_id == task_id and e.route == route}
    return [e for e in wc.state.sequence if any(v in sources for v in e.prev.values())]


def _collapse(wc: WorkflowConductor, requests: dict[str, RerunRequest]) -> set[str]:
    """Drop requested tasks that the rerun of another requested task already covers."""
    reach = {
        key: {wc.state.latest[(r.task_id, r.route)].idx}
        | {e.idx for e in _successors(wc, r.task_id, r.route)}
        for key, r in requests.items()
    }
    if len(reach) <= 1:
        return set(reach)
    return {key for key, mine in reach.items() if any(mine - other for other in reach.values())}


def _rerun_task(wc: WorkflowConductor, entry: TaskEntry, reset_items: bool) -> None:
    state = wc.state
    node = wc.graph.nodes[entry.task_id]
    state.set_term(entry, False)
    staged = state.staged.get((entry.task_id, entry.route))
    if staged is not None:
        state.set_staged_flags(staged, completed=False)
    state.remove_errors(entry.task_id)
    if node.items is not None and staged is not None and staged.items is not None:
        staged.items.reset(everything=reset_items)
        state.touch_items(staged)
        state.touch_staged(staged)
    elif staged is None:
        # The first status reported for it creates its new entry (as for a cycle).
        state.add_staged(entry.task_id, entry.route, entry.ctx, entry.prev, ready=True)
    for successor in _successors(wc, entry.task_id, entry.route):
        state.set_term(successor, False)
