"""Identifiers shaped like StackStorm's (MongoDB ObjectId: 24 hex digits, time-ordered).

Clients such as the ``st2`` CLI and custom UIs expect 24-hex ids; generating them ourselves
keeps ids sortable by creation time without a database round trip.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time

__all__ = ["is_object_id", "new_id"]

_ID_RE = re.compile(r"^[0-9a-f]{24}$")
_lock = threading.Lock()
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
# Per-process random part (5 bytes), regenerated after fork so children never collide.
_process_random = os.urandom(5)


def _reseed() -> None:
    global _process_random
    _process_random = os.urandom(5)


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """Return a new 24-hex-digit id: 4 bytes of seconds, 5 random bytes, 3 counter bytes."""
    with _lock:
        count = next(_counter) & 0xFFFFFF
    return (int(time.time()).to_bytes(4, "big") + _process_random + count.to_bytes(3, "big")).hex()


def is_object_id(value: str) -> bool:
    """True when ``value`` looks like an id produced by :func:`new_id`."""
    return bool(_ID_RE.match(value))
