"""The storage port: connections, transactions and group commit, for SQLite and PostgreSQL.

Repositories never open connections themselves. They receive an ``AsyncConnection`` from
:meth:`Database.read` (a read-only snapshot) or inside :meth:`Database.write` (one
transaction). Driver errors are translated to :class:`~squall.errors.StoreError` here.

SQLite has a single writer. Instead of making concurrent writers queue for the file lock, every
write is a small function handed to one writer task, which runs a batch of them in one
transaction and commits once (group commit): one fsync for many writes. A write function may
therefore run more than once (if a sibling in its batch fails, the batch is rolled back and each
function re-run alone) and must touch only the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from squall.errors import StoreError

__all__ = ["Database", "WriteFn", "async_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[AsyncConnection], Awaitable[T]]

_MAX_BATCH = 256


class _SiblingFailed(Exception):
    """Internal: a write in a group-commit batch failed; roll the batch back."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def async_url(url: str) -> str:
    """Map a user-facing URL to the async driver SQLAlchemy should use."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        return url
    raise StoreError(
        f"unsupported database URL {url.split('@')[-1]!r}",
        hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )


class Database:
    """Connections to the one database, with the write discipline for its backend."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._queue: asyncio.Queue[tuple[WriteFn[Any], asyncio.Future[Any]]] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._closed = False
        driver_url = async_url(url)
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.dialect == "sqlite":
            # One connection for the writer, a small pool of readers (WAL lets them run
            # concurrently with the writer).
            self._write_engine = create_async_engine(
                driver_url, pool_size=1, max_overflow=0, **common
            )
            self._read_engine = create_async_engine(
                driver_url, pool_size=4, max_overflow=4, **common
            )
            self._install_sqlite_hooks(self._write_engine, sqlite_synchronous, writer=True)
            self._install_sqlite_hooks(self._read_engine, sqlite_synchronous, writer=False)
        else:
            self._write_engine = create_async_engine(
                driver_url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                **common,
            )
            self._read_engine = self._write_engine

    # --- backend set-up ---------------------------------------------------------------------

    @staticmethod
    def _install_sqlite_hooks(engine: AsyncEngine, synchronous: str, *, writer: bool) -> None:
        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN is emitted when we say.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-32000")
            cur.close()

        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    @property
    def engine(self) -> AsyncEngine:
        """The engine used for writes (and migrations)."""
        return self._write_engine

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    # --- reads ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; everything read inside sees one consistent snapshot."""
        try:
            async with self._read_engine.connect() as conn:
                yield conn
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise StoreError(f"database read failed: {exc.orig!r}") from exc
        except OSError as exc:
            raise StoreError(f"database unreachable: {exc}") from exc

    # --- writes -----------------------------------------------------------------------------

    async def write(self, fn: WriteFn[T]) -> T:
        """Run ``fn`` inside one committed transaction and return its result.

        On SQLite ``fn`` is group-committed with other concurrent writes. Exceptions raised by
        ``fn`` roll back only its own changes and are re-raised here.
        """
        if self._closed:
            raise StoreError("the database is closed")
        if self.dialect != "sqlite":
            return await self._write_pg(fn)
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer_task = asyncio.get_running_loop().create_task(
                self._writer(), name="squall-sqlite-writer"
            )
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fn, fut))
        return await fut

    async def _write_pg(self, fn: WriteFn[T]) -> T:
        try:
            async with self._write_engine.begin() as conn:
                return await fn(conn)
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise StoreError(f"database write failed: {exc.orig!r}") from exc
        except OSError as exc:
            raise StoreError(f"database unreachable: {exc}") from exc

    async def _writer(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            batch = [item]
            while len(batch) < _MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [(fn, fut) for fn, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError("the database is closing"))
                raise
            except Exception as exc:  # pragma: no cover - last-resort safety net
                log.exception("sqlite writer failed")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError(f"database write failed: {exc!r}"))

    async def _run_batch(self, batch: list[tuple[WriteFn[Any], asyncio.Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            async with self._write_engine.begin() as conn:
                for fn, _fut in batch:
                    try:
                        results.append(await fn(conn))
                    except Exception as exc:
                        if len(batch) == 1:
                            raise
                        raise _SiblingFailed from exc  # rolls the whole batch back
        except _SiblingFailed:
            # One function failed and the transaction was rolled back. Re-run each alone so
            # only the failing one reports its error.
            for entry in batch:
                if not entry[1].cancelled():
                    await self._run_batch([entry])
            return
        except Exception as exc:
            # A single write failed, or the commit itself failed (then every write did).
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(self._translate(exc))
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    @staticmethod
    def _translate(exc: BaseException) -> BaseException:
        if isinstance(exc, IntegrityError):
            return exc
        if isinstance(exc, DBAPIError):
            return StoreError(f"database write failed: {exc.orig!r}")
        return exc

    # --- lifecycle --------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        """Finish queued writes, then dispose of the engines."""
        if self._closed:
            return
        self._closed = True
        if self._queue is not None and self._writer_task is not None:
            # Let the writer drain what is queued: a final no-op write is answered only
            # after everything queued before it.
            async def _noop(_conn: AsyncConnection) -> None:
                return None

            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait((_noop, fut))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fut, timeout=10)
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
        await self._write_engine.dispose()
        if self._read_engine is not self._write_engine:
            await self._read_engine.dispose()
