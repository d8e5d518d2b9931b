"""The service registry of this process: register at start, heartbeat, leave on stop.

What ``squall status`` and ``GET /api/v1/service_registry/…`` show comes from here: each
process's roles, host, pid, start time, last heartbeat and the work it has in flight.
Heartbeats are advisory — nothing is taken from a process because its heartbeat stopped;
work is recovered by the leases on the work itself (executions, trigger instances,
singleton leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from squall import __version__
from squall.errors import StoreError
from squall.store import processes
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["ServiceRegistry", "describe"]

log = logging.getLogger(__name__)

InfoFn = Callable[[], Mapping[str, Any]]


class ServiceRegistry:
    """Keeps this process's row in ``processes`` fresh."""

    def __init__(
        self,
        db: Database,
        *,
        process_id: str,
        roles: Sequence[str],
        interval: float = 5.0,
        info: InfoFn | None = None,
    ) -> None:
        self.db = db
        self.process_id = process_id
        self.roles = list(roles)
        self.interval = interval
        self._info = info
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._task: asyncio.Task[None] | None = None

    def info(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"version": __version__, "heartbeat_seconds": self.interval}
        if self._info is not None:
            with contextlib.suppress(Exception):  # never let a counter stop the heartbeat
                doc.update(self._info())
        return doc

    async def register(self) -> None:
        now = utcnow()
        info = self.info()
        await self.db.write(
            lambda conn: processes.register(
                conn,
                id=self.process_id,
                roles=self.roles,
                host=self.host,
                pid=self.pid,
                info=info,
                now=now,
            )
        )

    async def beat(self) -> None:
        now = utcnow()
        info = self.info()
        present = await self.db.write(
            lambda conn: processes.heartbeat(conn, self.process_id, info=info, now=now)
        )
        if not present:  # purged while we could not reach the database: come back
            await self.register()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="registry")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                log.warning("service registry heartbeat failed: %s", exc)
            except Exception:
                log.exception("service registry heartbeat failed")

    async def stop(self) -> None:
        """Stop heartbeating and remove this process's row."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.db.write(lambda conn: processes.remove(conn, self.process_id))


def describe(row: processes.ProcessRow, now: datetime) -> dict[str, Any]:
    """The API document of one registered process."""
    info = dict(row.info)
    return {
        "id": row.id,
        "roles": row.roles,
        "host": row.host,
        "pid": row.pid,
        "status": "alive" if row.alive(now) else "lost",
        "version": info.pop("version", None),
        "started_at": _iso(row.started_at),
        "heartbeat_at": _iso(row.heartbeat_at),
        "heartbeat_age_seconds": round((now - row.heartbeat_at).total_seconds(), 1),
        "in_flight": info.pop("in_flight", {}),
        "leases": info.pop("leases", []),
        "info": info,
    }


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
