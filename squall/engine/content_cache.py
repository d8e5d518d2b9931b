"""A short-lived cache of pack content read on every execution (actions, packs, configs).

Registration in this process invalidates it at once; changes made by another process are
seen within ``ttl`` seconds. Execution history never depends on it: executions refer to
immutable action snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from squall.store import content
from squall.store.db import Database

__all__ = ["ContentCache"]

T = TypeVar("T")


class ContentCache:
    def __init__(self, db: Database, *, ttl: float = 2.0, max_entries: int = 4096) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def invalidate(self) -> None:
        self._entries.clear()

    async def _get(self, kind: str, key: str, load: Callable[[Any], T]) -> T:
        now = time.monotonic()
        hit = self._entries.get((kind, key))
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        value = await self.db.read(load)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[(kind, key)] = (now + self.ttl, value)
        return value

    async def action(self, ref: str) -> content.ActionRecord | None:
        return await self._get("action", ref, lambda conn: content.get_action(conn, ref))

    async def pack(self, ref: str) -> content.PackRecord | None:
        return await self._get("pack", ref, lambda conn: content.get_pack(conn, ref))

    async def pack_config(self, pack: str) -> tuple[dict[str, Any], list[str]]:
        return await self._get("config", pack, lambda conn: content.get_pack_config(conn, pack))
