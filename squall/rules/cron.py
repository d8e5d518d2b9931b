"""Cron schedules with APScheduler's ``CronTrigger`` field semantics (as StackStorm uses them).

Fields, most significant first: ``year`` (1970–9999), ``month`` (1–12), ``day`` (1–31),
``week`` (ISO week 1–53), ``day_of_week`` (0–6, **0 = Monday**), ``hour``, ``minute``,
``second``. All fields must match (unlike Vixie cron, ``day`` and ``day_of_week`` are ANDed).

Defaults, as in APScheduler: fields more significant than the least significant given field
default to ``*``; less significant ones default to their minimum (``second: 0`` …; ``week``,
``day_of_week`` and ``year`` to ``*``). ``{hour: 5}`` fires at 05:00:00 every day;
``{minute: "*/5"}`` every five minutes at second 0; no field at all fires every second.

Expressions (comma lists of): ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, ``a/n``; names
``jan``–``dec`` and ``mon``–``sun`` (also in ``a-b`` ranges, no wrap-around); in ``day``:
``last`` (last day of the month), ``last fri``, ``1st``…``5th mon``.

Why not ``croniter``: its fields are Vixie cron's — five or six fields, day-of-week 0 = Sunday,
day-of-month ORed with day-of-week, no ``week``/``year``/``1st mon`` — so existing StackStorm
timers would fire on other days. This module matches naive wall-clock times; time zones and
DST are :mod:`squall.rules.timers`' job.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

__all__ = ["CRON_FIELDS", "CronFieldError", "CronSchedule"]

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_MIN = {
    "year": 1970,
    "month": 1,
    "day": 1,
    "week": 1,
    "day_of_week": 0,
    "hour": 0,
    "minute": 0,
    "second": 0,
}
_MAX = {
    "year": 9999,
    "month": 12,
    "day": 31,
    "week": 53,
    "day_of_week": 6,
    "hour": 23,
    "minute": 59,
    "second": 59,
}
_DEFAULT: dict[str, Any] = {
    "year": "*",
    "month": 1,
    "day": 1,
    "week": "*",
    "day_of_week": "*",
    "hour": 0,
    "minute": 0,
    "second": 0,
}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    "day_of_week": {n: i for i, n in enumerate(_WEEKDAYS)},
    "month": {n: i + 1 for i, n in enumerate(_MONTHS)},
}
_RANGE = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")
_POSITION = re.compile(r"^(1st|2nd|3rd|4th|5th|last)\s+(mon|tue|wed|thu|fri|sat|sun)$")
_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1}


class CronFieldError(ValueError):
    """An invalid cron field; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.reason = message


def _value(name: str, token: str) -> int:
    names = _NAMES.get(name, {})
    if token in names:
        return names[token]
    if not token.isdigit():
        raise CronFieldError(name, f"unrecognized value {token!r}")
    value = int(token)
    if not _MIN[name] <= value <= _MAX[name]:
        raise CronFieldError(name, f"value {value} is out of range {_MIN[name]}-{_MAX[name]}")
    return value


DayRule = Callable[[int, int, int], set[int]]  # (year, month, days_in_month) -> days


def _compile_field(name: str, expr: Any) -> tuple[frozenset[int], list[DayRule]]:
    """Values a static field allows, plus date-dependent rules (``day`` field only)."""
    if isinstance(expr, bool) or not isinstance(expr, int | str):
        raise CronFieldError(name, f"expected a string or an integer, got {expr!r}")
    values: set[int] = set()
    rules: list[DayRule] = []
    items = str(expr).strip().lower().split(",")
    for raw in items:
        item = " ".join(raw.split())
        if not item:
            raise CronFieldError(name, f"empty expression in {expr!r}")
        if name == "day" and item == "last":
            rules.append(lambda year, month, month_last: {month_last})
            continue
        pos = _POSITION.match(item)
        if pos and name == "day":
            rules.append(_position_rule(_ORDINALS[pos.group(1)], _WEEKDAYS.index(pos.group(2))))
            continue
        m = _RANGE.match(item)
        if not m:
            raise CronFieldError(name, f"unrecognized expression {item!r}")
        star, first, last, step_text = m.groups()
        lo, hi = _MIN[name], _MAX[name]
        if star:
            a, b = lo, hi
        else:
            a = _value(name, first)
            b = _value(name, last) if last else (hi if step_text else a)
        if a > b:
            raise CronFieldError(name, f"range start {first} is after its end {last}")
        step = 1
        if step_text:
            step = int(step_text)
            if step == 0:
                raise CronFieldError(name, "step must be higher than 0")
            # APScheduler's check, quirk included: the step must fit the expression's span,
            # where a bound of 0 counts as unset (so "0-0/4" passes and "59/1" does not).
            span = ((b if last else 0) or hi) - ((0 if star else a) or lo)
            if step > span:
                raise CronFieldError(
                    name, f"step {step} is higher than the range of {item!r} ({span})"
                )
        if name == "day":
            rules.append(_range_rule(a, b, step))
        else:
            values.update(range(a, b + 1, step))
    return frozenset(values), rules


def _range_rule(first: int, last: int, step: int) -> DayRule:
    return lambda year, month, month_last: set(range(first, min(last, month_last) + 1, step))


def _position_rule(nth: int, weekday: int) -> DayRule:
    def days(year: int, month: int, last: int) -> set[int]:
        first_wd = calendar.weekday(year, month, 1)
        first = 1 + (weekday - first_wd) % 7
        hits = list(range(first, last + 1, 7))
        if nth == -1:
            return {hits[-1]}
        return {hits[nth - 1]} if nth <= len(hits) else set()

    return days


@dataclass(frozen=True, eq=False)
class CronSchedule:
    """A compiled APScheduler-style cron schedule over naive wall-clock time.

    Attributes:
        expressions: The effective expression of every field after defaults.
    """

    expressions: Mapping[str, str]
    _sets: dict[str, tuple[int, ...]] = field(repr=False)
    _day_rules: tuple[DayRule, ...] = field(repr=False)
    _weeks: frozenset[int] = field(repr=False)
    _dows: frozenset[int] = field(repr=False)
    _days_cache: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, fields: Mapping[str, Any]) -> CronSchedule:
        """Compile cron fields (missing or None fields take APScheduler's defaults).

        Raises:
            CronFieldError: an unknown field or an invalid expression; ``.field`` names it.
        """
        for name in fields:
            if name not in CRON_FIELDS:
                raise CronFieldError(name, f"unknown cron field; expected {', '.join(CRON_FIELDS)}")
        given = {k: v for k, v in fields.items() if v is not None}
        effective: dict[str, Any] = {}
        remaining = set(given)
        use_defaults = False
        for name in CRON_FIELDS:
            if name in given:
                effective[name] = given[name]
                remaining.discard(name)
                use_defaults = not remaining
            else:
                effective[name] = _DEFAULT[name] if use_defaults else "*"
        sets: dict[str, tuple[int, ...]] = {}
        day_rules: list[DayRule] = []
        for name in CRON_FIELDS:
            values, rules = _compile_field(name, effective[name])
            if name == "day":
                day_rules = rules
            else:
                sets[name] = tuple(sorted(values))
        return cls(
            expressions={k: str(v) for k, v in effective.items()},
            _sets=sets,
            _day_rules=tuple(day_rules),
            _weeks=frozenset(sets["week"]),
            _dows=frozenset(sets["day_of_week"]),
        )

    def _days(self, year: int, month: int) -> tuple[int, ...]:
        cached = self._days_cache.get((year, month))
        if cached is not None:
            return cached
        last = calendar.monthrange(year, month)[1]
        candidates: set[int] = set()
        for rule in self._day_rules:
            candidates |= rule(year, month, last)
        all_weeks = len(self._weeks) == 53
        all_dows = len(self._dows) == 7
        days = tuple(
            d
            for d in sorted(candidates)
            if (all_dows or calendar.weekday(year, month, d) in self._dows)
            and (all_weeks or date(year, month, d).isocalendar()[1] in self._weeks)
        )
        if len(self._days_cache) > 1024:
            self._days_cache.clear()
        self._days_cache[(year, month)] = days
        return days

    @property
    def every_hour(self) -> bool:
        """Whether the ``hour`` field matches all 24 hours."""
        return len(self._sets["hour"]) == 24

    def next_wall(self, start: datetime) -> datetime | None:
        """The first matching naive wall-clock time at or after ``start`` (whole seconds).

        Returns None when the schedule never matches again (before year 9999).
        """
        if start.microsecond:
            start = start.replace(microsecond=0) + timedelta(seconds=1)
        y, mo, d, h, mi, s = (
            start.year,
            start.month,
            start.day,
            start.hour,
            start.minute,
            start.second,
        )
        years, months = self._sets["year"], self._sets["month"]
        hours, minutes, seconds = self._sets["hour"], self._sets["minute"], self._sets["second"]
        barren: set[int] = set()  # y % 400 of whole years without a match (the calendar repeats)
        fresh = False  # scanning a year from January 1st
        while True:
            i = bisect_left(years, y)
            while i < len(years) and years[i] % 400 in barren:
                i += 1
            if i == len(years):
                return None
            if years[i] != y:
                y, mo, d, h, mi, s = years[i], 1, 1, 0, 0, 0
                fresh = True
            i = bisect_left(months, mo)
            if i == len(months):
                if fresh:
                    barren.add(y % 400)
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                fresh = True
                continue
            if months[i] != mo:
                mo, d, h, mi, s = months[i], 1, 0, 0, 0
            days = self._days(y, mo)
            i = bisect_left(days, d)
            if i == len(days):
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            if days[i] != d:
                d, h, mi, s = days[i], 0, 0, 0
            i = bisect_left(hours, h)
            if i == len(hours):
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if hours[i] != h:
                h, mi, s = hours[i], 0, 0
            i = bisect_left(minutes, mi)
            if i == len(minutes):
                h, mi, s = h + 1, 0, 0
                continue
            if minutes[i] != mi:
                mi, s = minutes[i], 0
            i = bisect_left(seconds, s)
            if i == len(seconds):
                mi, s = mi + 1, 0
                continue
            return datetime(y, mo, d, h, mi, seconds[i])
