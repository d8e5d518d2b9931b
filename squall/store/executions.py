"""Executions: the queue between API, scheduler and runner hosts, and the history users read.

An execution row *is* the work item: the scheduler claims ``requested`` rows, runner hosts
claim ``scheduled`` rows with a lease, and finishing writes the result in the same
transaction as the status change. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on
SQLite the single writer makes select-then-update atomic. Every write that changes what users
see stamps a stream position (``squall/store/stream.py``) in the same statement.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from squall.model.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ExecutionStatus
from squall.store import stream as positions
from squall.store.schema import execution_output, executions, rule_enforcements, trigger_instances

__all__ = [
    "Execution",
    "ExecutionFilter",
    "OutputChunk",
    "abandon",
    "append_output",
    "claim_requested",
    "claim_scheduled",
    "count",
    "decode_result",
    "encode_result",
    "expired_leases",
    "finish",
    "finish_many",
    "get",
    "get_many",
    "insert",
    "list_executions",
    "new_row",
    "owned_by",
    "read_output",
    "renew_leases",
    "request_cancel",
    "set_status",
]

_COMPRESS_ABOVE = 4096

_S = ExecutionStatus


def encode_result(value: Any) -> tuple[bytes, int]:
    """Serialize a result document; large ones are compressed. Returns (blob, json size)."""
    raw = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    if len(raw) > _COMPRESS_ABOVE:
        return b"z" + zlib.compress(raw, 6), len(raw)
    return b"j" + raw, len(raw)


def decode_result(blob: bytes | None) -> Any:
    """Inverse of :func:`encode_result`."""
    if blob is None:
        return None
    blob = bytes(blob)
    kind, body = blob[:1], blob[1:]
    if kind == b"z":
        body = zlib.decompress(body)
    return orjson.loads(body)


@dataclass
class Execution:
    """One execution row. ``result`` is decoded on demand (it may be large)."""

    id: str
    action_ref: str
    action_snapshot: str
    runner_type: str
    status: str
    parameters: dict[str, Any]
    context: dict[str, Any]
    notify: dict[str, Any] | None
    log: list[dict[str, Any]]
    user: str
    parent_id: str | None
    root_id: str | None
    trace_tag: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    not_before: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempt: int
    result_size: int = 0
    result_blob: bytes | None = field(default=None, repr=False)

    @property
    def result(self) -> Any:
        return decode_result(self.result_blob)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_row(cls, row: Any) -> Execution:
        m = row._mapping
        return cls(
            id=m["id"],
            action_ref=m["action_ref"],
            action_snapshot=m["action_snapshot"],
            runner_type=m["runner_type"],
            status=m["status"],
            parameters=m["parameters"],
            context=m["context"],
            notify=m["notify"],
            log=m["log"],
            user=m["user"],
            parent_id=m["parent_id"],
            root_id=m["root_id"],
            trace_tag=m["trace_tag"],
            created_at=m["created_at"],
            started_at=m["started_at"],
            ended_at=m["ended_at"],
            not_before=m["not_before"],
            lease_owner=m["lease_owner"],
            lease_expires_at=m["lease_expires_at"],
            attempt=m["attempt"],
            result_size=m["result_size"],
            result_blob=m.get("result"),
        )


_LIGHT_COLUMNS = [c for c in executions.c if c.name != "result"]


def _log_entry(status: str, now: datetime) -> dict[str, Any]:
    return {"status": status, "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def insert(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new executions (each a full row mapping, see :func:`new_row`)."""
    if rows:
        conn.execute(positions.insert_into(conn, executions), list(rows))


def new_row(
    *,
    id: str,
    action_ref: str,
    action_snapshot: str,
    runner_type: str,
    parameters: Mapping[str, Any],
    context: Mapping[str, Any],
    user: str,
    now: datetime,
    notify: Mapping[str, Any] | None = None,
    parent_id: str | None = None,
    root_id: str | None = None,
    trace_tag: str | None = None,
    not_before: datetime | None = None,
    status: str = _S.REQUESTED,
    attempt: int = 0,
) -> dict[str, Any]:
    """Build the row for a new execution."""
    return {
        "id": id,
        "action_ref": action_ref,
        "action_snapshot": action_snapshot,
        "runner_type": runner_type,
        "status": status,
        "parameters": dict(parameters),
        "context": dict(context),
        "notify": dict(notify) if notify else None,
        "result": None,
        "result_size": 0,
        "log": (
            [_log_entry(_S.REQUESTED, now), _log_entry(status, now)]
            if status == _S.SCHEDULED
            else [_log_entry(status, now)]
        ),
        "user": user,
        "parent_id": parent_id,
        "root_id": root_id or id,
        "trace_tag": trace_tag,
        "created_at": now,
        "started_at": None,
        "ended_at": None,
        "not_before": not_before,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempt": attempt,
        "team": None,
    }


def get(conn: Connection, execution_id: str, *, with_result: bool = True) -> Execution | None:
    cols = list(executions.c) if with_result else _LIGHT_COLUMNS
    row = (conn.execute(sa.select(*cols).where(executions.c.id == execution_id))).first()
    return Execution.from_row(row) if row else None


def get_many(conn: Connection, ids: Iterable[str], *, with_result: bool = False) -> list[Execution]:
    ids = list(ids)
    if not ids:
        return []
    cols = list(executions.c) if with_result else _LIGHT_COLUMNS
    rows = (conn.execute(sa.select(*cols).where(executions.c.id.in_(ids)))).all()
    return [Execution.from_row(r) for r in rows]


@dataclass
class ExecutionFilter:
    """Filters for listing executions (StackStorm's query parameters)."""

    action: str | None = None
    status: Sequence[str] = ()
    user: str | None = None
    parent: str | None = None
    #: Only top-level executions (no parent).
    root_only: bool = False
    created_after: datetime | None = None
    created_before: datetime | None = None
    runner: str | None = None
    ids: Sequence[str] = ()
    #: Executions requested by a rule (ref or id), for a trigger instance, or for a trigger
    #: (ref) or trigger type: looked up through the rule enforcements.
    rule: str | None = None
    trigger_instance: str | None = None
    trigger: str | None = None
    trigger_type: str | None = None
    created_at: datetime | None = None

    def _enforced(self) -> sa.ColumnElement[bool] | None:
        if not (self.rule or self.trigger_instance or self.trigger or self.trigger_type):
            return None
        re_ = rule_enforcements.c
        sub = sa.select(re_.execution_id).where(re_.execution_id.is_not(None))
        if self.rule:
            sub = sub.where(sa.or_(re_.rule_ref == self.rule, re_.rule_id == self.rule))
        if self.trigger_instance:
            sub = sub.where(re_.trigger_instance_id == self.trigger_instance)
        if self.trigger or self.trigger_type:
            ti = trigger_instances.c
            inst = sa.select(ti.id)
            if self.trigger:
                inst = inst.where(ti.trigger == self.trigger)
            if self.trigger_type:
                inst = inst.where(ti.trigger_type == self.trigger_type)
            sub = sub.where(re_.trigger_instance_id.in_(inst))
        return executions.c.id.in_(sub)

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        c = executions.c
        out: list[sa.ColumnElement[bool]] = []
        enforced = self._enforced()
        if enforced is not None:
            out.append(enforced)
        if self.created_at:
            out.append(c.created_at == self.created_at)
        if self.action:
            out.append(c.action_ref == self.action)
        if self.status:
            out.append(c.status.in_(list(self.status)))
        if self.user:
            out.append(c.user == self.user)
        if self.parent:
            out.append(c.parent_id == self.parent)
        if self.root_only:
            out.append(c.parent_id.is_(None))
        if self.created_after:
            out.append(c.created_at >= self.created_after)
        if self.created_before:
            out.append(c.created_at <= self.created_before)
        if self.runner:
            out.append(c.runner_type == self.runner)
        if self.ids:
            out.append(c.id.in_(list(self.ids)))
        return out


def list_executions(
    conn: Connection,
    flt: ExecutionFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    ascending: bool = False,
    with_result: bool = False,
) -> list[Execution]:
    """Executions matching ``flt``, newest first unless ``ascending``."""
    cols = list(executions.c) if with_result else _LIGHT_COLUMNS
    order = (
        (executions.c.created_at.asc(), executions.c.id.asc())
        if ascending
        else (executions.c.created_at.desc(), executions.c.id.desc())
    )
    stmt = sa.select(*cols).where(*flt.clauses()).order_by(*order).limit(limit).offset(offset)
    rows = (conn.execute(stmt)).all()
    return [Execution.from_row(r) for r in rows]


def count(conn: Connection, flt: ExecutionFilter) -> int:
    stmt = sa.select(sa.func.count()).select_from(executions).where(*flt.clauses())
    return int((conn.execute(stmt)).scalar_one())


# --- state transitions ------------------------------------------------------------------------


def _lock_select(
    conn: Connection,
    where: Sequence[sa.ColumnElement[bool]],
    limit: int,
    *,
    skip_locked: bool = True,
) -> list[Any]:
    """Select and lock rows. Claims skip rows other claimers hold; by-id updates wait."""
    stmt = (
        sa.select(*_LIGHT_COLUMNS)
        .where(*where)
        .order_by(executions.c.created_at, executions.c.id)
        .limit(limit)
        .with_for_update(skip_locked=skip_locked)
    )
    return list((conn.execute(stmt)).all())


def _apply_transitions(conn: Connection, rows: list[Execution], values: Mapping[str, Any]) -> None:
    """Write the new status (already set on each row) plus ``values`` and the extended log."""
    if not rows:
        return
    stmt = (
        executions.update()
        .where(executions.c.id == sa.bindparam("b_id"))
        .values(
            status=sa.bindparam("b_status"),
            log=sa.bindparam("b_log"),
            **values,
            **positions.update_values(conn),
        )
    )
    conn.execute(stmt, [{"b_id": r.id, "b_status": r.status, "b_log": r.log} for r in rows])


def claim_requested(conn: Connection, *, now: datetime, limit: int = 200) -> list[Execution]:
    """Take requested (and due delayed) executions for scheduling; marks them ``scheduled``.

    The caller (the scheduler) may then move some to ``delayed`` or ``canceled`` by policy.
    """
    c = executions.c
    due = sa.or_(c.not_before.is_(None), c.not_before <= now)
    rows = _lock_select(
        conn,
        [c.status.in_([_S.REQUESTED, _S.DELAYED]), due],
        limit,
    )
    claimed = [Execution.from_row(r) for r in rows]
    for ex in claimed:
        ex.status = _S.SCHEDULED
        ex.log = [*ex.log, _log_entry(_S.SCHEDULED, now)]
    _apply_transitions(conn, claimed, {})
    return claimed


def claim_scheduled(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    runner_types: Sequence[str] | None = None,
) -> list[Execution]:
    """Take scheduled executions to run; marks them ``running`` under ``owner``'s lease."""
    if limit <= 0:
        return []
    c = executions.c
    where: list[sa.ColumnElement[bool]] = [c.status == _S.SCHEDULED]
    if runner_types is not None:
        where.append(c.runner_type.in_(list(runner_types)))
    rows = _lock_select(conn, where, limit)
    claimed = [Execution.from_row(r) for r in rows]
    for ex in claimed:
        ex.status = _S.RUNNING
        ex.log = [*ex.log, _log_entry(_S.RUNNING, now)]
        ex.lease_owner = owner
        ex.lease_expires_at = lease_until
        ex.started_at = now
    _apply_transitions(
        conn, claimed, {"lease_owner": owner, "lease_expires_at": lease_until, "started_at": now}
    )
    return claimed


def finish(
    conn: Connection,
    execution_id: str,
    *,
    status: str,
    result: Any,
    now: datetime,
    owner: str | None = None,
) -> Execution | None:
    """Record a terminal status and result.

    With ``owner`` the write only happens while that runner still holds the lease (a runner
    whose lease expired and whose execution was abandoned must not resurrect it). Returns the
    updated execution, or ``None`` when nothing was written.
    """
    done = finish_many(conn, [(execution_id, status, result)], now=now, owner=owner)
    return done[0] if done else None


def finish_many(
    conn: Connection,
    items: Sequence[tuple[str, str, Any]],
    *,
    now: datetime,
    owner: str | None = None,
) -> list[Execution]:
    """Record terminal statuses and results for ``(id, status, result)`` items at once.

    Items whose execution is already terminal (or, with ``owner``, no longer held by that
    runner) are skipped. A ``canceling`` execution that succeeded or failed is reported
    ``canceled``. Returns the executions written.
    """
    if not items:
        return []
    for _id, status, _result in items:
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal status")
    wanted = {i: (st, res) for i, st, res in items}
    lock, update = _finish_statements(conn.dialect.name)
    rows = conn.execute(lock, {"ids": list(wanted)}).all()
    done: list[Execution] = []
    params: list[dict[str, Any]] = []
    for row in rows:
        # Filtered here rather than in SQL: one cached statement serves every call.
        if row.status not in ACTIVE_STATUSES or (owner is not None and row.lease_owner != owner):
            continue
        ex = Execution.from_row(row)
        status, result = wanted[ex.id]
        if ex.status == _S.CANCELING and status in (_S.SUCCEEDED, _S.FAILED):
            # Cancellation was requested: the outcome is reported as canceled.
            status = _S.CANCELED
        blob, size = encode_result(result)
        ex.status = status
        ex.log = [*ex.log, _log_entry(status, now)]
        ex.ended_at = now
        ex.result_blob = blob
        ex.result_size = size
        ex.lease_owner = None
        ex.lease_expires_at = None
        done.append(ex)
        params.append(
            {
                "b_id": ex.id,
                "b_status": status,
                "b_log": ex.log,
                "b_result": blob,
                "b_size": size,
                "b_now": now,
            }
        )
    if params:
        conn.execute(update, params)
    return done


_FINISH: dict[str, tuple[sa.Select[Any], sa.Update]] = {}


def _finish_statements(dialect: str) -> tuple[sa.Select[Any], sa.Update]:
    """The lock and the update of :func:`finish_many`, built once per dialect (building and
    keying a statement costs more than running it on the hot path of every execution)."""
    stmts = _FINISH.get(dialect)
    if stmts is None:
        c = executions.c
        lock = (
            sa.select(*_LIGHT_COLUMNS)
            .where(c.id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(c.created_at, c.id)
            .with_for_update()
        )
        update = (
            executions.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                log=sa.bindparam("b_log"),
                ended_at=sa.bindparam("b_now"),
                result=sa.bindparam("b_result"),
                result_size=sa.bindparam("b_size"),
                lease_owner=None,
                lease_expires_at=None,
                **positions.dialect_update_values(dialect),
            )
        )
        stmts = _FINISH[dialect] = (lock, update)
    return stmts


def set_status(
    conn: Connection,
    execution_id: str,
    *,
    status: str,
    now: datetime,
    expected: Sequence[str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Execution | None:
    """Move one execution to a non-terminal ``status`` (if it is in ``expected``)."""
    c = executions.c
    where: list[sa.ColumnElement[bool]] = [c.id == execution_id]
    if expected is not None:
        where.append(c.status.in_(list(expected)))
    rows = _lock_select(conn, where, 1, skip_locked=False)
    if not rows:
        return None
    ex = Execution.from_row(rows[0])
    ex.status = status
    ex.log = [*ex.log, _log_entry(status, now)]
    conn.execute(
        executions.update()
        .where(c.id == execution_id)
        .values(status=status, log=ex.log, **dict(values or {}), **positions.update_values(conn))
    )
    return ex


def request_cancel(
    conn: Connection, execution_id: str, *, now: datetime
) -> tuple[Execution | None, bool]:
    """Ask for cancellation. Returns (execution, changed).

    Not-yet-running executions are canceled at once; running ones become ``canceling`` and
    their runner kills the action; terminal ones are left alone (changed=False).
    """
    ex = get(conn, execution_id, with_result=False)
    if ex is None or ex.is_terminal or ex.status == _S.CANCELING:
        return ex, False
    if ex.status in (_S.REQUESTED, _S.SCHEDULED, _S.DELAYED):
        done = finish(conn, execution_id, status=_S.CANCELED, result=None, now=now)
        return done, done is not None
    updated = set_status(
        conn,
        execution_id,
        status=_S.CANCELING,
        now=now,
        expected=[_S.RUNNING, _S.PENDING, _S.PAUSING, _S.PAUSED, _S.RESUMING],
    )
    return updated, updated is not None


def owned_by(conn: Connection, owner: str, *, statuses: Sequence[str]) -> list[tuple[str, str]]:
    """(id, status) of the executions ``owner`` holds in one of ``statuses``."""
    c = executions.c
    rows = conn.execute(
        sa.select(c.id, c.status).where(c.lease_owner == owner, c.status.in_(list(statuses)))
    )
    return [(r.id, r.status) for r in rows]


def renew_leases(conn: Connection, owner: str, ids: Sequence[str], until: datetime) -> int:
    """Extend ``owner``'s leases on ``ids``; returns how many it still holds."""
    if not ids:
        return 0
    c = executions.c
    res = conn.execute(
        executions.update()
        .where(c.id.in_(list(ids)), c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return int(res.rowcount or 0)


def expired_leases(conn: Connection, *, now: datetime, limit: int = 500) -> list[Execution]:
    """Running executions whose runner stopped renewing its lease."""
    c = executions.c
    rows = _lock_select(
        conn,
        [
            c.status.in_([_S.RUNNING, _S.CANCELING]),
            c.lease_expires_at.is_not(None),
            c.lease_expires_at < now,
        ],
        limit,
    )
    return [Execution.from_row(r) for r in rows]


def abandon(conn: Connection, execution_id: str, *, now: datetime, reason: str) -> Execution | None:
    """Mark an execution whose runner died as ``abandoned`` (or ``canceled`` if asked)."""
    ex = get(conn, execution_id, with_result=False)
    if ex is None or ex.is_terminal:
        return None
    status = _S.CANCELED if ex.status == _S.CANCELING else _S.ABANDONED
    return finish(conn, execution_id, status=status, result={"error": reason}, now=now)


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputChunk:
    id: int
    execution_id: str
    stream: str
    data: str
    created_at: datetime


def append_output(
    conn: Connection, chunks: Sequence[tuple[str, str, str]], *, now: datetime
) -> None:
    """Store output chunks ``(execution_id, stream, data)`` in order."""
    if chunks:
        conn.execute(
            positions.insert_into(conn, execution_output),
            [{"execution_id": e, "stream": s, "data": d, "created_at": now} for e, s, d in chunks],
        )


def read_output(
    conn: Connection,
    execution_id: str,
    *,
    after_id: int = 0,
    stream: str | None = None,
    limit: int = 10000,
) -> list[OutputChunk]:
    """Output chunks of one execution after chunk ``after_id``, oldest first."""
    o = execution_output.c
    stmt = sa.select(execution_output).where(o.execution_id == execution_id, o.id > after_id)
    if stream:
        stmt = stmt.where(o.stream == stream)
    rows = (conn.execute(stmt.order_by(o.id).limit(limit))).all()
    return [OutputChunk(r.id, r.execution_id, r.stream, r.data, r.created_at) for r in rows]
