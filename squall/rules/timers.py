"""StackStorm's timer triggers as pure schedule math.

* ``core.st2.IntervalTimer`` ``{timezone, unit: weeks|days|hours|minutes|seconds, delta}``:
  ticks every ``delta`` units of *elapsed* time (DST does not stretch or shrink it), counted
  from an anchor (the time the timer started, or its last tick).
* ``core.st2.CronTimer`` ``{timezone, year, month, day, week, day_of_week, hour, minute,
  second}``: APScheduler field semantics (see :mod:`squall.rules.cron`) in local time.
* ``core.st2.DateTimer`` ``{timezone, date}``: once, at ``date`` (naive dates are in
  ``timezone``).

``timezone`` is an IANA name; it defaults to UTC (StackStorm used the host's zone, which is
UTC on its supported installs). All results are aware UTC datetimes; naive inputs are UTC.

Daylight saving time, for cron timers (local wall-clock schedules):

* A local time skipped by a spring-forward transition fires at the same offset after the gap
  (02:30 on a day that jumps 02:00 → 03:00 fires at 03:30), as APScheduler did.
* A local time repeated by a fall-back transition fires once, at its first occurrence — unless
  the ``hour`` field matches every hour, in which case the repeated hour is fired again, so
  ``minute: "*/15"`` keeps its 15-minute rhythm through the night.

Missed ticks (the timers service was down, or late): :func:`plan_ticks` fires at most one
catch-up tick for everything missed since the last fire and schedules the next tick after
now; a burst of stale ticks is never produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from squall.errors import Issue, RuleError
from squall.rules.cron import CRON_FIELDS, CronFieldError, CronSchedule

__all__ = [
    "CRON_TIMER",
    "DATE_TIMER",
    "INTERVAL_TIMER",
    "TIMER_TRIGGER_TYPES",
    "CronTimer",
    "DateTimer",
    "IntervalTimer",
    "TickPlan",
    "Timer",
    "next_fire_after",
    "parse_timer",
    "plan_ticks",
]

INTERVAL_TIMER = "core.st2.IntervalTimer"
CRON_TIMER = "core.st2.CronTimer"
DATE_TIMER = "core.st2.DateTimer"
TIMER_TRIGGER_TYPES = frozenset({INTERVAL_TIMER, CRON_TIMER, DATE_TIMER})
_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class IntervalTimer:
    """Every ``interval`` of elapsed time."""

    interval: timedelta
    timezone: tzinfo = UTC

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime:
        """The first tick strictly after ``after``; ticks are ``anchor + k·interval``, k ≥ 1.

        Without an anchor the next tick is one interval after ``after``.
        """
        after = _utc(after)
        if anchor is None:
            return after + self.interval
        anchor = _utc(anchor)
        if after < anchor:
            return anchor + self.interval
        k = (after - anchor) // self.interval + 1
        return anchor + k * self.interval


@dataclass(frozen=True)
class CronTimer:
    """A cron schedule evaluated in ``timezone``."""

    schedule: CronSchedule
    timezone: tzinfo = UTC

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first tick strictly after ``after`` (None: never again)."""
        after = _utc(after)
        tz = self.timezone
        repeat = self.schedule.every_hour
        local = after.astimezone(tz)
        wall = local.replace(tzinfo=None, microsecond=0) + _SECOND
        best: datetime | None = None
        while best is None:
            found = self.schedule.next_wall(wall)
            if found is None:
                return None
            for instant in _instants(found, tz, repeat):
                if instant > after:
                    best = instant
                    break
            wall = found + _SECOND
        if repeat:
            best = min(best, _repeated_hour_tick(self.schedule, tz, after, best) or best)
        return best


@dataclass(frozen=True)
class DateTimer:
    """Once, at ``run_at`` (aware UTC)."""

    run_at: datetime
    timezone: tzinfo = UTC

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """``run_at`` if it is strictly after ``after``, else None."""
        return self.run_at if self.run_at > _utc(after) else None


Timer = IntervalTimer | CronTimer | DateTimer


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _instants(wall: datetime, tz: tzinfo, repeat: bool) -> list[datetime]:
    """The UTC instants a local wall-clock time stands for, earliest first."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    off_first, off_second = first.utcoffset(), second.utcoffset()
    if off_first == off_second:
        return [first.astimezone(UTC)]
    assert off_first is not None and off_second is not None
    if off_first > off_second:  # repeated (fall back): fold=0 is the first occurrence
        instants = [first.astimezone(UTC)]
        if repeat:
            instants.append(second.astimezone(UTC))
        return instants
    # Skipped (spring forward): fold=0 reads it with the offset before the gap, which lands
    # the same distance after the gap.
    return [first.astimezone(UTC)]


def _repeated_hour_tick(
    schedule: CronSchedule, tz: tzinfo, after: datetime, best: datetime
) -> datetime | None:
    """A second-occurrence tick in a fall-back hour between ``after`` and ``best``, if any.

    The wall-clock search starts after ``after``'s local time, so when ``after`` falls before
    a fall-back transition and ``best`` after it, the repeated hour's second pass — local times
    *earlier* than ``after``'s — would be skipped.
    """
    before_off = after.astimezone(tz).utcoffset()
    after_off = best.astimezone(tz).utcoffset()
    if before_off is None or after_off is None or after_off >= before_off:
        return None
    lo, hi = int(after.timestamp()), int(best.timestamp()) + 1
    while hi - lo > 1:  # offsets change on whole seconds; find the transition
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == before_off:
            lo = mid
        else:
            hi = mid
    transition = datetime.fromtimestamp(hi, UTC)
    repeat_start = (transition + after_off).replace(tzinfo=None)
    repeat_end = repeat_start + (before_off - after_off)
    found = schedule.next_wall(repeat_start)
    if found is None or found >= repeat_end:
        return None
    tick = transition + (found - repeat_start)
    return tick if after < tick < best else None


def next_fire_after(
    timer: Timer, after: datetime, *, anchor: datetime | None = None
) -> datetime | None:
    """The first tick of ``timer`` strictly after ``after`` (aware UTC), or None.

    Args:
        timer: From :func:`parse_timer`.
        after: The reference time (naive means UTC).
        anchor: Interval timers only: a previous tick (or the start time) to keep the rhythm.
    """
    return timer.next_after(after, anchor)


def _issue(field_name: str, message: str, path: str) -> RuleError:
    return RuleError(message, issues=[Issue(message, path=f"{path}.{field_name}")])


def _timezone(value: Any, path: str) -> tzinfo:
    if value is None or value == "":
        return UTC
    if not isinstance(value, str):
        raise _issue("timezone", f"timezone must be a string, got {value!r}", path)
    if value.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _issue("timezone", f"unknown time zone {value!r}", path) from None


def _parse_date(value: Any, tz: tzinfo, path: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                from dateutil import parser as date_parser

                moment = date_parser.parse(value)
            except (ImportError, ValueError, OverflowError):
                raise _issue("date", f"cannot read {value!r} as a date and time", path) from None
    else:
        raise _issue("date", f"date must be a date-time string, got {value!r}", path)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def parse_timer(
    trigger_type: str, parameters: Mapping[str, Any] | None, *, path: str = "trigger.parameters"
) -> Timer:
    """Validate a timer trigger's parameters.

    Args:
        trigger_type: ``core.st2.IntervalTimer``, ``core.st2.CronTimer`` or ``core.st2.DateTimer``.
        parameters: The trigger parameters from the rule.
        path: Issue path prefix (``trigger.parameters``).

    Raises:
        RuleError: an unknown trigger type or field, or an invalid value; the issue names the
            field (``trigger.parameters.hour``).
    """
    params = dict(parameters or {})
    if trigger_type == INTERVAL_TIMER:
        _known(params, ("timezone", "unit", "delta"), path)
        tz = _timezone(params.get("timezone"), path)
        unit = params.get("unit")
        if unit not in _UNITS:
            raise _issue("unit", f"unit must be one of {', '.join(_UNITS)}, got {unit!r}", path)
        delta = params.get("delta")
        if isinstance(delta, bool) or not isinstance(delta, int) or delta <= 0:
            raise _issue("delta", f"delta must be a positive integer, got {delta!r}", path)
        return IntervalTimer(timedelta(**{unit: delta}), tz)
    if trigger_type == CRON_TIMER:
        _known(params, ("timezone", *CRON_FIELDS), path)
        tz = _timezone(params.pop("timezone", None), path)
        try:
            schedule = CronSchedule.parse(params)
        except CronFieldError as exc:
            raise _issue(exc.field, f"invalid cron field {exc.field}: {exc.reason}", path) from None
        return CronTimer(schedule, tz)
    if trigger_type == DATE_TIMER:
        _known(params, ("timezone", "date"), path)
        tz = _timezone(params.get("timezone"), path)
        if params.get("date") is None:
            raise _issue("date", "date is required", path)
        return DateTimer(_parse_date(params["date"], tz, path), tz)
    raise RuleError(
        f"{trigger_type!r} is not a timer trigger type",
        issues=[
            Issue(f"expected one of {', '.join(sorted(TIMER_TRIGGER_TYPES))}", path="trigger.type")
        ],
    )


def _known(params: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for name in params:
        if name not in allowed:
            raise _issue(
                str(name), f"unknown timer parameter {name!r}; expected {', '.join(allowed)}", path
            )


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What the timers service should do now.

    Attributes:
        fire: The scheduled time of the one tick to fire now (the earliest due tick), or None.
        missed: Further due ticks dropped by the catch-up policy (counted up to a cap).
        next_at: When to wake up next (the first tick strictly after ``now``), or None.
    """

    fire: datetime | None
    missed: int
    next_at: datetime | None


def plan_ticks(
    timer: Timer,
    last_fired: datetime | None,
    now: datetime,
    *,
    anchor: datetime | None = None,
    max_lateness: timedelta | None = None,
    count_cap: int = 1000,
) -> TickPlan:
    """Decide which ticks to fire at ``now`` (at most one catch-up tick; no bursts).

    The due ticks are those after ``last_fired`` (or after ``anchor`` for a timer that never
    fired; with neither, nothing is due) and at or before ``now``. The earliest due tick is
    fired once; the others are dropped and counted. With ``max_lateness``, a due tick older
    than that is dropped too (nothing fires). The next wake-up is the first tick after ``now``.

    Args:
        timer: From :func:`parse_timer`.
        last_fired: The scheduled time of the last tick fired, or None.
        now: The current time.
        anchor: When the timer started (the interval rhythm; the start of the catch-up window
            when it never fired).
        max_lateness: Drop catch-up ticks older than this.
        count_cap: Stop counting dropped ticks at this number.
    """
    now = _utc(now)
    since = last_fired if last_fired is not None else anchor
    rhythm = anchor if anchor is not None else last_fired
    if since is None:
        return TickPlan(None, 0, timer.next_after(now, rhythm))
    due = timer.next_after(since, rhythm)
    if due is None or due > now:
        return TickPlan(None, 0, due)
    missed = 0
    tick = timer.next_after(due, rhythm)
    while tick is not None and tick <= now and missed < count_cap:
        missed += 1
        tick = timer.next_after(tick, rhythm)
    next_at = tick if tick is not None and tick > now else timer.next_after(now, rhythm)
    if max_lateness is not None and now - due > max_lateness:
        return TickPlan(None, missed + 1, next_at)
    return TickPlan(due, missed, next_at)
