"""Stream positions: "what changed since X" as one indexed range query.

Every write that changes an execution (insert, status change, result) or adds an output chunk
stamps the row's ``seq`` column with a fresh *position* in the same statement — no extra row,
no extra write. Positions only grow, in commit order, so a reader that remembers the last
position it saw finds every later change with ``seq > cursor``. An execution keeps only its
latest position (the stream reports its latest state); ``created_seq`` remembers the position
it was inserted at, so readers can tell a new execution from an updated one.

How a position is made:

* **SQLite** has one writer at a time, so ``max(seq) + 1`` over both tables (two index
  look-ups) is unique and in commit order. Nothing is kept in memory: it is right after a
  restart, after a group-commit batch is rolled back and re-run, and with other processes
  writing the file. Each row must get its own statement execution (``executemany``), never a
  multi-row ``VALUES`` list, or the rows of one statement would share a value.
* **PostgreSQL** commits concurrent transactions in any order, so a plain sequence is not
  enough: a reader could pass number 100 while the transaction holding 99 is still open. The
  position is ``xid8 << 20 | n`` — the writing transaction's id, then ``n`` = 1, 2, 3 … in
  statement order inside that transaction (a transaction-local setting counts). Readers only
  consume positions below ``xmin << 20``, where ``xmin`` is the oldest transaction still
  running: everything below it has committed or rolled back for good, and every transaction
  still to come has a larger id. The stream therefore lags the oldest open write transaction
  in the cluster (normally milliseconds). A transaction may stamp up to 2**20 - 1 rows (more
  share the last number).

Old rows migrated from before revision 0004 have no position and are not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.store.schema import execution_output, executions

if TYPE_CHECKING:
    from squall.store.executions import Execution, OutputChunk

__all__ = [
    "TXN_SHIFT",
    "Changes",
    "ExecutionChange",
    "OutputChange",
    "head",
    "insert_values",
    "read_changes",
    "read_output_between",
    "update_values",
]

#: Bits of a PostgreSQL position below the transaction id.
TXN_SHIFT = 20
_MAX_N = (1 << TXN_SHIFT) - 1

_PG_NEXT = (
    f"((pg_current_xact_id()::text::bigint << {TXN_SHIFT}) | least(set_config("
    "'squall.stream_n', (coalesce(nullif(current_setting('squall.stream_n', true), ''), '0')"
    f"::bigint + 1)::text, true)::bigint, {_MAX_N}))"
)
_PG_HORIZON = f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {TXN_SHIFT})"


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def next_position(conn: Connection) -> sa.ColumnElement[int]:
    """SQL for a fresh position, evaluated once per row written."""
    if _is_pg(conn):
        return sa.literal_column(_PG_NEXT, sa.BigInteger)
    top_e = sa.select(sa.func.max(executions.c.seq)).scalar_subquery()
    top_o = sa.select(sa.func.max(execution_output.c.seq)).scalar_subquery()
    # max(a, b) is SQLite's two-argument scalar max (NULL if either is NULL).
    return sa.func.max(sa.func.coalesce(top_e, 0), sa.func.coalesce(top_o, 0)) + 1


def insert_values(conn: Connection) -> dict[str, Any]:
    """``.values(...)`` for an INSERT into ``executions`` or ``execution_output``."""
    return {"seq": next_position(conn)}


def update_values(conn: Connection) -> dict[str, Any]:
    """``.values(...)`` for an UPDATE of ``executions`` that changes what users see.

    The right-hand sides read the row's values from before the update, so ``created_seq``
    keeps the insert position on the first update.
    """
    c = executions.c
    return {"seq": next_position(conn), "created_seq": sa.func.coalesce(c.created_seq, c.seq)}


def _horizon(conn: Connection) -> int | None:
    """Positions below this are final (PostgreSQL); ``None``: every committed one is."""
    if not _is_pg(conn):
        return None
    return int(conn.execute(sa.text(f"SELECT {_PG_HORIZON}")).scalar_one())


def head(conn: Connection) -> int:
    """The newest final position (0 when there is none)."""
    return _head(conn, _horizon(conn))


def _head(conn: Connection, horizon: int | None) -> int:
    if horizon is not None:
        # Everything below the horizon is final, whether or not a row still holds it.
        return horizon - 1
    top = 0
    for col in (executions.c.seq, execution_output.c.seq):
        top = max(top, int(conn.execute(sa.select(sa.func.max(col))).scalar() or 0))
    return top


@dataclass
class ExecutionChange:
    """An execution changed at ``pos`` (its latest state); ``created`` is its insert position."""

    pos: int
    created: int
    execution: Execution
    #: Memo for renderers (one rendering shared by every subscriber).
    cache: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class OutputChange:
    """An output chunk stored at ``pos``, with the action and runner of its execution."""

    pos: int
    chunk: OutputChunk
    action_ref: str
    runner_type: str
    cache: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Changes:
    """Changes after a cursor, in position order; continue from ``end``.

    ``complete`` is False when a limit cut the read short (read again from ``end``).
    """

    executions: list[ExecutionChange]
    output: list[OutputChange]
    end: int
    complete: bool


def read_changes(
    conn: Connection,
    after: int,
    *,
    limit: int = 500,
    with_executions: bool = True,
    with_output: bool = True,
    execution_ids: Sequence[str] = (),
    action_refs: Sequence[str] = (),
) -> Changes:
    """Executions and output chunks changed after position ``after`` (up to ``limit`` each).

    The optional filters narrow the read for a replay; the result is complete for them.
    """
    from squall.store.executions import Execution, OutputChunk

    horizon = _horizon(conn)
    e, o = executions.c, execution_output.c
    ex_rows: list[Any] = []
    out_rows: list[Any] = []
    if with_executions:
        where: list[sa.ColumnElement[bool]] = [e.seq > after]
        if horizon is not None:
            where.append(e.seq < horizon)
        if execution_ids:
            where.append(e.id.in_(list(execution_ids)))
        if action_refs:
            where.append(e.action_ref.in_(list(action_refs)))
        stmt = sa.select(executions).where(*where).order_by(e.seq).limit(limit)
        ex_rows = list(conn.execute(stmt).all())
    if with_output:
        where = [o.seq > after]
        if horizon is not None:
            where.append(o.seq < horizon)
        if execution_ids:
            where.append(o.execution_id.in_(list(execution_ids)))
        if action_refs:
            where.append(e.action_ref.in_(list(action_refs)))
        stmt = (
            sa.select(execution_output, e.action_ref, e.runner_type)
            .join(executions, e.id == o.execution_id)
            .where(*where)
            .order_by(o.seq)
            .limit(limit)
        )
        out_rows = list(conn.execute(stmt).all())

    # A limited read is complete only up to the last position of each list that hit it.
    cuts = [rows[-1].seq for rows in (ex_rows, out_rows) if len(rows) >= limit]
    if cuts:
        end = min(cuts)
        complete = False
    else:
        end = max(after, _head(conn, horizon))
        complete = True
    changes = Changes(
        executions=[
            ExecutionChange(
                pos=r.seq,
                created=r.created_seq if r.created_seq is not None else r.seq,
                execution=Execution.from_row(r),
            )
            for r in ex_rows
            if r.seq <= end
        ],
        output=[
            OutputChange(
                pos=r.seq,
                chunk=OutputChunk(r.id, r.execution_id, r.stream, r.data, r.created_at),
                action_ref=r.action_ref,
                runner_type=r.runner_type,
            )
            for r in out_rows
            if r.seq <= end
        ],
        end=end,
        complete=complete,
    )
    return changes


def read_output_between(
    conn: Connection, execution_id: str, *, after: int | None = None, until: int | None = None
) -> list[tuple[int, OutputChunk]]:
    """``(position, chunk)`` of one execution's output stored after position ``after`` and up
    to ``until`` (either bound optional), in order; chunks from before revision 0004 have
    position 0."""
    from squall.store.executions import OutputChunk

    o = execution_output.c
    pos = sa.func.coalesce(o.seq, 0)
    stmt = sa.select(execution_output, pos.label("pos")).where(o.execution_id == execution_id)
    if after is not None:
        stmt = stmt.where(pos > after)
    if until is not None:
        stmt = stmt.where(pos <= until)
    rows = conn.execute(stmt.order_by(pos, o.id)).all()
    return [
        (int(r.pos), OutputChunk(r.id, r.execution_id, r.stream, r.data, r.created_at))
        for r in rows
    ]
