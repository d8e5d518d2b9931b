"""Wake-ups across processes on PostgreSQL: ``LISTEN``/``NOTIFY`` behind :class:`Wakeups`.

* **Receiving.** One dedicated asyncpg connection per process (outside the pool) listens on
  ``squall_<channel>`` for every channel; a notification sets the local event of the channel,
  exactly as an in-process signal does.
* **Sending.** A signal always wakes local consumers at once. Unless it is ``local``, it is
  also sent to the other processes: a signal raised *inside* a write transaction is held
  until that transaction commits (:func:`squall.store.db.signals_in_transaction`), so nobody
  is woken before the work is visible; the others are sent right away. Sends are coalesced:
  one ``pg_notify`` round trip carries every channel signalled since the previous one, so a
  burst of a thousand webhooks costs a handful of notifications, and no hot transaction
  takes PostgreSQL's notification-queue lock.
* **Losing the connection.** Notifications are hints and may be lost (while the listener
  reconnects, or when PostgreSQL restarts). Every consumer keeps its slow poll, and after a
  reconnect every channel is signalled locally once so consumers look at once. Reconnection
  backs off exponentially up to :attr:`PgWakeups.MAX_BACKOFF`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from squall.engine.wakeup import LocalWakeups
from squall.store.db import Database, describe_url, signals_in_transaction

__all__ = ["CHANNELS", "PgWakeups"]

log = logging.getLogger(__name__)

#: Channels the services use (``squall/engine/*``); each is LISTENed to as ``squall_<name>``.
CHANNELS = ("rules", "scheduler", "runner", "workflow", "cancel", "timers", "sensors")
_PREFIX = "squall_"


def _dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; Squall also accepts ``postgresql+asyncpg://``."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


class PgWakeups(LocalWakeups):
    """In-process events, plus LISTEN/NOTIFY to and from the other processes."""

    MAX_BACKOFF = 10.0
    #: Signals raised within this window share one notification round trip.
    COALESCE_SECONDS = 0.002
    #: A listener that stays silent this long is checked with a query.
    CHECK_SECONDS = 15.0

    def __init__(self, db: Database, *, channels: tuple[str, ...] = CHANNELS) -> None:
        super().__init__()
        self.db = db
        self.channels = channels
        self._conn: Any = None
        self._server_pid: int | None = None
        self._outbox: set[str] = set()
        self._kick = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: Notifications received and sent (tests and ``squall status`` read them).
        self.received = 0
        self.sent = 0
        self.reconnects = 0
        db.on_commit_signals = self._after_commit

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the listener (waiting out an unreachable database) and start sending."""
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pg-wakeups")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._disconnect()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    # --- the interface ------------------------------------------------------------------------

    def signal(self, channel: str, *, local: bool = False) -> None:
        super().signal(channel)
        if local or channel not in self.channels:
            return
        pending = signals_in_transaction()
        if pending is not None:
            pending.add(channel)  # sent once the transaction commits
            return
        self._outbox.add(channel)
        self._kick.set()

    def _after_commit(self, channels: set[str]) -> None:
        self._outbox.update(c for c in channels if c in self.channels)
        self._kick.set()

    # --- the connection -----------------------------------------------------------------------

    async def _connect(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            try:
                conn = await asyncpg.connect(_dsn(self.db.url), timeout=10)
                for channel in self.channels:
                    await conn.add_listener(_PREFIX + channel, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "wake-ups: cannot listen on %s (%s); retrying in %.1fs (polling meanwhile)",
                    describe_url(self.db.url),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self.MAX_BACKOFF, delay * 2)
                continue
            self._conn = conn
            self._server_pid = conn.get_server_pid()
            self._lost.clear()
            return

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    def _on_notify(self, _conn: Any, pid: int, channel: str, _payload: str) -> None:
        if pid == self._server_pid:
            return  # our own notification: local consumers were woken when it was raised
        self.received += 1
        LocalWakeups.signal(self, channel[len(_PREFIX) :])

    def _on_terminated(self, _conn: Any) -> None:
        if not self._closing:
            self._lost.set()
            self._kick.set()

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.CHECK_SECONDS):
                    await self._kick.wait()
            self._kick.clear()
            try:
                if self._lost.is_set() or not self.connected:
                    await self._reconnect()
                if self._outbox:
                    await asyncio.sleep(self.COALESCE_SECONDS)  # let a burst gather
                    channels, self._outbox = sorted(self._outbox), set()
                    await self._conn.execute(
                        "SELECT pg_notify($1 || c, '') FROM unnest($2::text[]) AS c",
                        _PREFIX,
                        channels,
                    )
                    self.sent += len(channels)
                elif not self._kick.is_set():
                    await self._conn.execute("SELECT 1")  # is the listener still there?
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The sends are lost (consumers poll); listen again on a fresh connection.
                log.warning("wake-ups: connection failed (%s); reconnecting", exc)
                self._lost.set()
                self._kick.set()

    async def _reconnect(self) -> None:
        await self._disconnect()
        await self._connect()
        self.reconnects += 1
        log.info("wake-ups: listening again on %s", describe_url(self.db.url))
        # Anything could have happened meanwhile: let every consumer look once.
        for channel in self.channels:
            LocalWakeups.signal(self, channel)
