"""The storage port: transactions for SQLite and PostgreSQL, with group commit on SQLite.

Repository functions are plain synchronous SQLAlchemy Core code taking a ``Connection``. The
port runs each one inside a transaction and awaits the result:

* **SQLite** — functions run in threads with the ``sqlite3`` driver: writes in one writer
  thread, reads in a small pool of reader threads (WAL lets readers run beside the writer). A
  transaction costs one hand-off between the event loop and a thread, not one per statement.
  Writes are *group-committed*: the writer takes every write queued so far, runs them in one
  transaction and commits once. A write function may therefore run more than once (when a
  sibling in its batch fails, the batch is rolled back and each function re-run alone) and
  must only touch the database.
* **PostgreSQL** — functions run through ``AsyncConnection.run_sync`` over asyncpg, one
  transaction each; PostgreSQL does its own group commit. A write whose connection was lost
  before its commit is run again on a fresh connection (the same contract as SQLite's group
  commit: a write function may run more than once). Wake-ups signalled inside a write
  (:func:`signals_in_transaction`) are handed to :attr:`Database.on_commit_signals` after the
  commit, so another process is woken only when the work is visible to it.

Driver errors are translated to :class:`~squall.errors.StoreError` here; ``IntegrityError``
passes through for repositories that expect it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from squall.errors import StoreError

__all__ = [
    "Connection",
    "Database",
    "ReadFn",
    "WriteFn",
    "after_commit",
    "async_url",
    "describe_url",
    "signals_in_transaction",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[Connection], T]
ReadFn = Callable[[Connection], T]

_MAX_BATCH = 256
_READERS = 4
#: Batched PostgreSQL writes commit in up to this many transactions at once: while one
#: batch commits, the next one is already being written.
_PG_LANES = 2

#: Wake-up channels signalled inside the PostgreSQL write transaction running in this context.
_TX_SIGNALS: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "squall_tx_signals", default=None
)


_AFTER_COMMIT = "squall_after_commit"


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` on the event loop once the transaction of ``conn`` has committed.

    Callbacks of a transaction that rolls back (including a group-commit batch that is
    retried write by write) are discarded, so work started from them only ever refers to
    committed rows.
    """
    conn.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _take_after_commit(conn: Connection) -> list[Callable[[], None]]:
    callbacks: list[Callable[[], None]] = conn.info.pop(_AFTER_COMMIT, [])
    return callbacks


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a post-commit callback must not break the writer
            log.exception("after-commit callback failed")


def _collecting(conn: Connection, fn: WriteFn[T], callbacks: list[Callable[[], None]]) -> T:
    """Run ``fn`` and move the after-commit callbacks it registered into ``callbacks``."""
    _take_after_commit(conn)  # leftovers of an earlier use of the pooled connection
    value = fn(conn)
    callbacks.extend(_take_after_commit(conn))
    return value


def signals_in_transaction() -> set[str] | None:
    """The channel set of the PostgreSQL write running in this context, or ``None``.

    A wake-up raised inside a write adds its channel here; it is sent after the commit.
    """
    return _TX_SIGNALS.get()


def describe_url(url: str) -> str:
    """The URL without credentials, for messages: ``postgresql://HOST:PORT/DB``."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.split('+')[0]}://{rest.rsplit('@', 1)[-1]}"


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means a pooled connection died (not the statement, not a new connect)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def async_url(url: str) -> str:
    """Map a user-facing URL to the driver SQLAlchemy should use."""
    if url.startswith("sqlite:"):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+asyncpg:"):
        return url
    raise StoreError(
        f"unsupported database URL {url.split('@')[-1]!r}",
        hint="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    )


class _SiblingFailed(Exception):
    """Internal: a write in a group-commit batch failed; roll the batch back."""


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, IntegrityError):
        return exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return StoreError(f"database connection lost: {exc.orig!r}")
        return StoreError(f"database error: {exc.orig!r}")
    if isinstance(exc, OSError):
        return StoreError(f"database unreachable: {exc}")
    return exc


#: Connection failures worth waiting out: refused, reset, timed out, server starting or
#: shutting down (SQLSTATE 57P01-57P03). Bad credentials or an unknown database are not.
_RETRYABLE = (
    "database unreachable",
    "database connection lost",
    "CannotConnectNow",
    "AdminShutdown",
    "CrashShutdown",
    "ConnectionDoesNotExist",
    "TooManyConnections",
    "TimeoutError",
    "ConnectionResetError",
    "ConnectionRefusedError",
)


def _retryable(exc: StoreError) -> bool:
    text = str(exc)
    return any(marker in text for marker in _RETRYABLE)


class Database:
    """Transactions on the one database, with the write discipline for its backend."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5) -> None:
        self.url = url
        #: Called with the wake-up channels signalled inside a write, after it committed.
        self.on_commit_signals: Callable[[set[str]], None] | None = None
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._closed = False
        #: Called with the number of writes in each committed group (metrics).
        self.on_batch: Callable[[int], None] | None = None
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        self._sync_write: Engine | None = None
        self._sync_read: Engine | None = None
        self._async: AsyncEngine | None = None
        self._pg_batch: list[tuple[WriteFn[Any], asyncio.Future[Any]]] = []
        self._pg_lanes: set[asyncio.Task[None]] = set()
        if self.dialect == "sqlite":
            self._sync_write = sa.create_engine(
                url,
                pool_size=1,
                max_overflow=0,
                connect_args={"check_same_thread": False},
                **common,
            )
            self._sync_read = sa.create_engine(
                url,
                pool_size=_READERS,
                max_overflow=0,
                connect_args={"check_same_thread": False},
                **common,
            )
            self._install_sqlite_hooks(self._sync_write, sqlite_synchronous, writer=True)
            self._install_sqlite_hooks(self._sync_read, sqlite_synchronous, writer=False)
            self._write_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="squall-sqlite-writer"
            )
            self._read_threads = concurrent.futures.ThreadPoolExecutor(
                max_workers=_READERS, thread_name_prefix="squall-sqlite-reader"
            )
            self._queue: asyncio.Queue[tuple[WriteFn[Any], asyncio.Future[Any]]] | None = None
            self._writer_task: asyncio.Task[None] | None = None
        else:
            # No pre-ping (a round trip per transaction): a connection found dead is
            # invalidated with the rest of the pool and the transaction runs again.
            self._async = create_async_engine(
                async_url(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=3600,
                **common,
            )

    # --- backend set-up ---------------------------------------------------------------------

    @staticmethod
    def _install_sqlite_hooks(engine: Engine, synchronous: str, *, writer: bool) -> None:
        @event.listens_for(engine, "connect")
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

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    # --- transactions -----------------------------------------------------------------------

    async def read(self, fn: ReadFn[T]) -> T:
        """Run ``fn`` on a read-only snapshot and return its result."""
        if self._closed:
            raise StoreError("the database is closed")
        if self._sync_read is not None:
            engine = self._sync_read

            def _run() -> T:
                with engine.connect() as conn:
                    return fn(conn)

            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._read_threads, _run)
            except (DBAPIError, OSError) as exc:
                raise _translate(exc) from exc
        assert self._async is not None
        for attempt in (1, 2):
            try:
                async with self._async.connect() as aconn:
                    return await aconn.run_sync(fn)
            except (DBAPIError, OSError) as exc:
                if attempt == 1 and _is_disconnect(exc):
                    log.warning("database connection lost; reading again on a new one")
                    continue
                raise _translate(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def write(self, fn: WriteFn[T], *, batch: bool = False) -> T:
        """Run ``fn`` inside one committed transaction and return its result.

        On SQLite ``fn`` is group-committed with other concurrent writes. On PostgreSQL it is
        too when ``batch`` is set: use it for small independent writes that take no row locks
        others wait for (webhook and trigger instance inserts), so a burst shares a few
        transactions instead of paying BEGIN/COMMIT each. An exception raised by ``fn`` rolls
        back only its own changes and is re-raised here.
        """
        if self._closed:
            raise StoreError("the database is closed")
        if self._async is not None:
            if batch:
                return await self._write_pg_batched(fn)
            return await self._write_pg(fn)
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer_task = loop.create_task(self._writer(), name="squall-sqlite-writer")
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put_nowait((fn, fut))
        return await fut

    async def _write_pg(self, fn: WriteFn[T]) -> T:
        assert self._async is not None
        for attempt in (1, 2):
            signals: set[str] = set()
            token = _TX_SIGNALS.set(signals)
            committing = False
            callbacks: list[Callable[[], None]] = []
            try:
                async with self._async.begin() as aconn:
                    result = await aconn.run_sync(_collecting, fn, callbacks)
                    committing = True
            except IntegrityError:
                raise
            except (DBAPIError, OSError) as exc:
                # Lost before the commit was sent: nothing was written, run it again once.
                if attempt == 1 and not committing and _is_disconnect(exc):
                    log.warning("database connection lost; running the transaction again")
                    continue
                raise _translate(exc) from exc
            finally:
                _TX_SIGNALS.reset(token)
            if signals and self.on_commit_signals is not None:
                self.on_commit_signals(signals)
            _run_callbacks(callbacks)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_pg_batched(self, fn: WriteFn[T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pg_batch.append((fn, fut))
        if len(self._pg_lanes) < _PG_LANES:
            lane = loop.create_task(self._pg_batches(), name="squall-pg-batcher")
            self._pg_lanes.add(lane)
            lane.add_done_callback(self._pg_lanes.discard)
        return await fut

    async def _pg_batches(self) -> None:
        """Write what was queued meanwhile in one transaction, one batch at a time."""
        while self._pg_batch:
            batch = [(f, fut) for f, fut in self._pg_batch[:_MAX_BATCH] if not fut.cancelled()]
            del self._pg_batch[:_MAX_BATCH]
            if not batch:
                continue
            fns = [f for f, _ in batch]

            def _all(conn: Connection, fns: list[WriteFn[Any]] = fns) -> list[Any]:
                out = []
                for f in fns:
                    try:
                        out.append(f(conn))
                    except Exception as exc:
                        raise _SiblingFailed from exc
                return out

            outcomes: list[tuple[bool, Any]]
            try:
                outcomes = [(True, r) for r in await self._write_pg(_all)]
            except Exception:
                # One write failed (or the commit did): each runs again alone.
                alone = await asyncio.gather(
                    *(self._write_pg(f) for f in fns), return_exceptions=True
                )
                outcomes = [(not isinstance(r, BaseException), r) for r in alone]
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    async def wait_reachable(self, *, max_delay: float = 30.0, attempts: int | None = None) -> None:
        """Wait until the database answers, retrying with exponential backoff.

        Each failed attempt logs one line (no traceback). Errors that waiting cannot fix
        (wrong password, unknown database) are raised at once; so is the last error after
        ``attempts`` tries.
        """
        delay = 0.5
        tried = 0
        while True:
            tried += 1
            try:
                await self.ping()
                if tried > 1:
                    log.warning("database %s is reachable", describe_url(self.url))
                return
            except StoreError as exc:
                if not _retryable(exc) or (attempts is not None and tried >= attempts):
                    raise
                log.error(
                    "cannot reach the database %s (%s); retrying in %.1fs",
                    describe_url(self.url),
                    exc.message,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)

    # --- SQLite group commit ------------------------------------------------------------------

    async def _writer(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            batch = [item]
            while len(batch) < _MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [(fn, fut) for fn, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            fns = [fn for fn, _ in batch]
            if self.on_batch is not None:
                self.on_batch(len(fns))
            callbacks: list[Callable[[], None]] = []
            try:
                outcomes = await loop.run_in_executor(
                    self._write_thread, self._run_batch, fns, callbacks
                )
            except Exception as exc:  # pragma: no cover - _run_batch returns, never raises
                outcomes = [(False, exc)] * len(batch)
            _run_callbacks(callbacks)
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    def _run_batch(
        self, fns: list[WriteFn[Any]], callbacks: list[Callable[[], None]]
    ) -> list[tuple[bool, Any]]:
        """In the writer thread: run ``fns`` in one transaction; (ok, result|exception) each.

        The after-commit callbacks of the committed writes are appended to ``callbacks``.
        """
        assert self._sync_write is not None
        results: list[Any] = []
        pending: list[Callable[[], None]] = []
        try:
            with self._sync_write.begin() as conn:
                _take_after_commit(conn)  # leftovers of an earlier use of the connection
                for fn in fns:
                    try:
                        results.append(fn(conn))
                    except Exception as exc:
                        if len(fns) == 1:
                            raise
                        raise _SiblingFailed from exc
                pending = _take_after_commit(conn)
        except _SiblingFailed:
            out: list[tuple[bool, Any]] = []
            for fn in fns:
                out.extend(self._run_batch([fn], callbacks))
            return out
        except Exception as exc:
            # A single write failed, or the commit itself failed (then every write did).
            return [(False, _translate(exc))] * len(fns)
        callbacks.extend(pending)
        return [(True, r) for r in results]

    # --- schema and lifecycle -----------------------------------------------------------------

    async def run_sync_ddl(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction outside group commit (migrations, inspection)."""
        if self._async is not None:
            async with self._async.begin() as aconn:
                return await aconn.run_sync(fn)
        assert self._sync_write is not None
        engine = self._sync_write

        def _run() -> T:
            with engine.begin() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._write_thread, _run)

    @contextlib.asynccontextmanager
    async def advisory_lock(self, key: int) -> AsyncIterator[None]:
        """Hold PostgreSQL advisory lock ``key`` (waiting for it) for the block's duration.

        Serializes one-off work of processes starting together (first-start set-up). On
        SQLite one process owns the database, so this is a no-op.
        """
        if self._async is None:
            yield
            return
        async with self._async.connect() as aconn:
            await aconn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            await aconn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await aconn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await aconn.commit()

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        await self.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())

    async def close(self) -> None:
        """Finish queued writes, then dispose of the engines and threads."""
        if self._closed:
            return
        if self._async is not None:
            if self._pg_lanes:
                await asyncio.wait(list(self._pg_lanes), timeout=10)
            self._closed = True
            await self._async.dispose()
            return
        if self._queue is not None and self._writer_task is not None:
            # A final no-op write is answered only after everything queued before it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.write(lambda _conn: None), timeout=10)
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
        self._closed = True
        self._write_thread.shutdown(wait=True)
        self._read_threads.shutdown(wait=True)
        assert self._sync_write is not None and self._sync_read is not None
        self._sync_write.dispose()
        self._sync_read.dispose()
