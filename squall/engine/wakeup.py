"""Wake-ups between services: "there is new work on channel X".

A wake-up is only a hint; the work itself is always a committed row, and every consumer
also polls slowly as a safety net. In one process an :class:`asyncio.Event` per channel is
enough; across processes on PostgreSQL the same interface is backed by LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["LocalWakeups", "Wakeups"]


class Wakeups:
    """Interface: ``signal`` after a commit, ``wait`` in a consumer loop.

    ``local=True`` wakes consumers in this process only (a free runner slot, a shutdown):
    other processes have nothing new to look at.
    """

    def signal(self, channel: str, *, local: bool = False) -> None:
        raise NotImplementedError

    async def wait(self, channel: str, timeout: float) -> bool:
        """Wait until ``channel`` is signalled or ``timeout`` passes; True if signalled."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class LocalWakeups(Wakeups):
    """In-process wake-ups."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, channel: str) -> asyncio.Event:
        ev = self._events.get(channel)
        if ev is None:
            ev = self._events[channel] = asyncio.Event()
        return ev

    def signal(self, channel: str, *, local: bool = False) -> None:
        self._event(channel).set()

    async def wait(self, channel: str, timeout: float) -> bool:
        ev = self._event(channel)
        if not ev.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), timeout)
        signalled = ev.is_set()
        ev.clear()
        return signalled
