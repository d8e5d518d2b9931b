"""Status rules for tasks and workflows (Orquesta's state machines, written as rules).

Every function answers "what does this status become after that event", or None when the
event changes nothing. They are pure and table-free: each rule states the behaviour the
conductor relies on (fail fast, remediation, pause/cancel while tasks are still active,
with-items tasks that wait for their other items).

Squall is deliberately lenient in one place: a completion an engine reports (succeeded,
failed, timeout, abandoned, canceled) is always accepted for a task that is not yet
completed, where Orquesta silently ignores some of them (for instance ``succeeded`` while
``pausing``) and leaves the workflow stuck.
"""

from __future__ import annotations

from collections.abc import Iterable

from squall.workflow import statuses as st

__all__ = [
    "ItemsSummary",
    "summarize_items",
    "task_on_action",
    "task_on_item",
    "task_on_workflow_request",
    "workflow_on_request",
    "workflow_on_task",
]

_PRE_RUN = {
    st.UNSET: (st.REQUESTED, st.SCHEDULED, st.DELAYED, st.RUNNING, st.PENDING),
    st.REQUESTED: (st.SCHEDULED, st.DELAYED, st.RUNNING, st.PENDING),
    st.SCHEDULED: (st.DELAYED, st.RUNNING, st.PENDING),
    st.DELAYED: (st.SCHEDULED, st.RUNNING, st.PENDING),
}
_ALLOWED = {
    st.REQUESTED: {st.PAUSING, st.PAUSED, st.CANCELING},
    st.SCHEDULED: {st.PAUSING, st.PAUSED, st.CANCELING},
    st.DELAYED: {st.PAUSING, st.PAUSED, st.CANCELING},
    st.RUNNING: {st.RUNNING, st.PENDING, st.PAUSING, st.PAUSED, st.CANCELING},
    st.PENDING: set(),
    st.PAUSING: {st.PAUSED, st.RESUMING, st.CANCELING},
    st.PAUSED: {st.RUNNING, st.RESUMING, st.CANCELING},
    st.RESUMING: {st.RUNNING, st.CANCELING},
    st.RETRYING: {st.RUNNING, st.CANCELING},
    st.CANCELING: set(),
}
_ENGINE_COMMANDS = {"continue": st.SUCCEEDED, "noop": st.SUCCEEDED, "fail": st.FAILED}


def task_on_action(current: str, status: str) -> str | None:
    """New task status after an action (or engine command) event with ``status``.

    ``status`` may also be ``"continue"``, ``"noop"``, ``"fail"`` (engine commands, only from
    an unset task) or ``"retry"`` (only from a completed task).
    """
    if status in _ENGINE_COMMANDS:
        return _ENGINE_COMMANDS[status] if current == st.UNSET else None
    if status == "retry":
        return st.RETRYING if current in (st.SUCCEEDED, st.FAILED) else None
    if current in st.COMPLETED_STATUSES:
        return None
    if status in st.COMPLETED_STATUSES:
        if status in (st.TIMEOUT, st.ABANDONED):
            return st.FAILED
        if current == st.CANCELING and status == st.PAUSED:
            return st.CANCELED
        return status
    if current == st.CANCELING and status == st.PAUSED:
        return st.CANCELED
    if status in _PRE_RUN.get(current, ()):
        return status
    if status in _ALLOWED.get(current, ()):
        return status
    return None


class ItemsSummary:
    """How the *other* items of a with-items task stand, for an item event's rules."""

    __slots__ = ("active", "dormant_kind", "incomplete")

    def __init__(self, active: bool, dormant_kind: str, incomplete: bool) -> None:
        self.active = active
        #: one of paused, canceled, failed, incomplete, completed (meaningful when dormant)
        self.dormant_kind = dormant_kind
        self.incomplete = incomplete


def summarize_items(statuses: Iterable[str]) -> ItemsSummary:
    """Summarize item statuses the way the with-items rules need them."""
    active = paused = canceled = failed = incomplete = False
    for s in statuses:
        if s in st.ACTIVE_STATUSES:
            active = True
        if s not in st.COMPLETED_STATUSES:
            incomplete = True
        if s in (st.PENDING, st.PAUSED):
            paused = True
        elif s == st.CANCELED:
            canceled = True
        elif s in st.ABENDED_STATUSES:
            failed = True
    if paused:
        kind = "paused"
    elif canceled:
        kind = "canceled"
    elif failed:
        kind = "failed"
    else:
        kind = "incomplete" if incomplete else "completed"
    return ItemsSummary(active, kind, incomplete)


_ITEM_CONTEXT_STATUSES = frozenset(
    {
        st.RESUMING,
        st.PENDING,
        st.PAUSED,
        st.SUCCEEDED,
        st.FAILED,
        st.TIMEOUT,
        st.ABANDONED,
        st.CANCELED,
    }
)


def task_on_item(current: str, status: str, others: ItemsSummary) -> str | None:
    """New with-items task status after one item reported ``status``.

    A failed item fails the task only once no other item is active; a succeeded item
    completes it only when every item completed.
    """
    if status not in _ITEM_CONTEXT_STATUSES:
        return task_on_action(current, status)
    if current not in (st.RUNNING, st.PAUSING, st.CANCELING) or status == st.RESUMING:
        return None
    abended = status in st.ABENDED_STATUSES
    if others.active:
        if current != st.RUNNING:
            return None
        if status in (st.PENDING, st.PAUSED):
            return st.PAUSING
        if status == st.CANCELED:
            return st.CANCELING
        if status == st.SUCCEEDED:
            return st.RUNNING
        return None
    kind = others.dormant_kind
    if current == st.CANCELING:
        if status == st.SUCCEEDED and kind == "completed":
            return st.SUCCEEDED
        return st.CANCELED
    if status == st.CANCELED or kind == "canceled":
        return st.CANCELED
    if status in (st.PENDING, st.PAUSED):
        return st.FAILED if kind == "failed" else st.PAUSED
    if abended:
        return st.FAILED
    # An item succeeded and no other item is active.
    if kind == "paused":
        return st.PAUSED
    if kind == "failed":
        return st.FAILED
    if kind == "incomplete":
        return st.RUNNING if current == st.RUNNING else st.PAUSED
    return st.SUCCEEDED


def task_on_workflow_request(current: str, requested: str, items: ItemsSummary) -> str | None:
    """New status of an active with-items task when the workflow is paused or canceled."""
    if current != st.RUNNING or not items.incomplete:
        return None
    if requested in st.PAUSE_STATUSES:
        return st.PAUSING if items.active else st.PAUSED
    if requested in st.CANCEL_STATUSES:
        return st.CANCELING if items.active else st.CANCELED
    return None


_PRE_RUN_WORKFLOW = {
    st.UNSET: (st.REQUESTED, st.SCHEDULED, st.DELAYED, st.RUNNING),
    st.REQUESTED: (st.SCHEDULED, st.DELAYED, st.RUNNING),
    st.SCHEDULED: (st.DELAYED, st.RUNNING),
    st.DELAYED: (st.SCHEDULED, st.RUNNING),
}


def workflow_on_request(current: str, requested: str, *, active: bool, done: bool) -> str | None:
    """New workflow status after someone requests ``requested``.

    Args:
        current: the workflow status now.
        requested: the requested status.
        active: whether any task is active.
        done: whether a paused workflow has nothing left to run (resuming it completes it).
    """
    if requested == st.FAILED:
        return st.FAILED if current not in (st.FAILED, st.CANCELED) else None
    if current in _PRE_RUN_WORKFLOW:
        if requested in _PRE_RUN_WORKFLOW[current]:
            return requested
        if current != st.UNSET and not active:
            if requested in st.PAUSE_STATUSES:
                return st.PAUSED
            if requested in st.CANCEL_STATUSES:
                return st.CANCELED
        return None
    pause = st.PAUSING if active else st.PAUSED
    cancel = st.CANCELING if active else st.CANCELED
    if current == st.RUNNING:
        if requested in st.PAUSE_STATUSES:
            return pause
        if requested in st.CANCEL_STATUSES:
            return cancel
        return st.SUCCEEDED if requested == st.SUCCEEDED else None
    if current in (st.PAUSING, st.RESUMING):
        if requested in st.PAUSE_STATUSES:
            return pause
        if requested in st.CANCEL_STATUSES:
            return cancel
        if requested == st.RUNNING or (requested == st.RESUMING and current == st.PAUSING):
            return requested
        return None
    if current == st.PAUSED:
        if requested in (st.RUNNING, st.RESUMING):
            return st.SUCCEEDED if done else requested
        if requested in st.CANCEL_STATUSES and not active:
            return st.CANCELED
        return None
    if current == st.CANCELING and requested in st.CANCEL_STATUSES:
        return cancel
    return None


def workflow_on_task(
    current: str, task_status: str, *, remediated: bool, active: bool, outlook: str
) -> str | None:
    """New workflow status after a task changed to ``task_status``.

    Args:
        current: the workflow status now.
        task_status: the task's new status.
        remediated: the task failed but one of its transitions leads somewhere.
        active: whether any task is active.
        outlook: for completed tasks, what is left: ``canceled`` (some task canceling or
            canceled), ``paused`` (some task pausing, paused or pending), ``incomplete``
            (tasks staged or next tasks to run) or ``completed``.
    """
    event = "remediated" if remediated else task_status
    if event in (st.TIMEOUT, st.ABANDONED):
        event = st.FAILED
    settle = event in (st.SUCCEEDED, "remediated")
    if current == st.RUNNING:
        if event == st.PENDING:
            return st.PAUSING if active else st.PAUSED
        if event == st.PAUSED:
            return st.RUNNING if active else st.PAUSED
        if settle:
            if outlook == "canceled":
                return st.CANCELING if active else st.CANCELED
            if outlook == "paused":
                return st.PAUSING if active else st.PAUSED
            if outlook == "incomplete" or active:
                return st.RUNNING
            return st.SUCCEEDED
        return _abend_or_cancel(event, active, st.FAILED)
    if current == st.PAUSING:
        if event in (st.PENDING, st.PAUSED, st.RETRYING):
            return st.PAUSING if active else st.PAUSED
        if settle:
            if active:
                return (
                    st.CANCELING if event == "remediated" and outlook == "canceled" else st.PAUSING
                )
            return st.CANCELED if outlook == "canceled" else st.PAUSED
        return _abend_or_cancel(event, active, st.FAILED)
    if current == st.PAUSED:
        return st.RUNNING if event in (st.RUNNING, st.RESUMING) else None
    if current == st.RESUMING:
        if event == st.RUNNING:
            return st.RUNNING
        if event == st.PENDING:
            return st.PAUSING if active else st.PAUSED
        if settle:
            if active:
                return st.RUNNING if outlook in ("incomplete", "completed") else None
            return {
                "incomplete": st.RUNNING,
                "completed": st.SUCCEEDED,
                "paused": st.PAUSED,
                "canceled": st.CANCELED,
            }[outlook]
        return _abend_or_cancel(event, active, st.FAILED)
    if current == st.CANCELING:
        if event in (st.PENDING, st.PAUSED, st.RETRYING, st.FAILED, st.CANCELED):
            return st.CANCELING if active else st.CANCELED
        if settle:
            if active:
                return st.CANCELING if outlook in ("incomplete", "completed") else None
            return st.CANCELED
        return None
    return None


def _abend_or_cancel(event: str, active: bool, failed: str) -> str | None:
    if event == st.FAILED:
        return failed
    if event == st.CANCELING:
        return st.CANCELING
    if event == st.CANCELED:
        return st.CANCELING if active else st.CANCELED
    return None
