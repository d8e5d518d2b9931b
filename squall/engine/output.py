"""Buffered, batched storage of execution output.

Runners produce output in small pieces; writing each as its own row and transaction would
dominate the cost of short actions. The buffer coalesces consecutive pieces of the same
stream and flushes every ``interval`` seconds in one write, so ``squall execution tail``
sees output within about ``interval``. The last pieces of an execution are written in the
same transaction as its result (see :meth:`OutputBuffer.take`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Connection

from squall.store import executions as exrepo
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["BufferSink", "OutputBuffer"]

log = logging.getLogger(__name__)

_MAX_CHUNK = 64 * 1024


class OutputBuffer:
    """Pending output of all executions of one runner host."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 0.1,
        on_flush: Callable[[list[tuple[str, str, str]]], None] | None = None,
    ) -> None:
        self.db = db
        self.interval = interval
        self.on_flush = on_flush
        self._pending: list[tuple[str, str, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    def write(self, execution_id: str, stream: str, data: str) -> None:
        if not data:
            return
        last = self._pending[-1] if self._pending else None
        if (
            last is not None
            and last[0] == execution_id
            and last[1] == stream
            and len(last[2]) + len(data) <= _MAX_CHUNK
        ):
            self._pending[-1] = (execution_id, stream, last[2] + data)
        else:
            self._pending.append((execution_id, stream, data))
        self._wake.set()

    async def take(self, execution_id: str) -> list[tuple[str, str, str]]:
        """Remove and return the pending pieces of one execution (in order).

        Waits for a flush in flight first, so pieces already handed to the database are
        committed before the caller commits anything after them (the result).
        """
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._inflight)
        mine = [c for c in self._pending if c[0] == execution_id]
        if mine:
            self._pending = [c for c in self._pending if c[0] != execution_id]
        return mine

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        now = utcnow()

        def _write(conn: Connection) -> None:
            exrepo.append_output(conn, batch, now=now)

        self._inflight = asyncio.ensure_future(self.db.write(_write))
        try:
            await self._inflight
        except Exception:
            # Put the batch back in front so nothing is lost; the next flush retries.
            self._pending[:0] = batch
            raise
        finally:
            self._inflight = None
        if self.on_flush:
            self.on_flush(batch)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("could not store execution output; will retry")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="output-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()


class BufferSink:
    """The :class:`~squall.runners.base.OutputSink` of one execution."""

    def __init__(self, buffer: OutputBuffer, execution_id: str) -> None:
        self._buffer = buffer
        self._execution_id = execution_id

    async def write(self, stream: str, data: str) -> None:
        self._buffer.write(self._execution_id, stream, data)
