"""Rows written by many concurrent requests, inserted together.

A webhook's trigger instance is one small row, committed before the 202. Under a burst,
hundreds of them arrive at once; on PostgreSQL each ``INSERT`` is a round trip through the
driver, so one transaction per webhook — or even one statement per webhook inside a shared
transaction — costs more than the webhook itself. :class:`RowBatcher` collects the rows that
arrive while the previous insert is in flight and writes them with one multi-row statement
in one transaction; each caller returns once its row is committed. If that write fails, each
row is written again alone, so one bad row fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from squall.store.db import Database

__all__ = ["RowBatcher"]

InsertFn = Callable[[Connection, Sequence[Mapping[str, Any]]], None]


class RowBatcher:
    """Insert rows from concurrent callers with one statement per batch."""

    MAX_ROWS = 500

    def __init__(self, db: Database, insert: InsertFn, *, lanes: int = 2) -> None:
        self.db = db
        self.insert = insert
        self.lanes = lanes
        self._queue: list[tuple[Mapping[str, Any], asyncio.Future[None]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def add(self, row: Mapping[str, Any]) -> None:
        """Insert ``row``; returns once it is committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append((row, fut))
        if len(self._running) < self.lanes:
            task = loop.create_task(self._lane(), name="row-batcher")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        await fut

    def _writer(self, rows: Sequence[Mapping[str, Any]]) -> Callable[[Connection], None]:
        def _write(conn: Connection) -> None:
            self.insert(conn, rows)

        return _write

    async def _lane(self) -> None:
        while self._queue:
            batch = [(r, f) for r, f in self._queue[: self.MAX_ROWS] if not f.cancelled()]
            del self._queue[: self.MAX_ROWS]
            if not batch:
                continue
            rows = [r for r, _ in batch]
            outcomes: list[BaseException | None]
            try:
                await self.db.write(self._writer(rows))
                outcomes = [None] * len(batch)
            except Exception as exc:
                if len(rows) == 1:
                    outcomes = [exc]
                else:
                    results = await asyncio.gather(
                        *(self.db.write(self._writer([row])) for row in rows),
                        return_exceptions=True,
                    )
                    outcomes = [r if isinstance(r, BaseException) else None for r in results]
            for (_, fut), error in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
