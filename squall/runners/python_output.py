"""Splitting a warm worker's continuous stdout/stderr into per-execution output.

A worker's fd 1 and fd 2 are pipes that live as long as the worker. When an execution ends,
the worker writes that execution's random sentinel on both; everything before the sentinel
belongs to the execution, the sentinel itself is dropped. Bytes that arrive while no execution
is attached (a thread the previous action left running) are held, up to a cap, for the next
one.
"""

from __future__ import annotations

import asyncio
import secrets

from squall.runners.process import StreamCapture

__all__ = ["StreamDemux", "new_sentinel", "pump"]

#: Bytes held between executions at most; older ones are dropped.
_IDLE_CAP = 1024 * 1024


def new_sentinel() -> str:
    """A random end-of-output marker for one execution (unlikely in real output)."""
    return f"\x00\x1esquall-end-{secrets.token_hex(16)}\x1e\x00"


def _partial_suffix(buf: bytearray, sentinel: bytes) -> int:
    """Length of the longest tail of ``buf`` that is a proper prefix of ``sentinel``."""
    start = max(0, len(buf) - len(sentinel) + 1)
    first = sentinel[:1]
    i = buf.find(first, start)
    while i != -1:
        if sentinel.startswith(buf[i:]):
            return len(buf) - i
        i = buf.find(first, i + 1)
    return 0


class StreamDemux:
    """Routes one worker stream to the execution currently attached to it."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._capture: StreamCapture | None = None
        self._sentinel = b""
        self._lock = asyncio.Lock()
        self._ended = asyncio.Event()
        self._closed = False

    async def attach(self, capture: StreamCapture, sentinel: str) -> None:
        """Send what follows, up to ``sentinel``, to ``capture``."""
        async with self._lock:
            self._capture = capture
            self._sentinel = sentinel.encode("utf-8")
            self._ended = asyncio.Event()
            if self._closed:
                self._capture = None
                await capture.feed(bytes(self._pending))
                self._pending.clear()
                await capture.finish()
                self._ended.set()
                return
            await self._drain()

    async def feed(self, data: bytes) -> None:
        """Take the next chunk read from the pipe."""
        async with self._lock:
            self._pending += data
            await self._drain()

    async def finish(self) -> None:
        """The pipe closed (or the worker died): hand everything left to the execution."""
        async with self._lock:
            self._closed = True
            capture, self._capture = self._capture, None
            if capture is not None:
                await capture.feed(bytes(self._pending))
                self._pending.clear()
                await capture.finish()
                self._ended.set()

    async def wait_ended(self) -> None:
        """Wait until the attached execution's sentinel (or the end of the pipe) was seen."""
        await self._ended.wait()

    async def _drain(self) -> None:
        capture = self._capture
        if capture is None:
            if len(self._pending) > _IDLE_CAP:
                del self._pending[: len(self._pending) - _IDLE_CAP]
            return
        index = self._pending.find(self._sentinel)
        if index >= 0:
            chunk = bytes(self._pending[:index])
            del self._pending[: index + len(self._sentinel)]
            self._capture = None
            await capture.feed(chunk)
            await capture.finish()
            self._ended.set()
            return
        # Hold back only a tail that could be the start of the sentinel.
        ready = len(self._pending) - _partial_suffix(self._pending, self._sentinel)
        if ready:
            chunk = bytes(self._pending[:ready])
            del self._pending[:ready]
            await capture.feed(chunk)


async def pump(reader: asyncio.StreamReader, demux: StreamDemux) -> None:
    """Read a worker pipe until it closes, feeding ``demux``."""
    while True:
        data = await reader.read(64 * 1024)
        if not data:
            break
        await demux.feed(data)
    await demux.finish()
