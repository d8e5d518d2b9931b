"""Helpers for tests and benchmarks of Squall and of code built on it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``condition`` (sync or async) until it returns something truthy; return it.

    Raises ``AssertionError`` naming ``message`` and the last value when ``timeout`` passes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        last = value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)
