"""The workflow engine's inbox: child completions and pause/resume/cancel requests.

A child's completion is recorded here in the transaction that ends the child; an event is
deleted in the transaction that applies it, so it is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import executions, workflow_events, workflow_executions

__all__ = [
    "WorkflowEvent",
    "add_event",
    "consume_events",
    "delete_events",
    "events_for",
    "existing_events",
    "has_scheduled",
    "pending_events",
    "pending_workflows",
    "unattended_canceling",
]

_E = workflow_events.c
_W = workflow_executions.c


@dataclass(frozen=True)
class WorkflowEvent:
    """One inbox entry: ``child`` (a child's status), ``pause``, ``resume`` or ``cancel``."""

    id: int
    workflow_id: str
    kind: str
    data: dict[str, Any]
    result: bytes | None


# The statements of every workflow transition, built once (building and keying a statement
# costs more than running it).
_ADD = workflow_events.insert()
_CONSUME_ONE = workflow_events.delete().where(_E.id == sa.bindparam("id"))
_EVENTS_FOR = (
    sa.select(workflow_events)
    .where(_E.workflow_id == sa.bindparam("workflow_id"))
    .order_by(_E.id)
    .limit(sa.bindparam("limit"))
)


def add_event(
    conn: Connection,
    workflow_id: str,
    kind: str,
    data: Mapping[str, Any],
    *,
    now: datetime,
    result: bytes | None = None,
) -> None:
    """Queue an event for a workflow run."""
    conn.execute(
        _ADD,
        {
            "workflow_id": workflow_id,
            "kind": kind,
            "data": dict(data),
            "result": result,
            "created_at": now,
        },
    )


def pending_workflows(conn: Connection, *, limit: int) -> list[str]:
    """Runs with queued events, the one waiting longest first."""
    first = sa.func.min(_E.id)
    stmt = sa.select(_E.workflow_id).group_by(_E.workflow_id).order_by(first).limit(limit)
    return [r.workflow_id for r in conn.execute(stmt).all()]


def pending_events(conn: Connection, *, limit: int) -> list[WorkflowEvent]:
    """The oldest queued events of every run (one query for a processing round)."""
    rows = conn.execute(sa.select(workflow_events).order_by(_E.id).limit(limit)).all()
    return [_event(r) for r in rows]


def _event(r: Any) -> WorkflowEvent:
    return WorkflowEvent(
        r.id, r.workflow_id, r.kind, dict(r.data), bytes(r.result) if r.result else None
    )


def consume_events(conn: Connection, events: Sequence[WorkflowEvent]) -> None:
    """Delete the events a transaction applied — by id: on PostgreSQL an event with a lower id
    may commit after a higher one was read, so an id range would drop it unseen."""
    if len(events) == 1:
        conn.execute(_CONSUME_ONE, {"id": events[0].id})
    elif events:
        conn.execute(workflow_events.delete().where(_E.id.in_([e.id for e in events])))


def events_for(conn: Connection, workflow_id: str, *, limit: int = 5000) -> list[WorkflowEvent]:
    """Queued events of one run, oldest first."""
    rows = conn.execute(_EVENTS_FOR, {"workflow_id": workflow_id, "limit": limit}).all()
    return [_event(r) for r in rows]


def existing_events(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Which of the events ``ids`` are still queued (not yet consumed by another engine)."""
    if not ids:
        return set()
    rows = conn.execute(sa.select(_E.id).where(_E.id.in_(list(ids)))).all()
    return {int(r.id) for r in rows}


def delete_events(conn: Connection, ids: Sequence[int]) -> None:
    """Consume events (in the transaction that applied them)."""
    if ids:
        conn.execute(workflow_events.delete().where(_E.id.in_(list(ids))))


def unattended_canceling(conn: Connection, *, limit: int) -> list[Any]:
    """``(id, runner_type)`` of canceling executions no runner holds and no workflow engine has
    acted on yet: workflows and inquiries whose cancellation was requested through the
    executions API, and paused (delayed) workflow tasks."""
    c = executions.c
    stmt = (
        sa.select(c.id, c.runner_type, _W.status.label("wf_status"))
        .select_from(executions.outerjoin(workflow_executions, _W.id == c.id))
        .where(
            c.status == "canceling",
            c.lease_owner.is_(None),
            sa.or_(_W.status.is_(None), _W.status.not_in(["canceling", "canceled"])),
        )
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def has_scheduled(conn: Connection, runner_types: Sequence[str]) -> bool:
    """Whether an execution of ``runner_types`` waits in ``scheduled`` (a cheap poll)."""
    c = executions.c
    stmt = (
        sa.select(c.id)
        .where(c.status == "scheduled", c.runner_type.in_(list(runner_types)))
        .limit(1)
    )
    return conn.execute(stmt).first() is not None
