"""Alert-storm protection: a rule's ``throttle`` and ``dedup`` (Squall additions).

This module is the pure decision logic; the store keeps the counters. For each match the
rules engine asks :func:`storm_buckets` for the buckets the enforcement must pass, then admits
the enforcement only if every bucket admits it, atomically in the database.

``throttle: {count: 10, window: 5m, group_by: [trigger.host]}``
    At most ``count`` enforcements per fixed window (aligned to the Unix epoch) per group.
    Bucket: ``mode="fixed"``; admit when fewer than ``limit`` enforcements were admitted with
    this ``key`` and this ``window_start``. One counter row per (key, window_start)::

        INSERT INTO storm_counter (key, window_start, count) VALUES (:key, :start, 1)
        ON CONFLICT (key, window_start) DO UPDATE SET count = storm_counter.count + 1
            WHERE storm_counter.count < :limit
        RETURNING count            -- no row returned: throttled

``dedup: {key: "{{ trigger.alert_id }}", window: 1h}``
    An enforcement whose rendered key was admitted less than ``window`` ago is suppressed.
    Bucket: ``mode="sliding"``, ``limit=1``; admit when no enforcement with this ``key`` was
    admitted at or after ``window_start`` (= now − window). One row per key::

        INSERT INTO storm_dedup (key, admitted_at) VALUES (:key, :now)
        ON CONFLICT (key) DO UPDATE SET admitted_at = :now
            WHERE storm_dedup.admitted_at < :window_start
        RETURNING key              -- no row returned: duplicate

Windows are seconds (``300``) or strings with units ``s``, ``m``, ``h``, ``d``, ``w``
(``"90s"``, ``"5m"``, ``"1h30m"``). Group and dedup values are hashed into the key so keys
have a bounded length; the readable values are kept on the bucket for display.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from squall.errors import DomainError, Issue, RuleError
from squall.rules import _expr
from squall.rules.paths import MISSING, KeyPath, KeyPathError, parse_key

__all__ = [
    "DedupConfig",
    "MemoryStormGate",
    "StormBucket",
    "ThrottleConfig",
    "parse_dedup",
    "parse_throttle",
    "parse_window",
    "storm_buckets",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WINDOW_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """``throttle``: at most ``count`` enforcements per ``window`` seconds per group."""

    count: int
    window: float
    group_by: tuple[KeyPath, ...] = ()


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """``dedup``: one enforcement per rendered ``key`` per ``window`` seconds."""

    key: str
    window: float


@dataclass(frozen=True, slots=True)
class StormBucket:
    """One admission bucket for a match.

    Attributes:
        kind: ``throttle`` or ``dedup``.
        mode: ``fixed`` (count within [window_start, window_end)) or ``sliding`` (any
            admission at or after ``window_start``).
        rule_ref: The rule the bucket belongs to.
        key: The storage key (rule ref, kind and a hash of the group/dedup values).
        limit: How many admissions the window allows.
        window_start: Start of the window (aware UTC).
        window_end: End of the window (aware UTC); counters may be purged after it.
        group: The readable group values (throttle) or rendered dedup key.
    """

    kind: Literal["throttle", "dedup"]
    mode: Literal["fixed", "sliding"]
    rule_ref: str
    key: str
    limit: int
    window_start: datetime
    window_end: datetime
    group: Any


def parse_window(value: Any, *, path: str) -> float:
    """Read a window: seconds (number or numeric string) or ``"5m"``, ``"1h30m"`` ….

    Raises:
        RuleError: the value is not a positive duration; the issue names ``path``.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _WINDOW_RE.findall(text)
            if parts and "".join(n + u for n, u in parts) == text:
                seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise RuleError(
            f"invalid window {value!r}",
            issues=[
                Issue(
                    f"expected a positive number of seconds or a duration like '90s', '5m', "
                    f"'1h', '1d', got {value!r}",
                    path=path,
                )
            ],
        )
    return seconds


def _bad(message: str, path: str) -> RuleError:
    return RuleError(message, issues=[Issue(message, path=path)])


def _only(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    extra = sorted(str(k) for k in raw if k not in allowed)
    if extra:
        raise _bad(
            f"unknown field {extra[0]!r}; expected {', '.join(allowed)}", f"{path}.{extra[0]}"
        )


def parse_throttle(raw: Any, *, path: str = "throttle") -> ThrottleConfig | None:
    """Validate a rule's ``throttle`` block (None when absent).

    Raises:
        RuleError: bad ``count``, ``window`` or ``group_by`` (issue path names the field).
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _bad("throttle must be a mapping {count, window, group_by}", path)
    _only(raw, ("count", "window", "group_by"), path)
    count = raw.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _bad(f"throttle count must be a positive integer, got {count!r}", f"{path}.count")
    if "window" not in raw:
        raise _bad("throttle needs a window (seconds or '5m', '1h' …)", f"{path}.window")
    window = parse_window(raw["window"], path=f"{path}.window")
    group_raw = raw.get("group_by") or []
    if isinstance(group_raw, str):
        group_raw = [group_raw]
    if not isinstance(group_raw, list):
        raise _bad("throttle group_by must be a list of payload paths", f"{path}.group_by")
    group: list[KeyPath] = []
    for i, item in enumerate(group_raw):
        try:
            group.append(parse_key(item if isinstance(item, str) else "", roots=("trigger",)))
        except KeyPathError as exc:
            raise _bad(str(exc), f"{path}.group_by.{i}") from None
    return ThrottleConfig(count=count, window=window, group_by=tuple(group))


def parse_dedup(raw: Any, *, path: str = "dedup") -> DedupConfig | None:
    """Validate a rule's ``dedup`` block (None when absent).

    Raises:
        RuleError: missing/invalid ``key`` template or ``window``.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _bad("dedup must be a mapping {key, window}", path)
    _only(raw, ("key", "window"), path)
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        raise _bad("dedup needs a key: a Jinja template over the trigger", f"{path}.key")
    try:
        _expr.check_template(key)
    except DomainError as exc:
        raise _bad(exc.message, f"{path}.key") from None
    if "window" not in raw:
        raise _bad("dedup needs a window (seconds or '5m', '1h' …)", f"{path}.window")
    return DedupConfig(key=key, window=parse_window(raw["window"], path=f"{path}.window"))


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _fixed_window(now: datetime, seconds: float) -> tuple[datetime, datetime]:
    ts = now.timestamp()
    start = math.floor(ts / seconds) * seconds
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + timedelta(seconds=seconds)


def storm_buckets(
    rule_ref: str,
    throttle: ThrottleConfig | None,
    dedup: DedupConfig | None,
    payload: Any,
    *,
    now: datetime,
    kv: Any = None,
) -> list[StormBucket]:
    """The buckets a match of ``rule_ref`` must pass (empty: no storm protection).

    Args:
        rule_ref: The matched rule.
        throttle: Its throttle config, or None.
        dedup: Its dedup config, or None.
        payload: The trigger payload.
        now: The enforcement time (aware).
        kv: Datastore snapshot for ``st2kv`` in the dedup key template.

    Raises:
        RuleEvaluationError: the dedup key template failed to render.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    buckets: list[StormBucket] = []
    if throttle is not None:
        values = []
        for kp in throttle.group_by:
            value = kp.get(payload)
            values.append(None if value is MISSING else value)
        start, end = _fixed_window(now, throttle.window)
        key = f"throttle:{rule_ref}:{_digest(values)}" if values else f"throttle:{rule_ref}"
        buckets.append(
            StormBucket("throttle", "fixed", rule_ref, key, throttle.count, start, end, values)
        )
    if dedup is not None:
        from squall.rules.criteria import EvalContext, RuleEvaluationError

        ctx = EvalContext(payload, kv=kv, now=now).template_context()
        try:
            rendered = _expr.render_template(dedup.key, ctx)
        except DomainError as exc:
            raise RuleEvaluationError("dedup.key", "dedup", exc.message, rule_ref=rule_ref) from exc
        span = timedelta(seconds=dedup.window)
        buckets.append(
            StormBucket(
                "dedup",
                "sliding",
                rule_ref,
                f"dedup:{rule_ref}:{_digest(rendered)}",
                1,
                now - span,
                now + span,
                rendered,
            )
        )
    return buckets


class MemoryStormGate:
    """The bucket semantics over in-memory counters: a reference and a fake for tests.

    ``admit(buckets, now)`` admits the enforcement (and counts it in every bucket) only if
    every bucket admits it; a suppressed enforcement is not counted.
    """

    def __init__(self) -> None:
        self._fixed: dict[tuple[str, datetime], int] = {}
        self._sliding: dict[str, datetime] = {}

    def admit(self, buckets: list[StormBucket], now: datetime) -> bool:
        """Check and count; returns whether the enforcement may proceed."""
        for b in buckets:
            if b.mode == "fixed" and self._fixed.get((b.key, b.window_start), 0) >= b.limit:
                return False
            if b.mode == "sliding":
                last = self._sliding.get(b.key)
                if last is not None and last >= b.window_start:
                    return False
        for b in buckets:
            if b.mode == "fixed":
                slot = (b.key, b.window_start)
                self._fixed[slot] = self._fixed.get(slot, 0) + 1
            else:
                self._sliding[b.key] = now
        return True
