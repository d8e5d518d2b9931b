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
  consume positions below ``horizon << 20``, where ``horizon`` is the oldest write transaction
  still running in this database: everything below it has committed or rolled back for good,
  and every transaction still to come has a larger id. The stream therefore lags the oldest
  open write transaction of the database (normally milliseconds; an ``idle in transaction``
  session stalls it until it ends). Transactions of other databases in the cluster do not
  count. A transaction may stamp up to 2**20 - 1 rows (more share the last number), and the
  scheme holds until transaction ids pass 2**43.

Old rows migrated from before revision 0004 have no position and are not replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    "insert_into",
    "insert_values",
    "read_changes",
    "read_output_between",
    "update_values",
]

#: Bits of a PostgreSQL position below the transaction id.
TXN_SHIFT = 20
_MAX_N = (1 << TXN_SHIFT) - 1

# Built once: constructing SQLAlchemy expressions per statement costs more than running them,
# and plain SQL text keeps the statement cache key cheap.
_PG_NEXT = sa.literal_column(
    f"((pg_current_xact_id()::text::bigint << {TXN_SHIFT}) | least(set_config("
    "'squall.stream_n', (coalesce(nullif(current_setting('squall.stream_n', true), ''), '0')"
    f"::bigint + 1)::text, true)::bigint, {_MAX_N}))",
    sa.BigInteger,
)
# max(a, b) is SQLite's two-argument scalar max; each max(seq) is one index look-up.
_SQLITE_NEXT = sa.literal_column(
    "(max(coalesce((SELECT max(seq) FROM executions), 0), "
    "coalesce((SELECT max(seq) FROM execution_output), 0)) + 1)",
    sa.BigInteger,
)
_KEEP_CREATED = sa.literal_column("coalesce(created_seq, seq)", sa.BigInteger)
# The oldest transaction still running *in this database* (pg_snapshot_xmin would be the
# oldest in the whole cluster: a long transaction elsewhere would stall the stream). An
# in-progress xid is skipped only when pg_stat_activity shows it in another database; an xid
# it cannot place (no privilege to see, prepared, just finished) counts, to stay safe.
_PG_HORIZON = f"""
SELECT coalesce(
    (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
     WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a
        WHERE a.datname <> current_database()
          AND a.backend_xid::text::bigint = (x::text::bigint & 4294967295))),
    pg_snapshot_xmax(s.snap))::text::bigint << {TXN_SHIFT}
FROM (SELECT pg_current_snapshot() AS snap) AS s
"""

_INSERT = {"postgresql": {"seq": _PG_NEXT}, "sqlite": {"seq": _SQLITE_NEXT}}
_UPDATE = {
    "postgresql": {"seq": _PG_NEXT, "created_seq": _KEEP_CREATED},
    "sqlite": {"seq": _SQLITE_NEXT, "created_seq": _KEEP_CREATED},
}


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def next_position(conn: Connection) -> sa.ColumnElement[int]:
    """SQL for a fresh position, evaluated once per row written."""
    return _PG_NEXT if _is_pg(conn) else _SQLITE_NEXT


def insert_values(conn: Connection) -> Mapping[str, Any]:
    """``.values(...)`` for an INSERT into ``executions`` or ``execution_output``."""
    return _INSERT[conn.dialect.name]


_INSERTS: dict[tuple[str, str], sa.Insert] = {}


def insert_into(conn: Connection, table: sa.Table) -> sa.Insert:
    """``table.insert()`` stamping new rows with a position (built once per dialect)."""
    key = (table.name, conn.dialect.name)
    stmt = _INSERTS.get(key)
    if stmt is None:
        stmt = _INSERTS[key] = table.insert().values(**insert_values(conn))
    return stmt


def update_values(conn: Connection) -> Mapping[str, Any]:
    """``.values(...)`` for an UPDATE of ``executions`` that changes what users see.

    The right-hand sides read the row's values from before the update, so ``created_seq``
    keeps the insert position on the first update.
    """
    return _UPDATE[conn.dialect.name]


def dialect_update_values(dialect: str) -> Mapping[str, Any]:
    """:func:`update_values` by dialect name (for statements built ahead of a connection)."""
    return _UPDATE[dialect]


def _horizon(conn: Connection) -> int | None:
    """Positions below this are final (PostgreSQL); ``None``: every committed one is."""
    if not _is_pg(conn):
        return None
    return int(conn.execute(sa.text(_PG_HORIZON)).scalar_one())


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
