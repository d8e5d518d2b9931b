"""Timer schedules: APScheduler cron fields, DST, interval and date timers, missed ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from squall.errors import RuleError
from squall.rules import next_fire_after, parse_timer, plan_ticks
from squall.rules.timers import Timer

CRON = "core.st2.CronTimer"
INTERVAL = "core.st2.IntervalTimer"
DATE = "core.st2.DateTimer"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(timer: Timer, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(n):
        nxt = next_fire_after(timer, after)
        assert nxt is not None
        out.append(nxt)
        after = nxt
    return out


def cron_next(fields: dict[str, Any], after: datetime) -> datetime | None:
    return next_fire_after(parse_timer(CRON, fields), after)


# --- cron fields (UTC) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "after", "expected"),
    [
        # seconds; higher fields default to '*'
        ({"second": "*/15"}, utc(2024, 6, 1, 10, 0, 7), utc(2024, 6, 1, 10, 0, 15)),
        ({"second": "*/15"}, utc(2024, 6, 1, 10, 0, 45), utc(2024, 6, 1, 10, 1, 0)),
        # lower fields default to their minimum
        ({"hour": 5}, utc(2024, 1, 1, 6), utc(2024, 1, 2, 5)),
        ({"minute": "*/5"}, utc(2024, 6, 1, 10, 3, 20), utc(2024, 6, 1, 10, 5)),
        # no field at all: every second; strictly after
        ({}, datetime(2024, 6, 1, 10, 0, 0, 500000, tzinfo=UTC), utc(2024, 6, 1, 10, 0, 1)),
        ({"minute": 0}, utc(2024, 6, 1, 10, 0, 0), utc(2024, 6, 1, 11, 0, 0)),
        # last day of the month, leap years
        ({"day": "last", "hour": 0}, utc(2024, 2, 10), utc(2024, 2, 29)),
        ({"day": "last", "hour": 0}, utc(2023, 2, 10), utc(2023, 2, 28)),
        ({"day": "last", "hour": 0}, utc(2024, 4, 30), utc(2024, 5, 31)),
        # day 31 skips short months
        ({"day": 31, "hour": 0}, utc(2024, 4, 1), utc(2024, 5, 31)),
        # day_of_week: names, ranges, 0 = Monday (APScheduler), 6 = Sunday
        ({"day_of_week": "mon-fri", "hour": 9}, utc(2024, 6, 7, 10), utc(2024, 6, 10, 9)),
        ({"day_of_week": "sat,sun", "hour": 9}, utc(2024, 6, 3), utc(2024, 6, 8, 9)),
        ({"day_of_week": 0, "hour": 0}, utc(2024, 6, 1), utc(2024, 6, 3)),
        ({"day_of_week": 6, "hour": 0}, utc(2024, 6, 1), utc(2024, 6, 2)),
        ({"day_of_week": "0-4", "hour": 0}, utc(2024, 6, 1), utc(2024, 6, 3)),
        ({"day_of_week": "MON", "hour": 0}, utc(2024, 6, 1), utc(2024, 6, 3)),
        # nth weekday and last weekday of the month
        ({"day": "2nd tue", "hour": 12}, utc(2024, 6, 1), utc(2024, 6, 11, 12)),
        ({"day": "last fri", "hour": 0}, utc(2024, 6, 1), utc(2024, 6, 28)),
        ({"day": "5th mon", "hour": 0}, utc(2024, 6, 1), utc(2024, 7, 29)),
        ({"day": "1st mon,last", "hour": 0}, utc(2024, 6, 4), utc(2024, 6, 30)),
        # months by name
        ({"month": "jan,jul", "day": 1}, utc(2024, 2, 1), utc(2024, 7, 1)),
        ({"month": "nov-dec", "day": 1}, utc(2024, 2, 1), utc(2024, 11, 1)),
        # ISO weeks: week 1 of 2025 starts on 2024-12-30
        ({"week": 1, "day_of_week": "mon"}, utc(2024, 6, 1), utc(2024, 12, 30)),
        # years
        ({"year": 2030, "month": 1, "day": 1}, utc(2024, 6, 1), utc(2030, 1, 1)),
        ({"year": "2020-2023"}, utc(2024, 6, 1), None),
        # ranges and steps
        ({"minute": "10-30/10"}, utc(2024, 6, 1, 10, 31), utc(2024, 6, 1, 11, 10)),
        ({"minute": "5/20"}, utc(2024, 6, 1, 10, 26), utc(2024, 6, 1, 10, 45)),
        # day AND day_of_week (not ORed as in Vixie cron): the next Friday the 13th
        ({"day": 13, "day_of_week": "fri", "hour": 0}, utc(2024, 6, 1), utc(2024, 9, 13)),
        # leap day, and a schedule that can never match
        ({"month": 2, "day": 29}, utc(2025, 1, 1), utc(2028, 2, 29)),
        ({"month": 2, "day": 30}, utc(2024, 1, 1), None),
        ({"day": 31, "month": "apr,jun,sep,nov"}, utc(2024, 1, 1), None),
    ],
)
def test_cron_schedule(fields: dict[str, Any], after: datetime, expected: datetime | None) -> None:
    assert cron_next(fields, after) == expected


def test_cron_sequence_with_seconds() -> None:
    timer = parse_timer(CRON, {"minute": "*/2", "second": "0,30"})
    assert ticks(timer, utc(2024, 6, 1, 10, 0, 10), 4) == [
        utc(2024, 6, 1, 10, 0, 30),
        utc(2024, 6, 1, 10, 2, 0),
        utc(2024, 6, 1, 10, 2, 30),
        utc(2024, 6, 1, 10, 4, 0),
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hour": 24}, "hour"),
        ({"hour": "24"}, "hour"),
        ({"minute": "*/0"}, "minute"),
        ({"minute": "*/60"}, "minute"),
        ({"second": "59/1"}, "second"),
        ({"minute": "5-8/4"}, "minute"),
        ({"day": "32"}, "day"),
        ({"day": "0"}, "day"),
        ({"day_of_week": "fri-mon"}, "day_of_week"),
        ({"day_of_week": 7}, "day_of_week"),
        ({"month": "foo"}, "month"),
        ({"month": 13}, "month"),
        ({"week": 54}, "week"),
        ({"year": 1969}, "year"),
        ({"second": True}, "second"),
        ({"hour": "1,,2"}, "hour"),
        ({"minutes": 5}, "minutes"),
        ({"hour": 1, "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_cron_validation_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_timer(CRON, fields)
    assert [i.path for i in info.value.issues] == [f"trigger.parameters.{field}"]


# --- daylight saving time ---------------------------------------------------------------------


def test_berlin_spring_forward_skipped_time_fires_after_the_gap() -> None:
    # 2024-03-31 02:00 CET -> 03:00 CEST; 02:30 does not exist that day.
    timer = parse_timer(CRON, {"timezone": "Europe/Berlin", "hour": 2, "minute": 30})
    assert ticks(timer, utc(2024, 3, 30), 3) == [
        utc(2024, 3, 30, 1, 30),  # 02:30 CET
        utc(2024, 3, 31, 1, 30),  # 03:30 CEST
        utc(2024, 4, 1, 0, 30),  # 02:30 CEST
    ]


def test_berlin_fall_back_fixed_time_fires_once() -> None:
    # 2024-10-27 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    timer = parse_timer(CRON, {"timezone": "Europe/Berlin", "hour": 2, "minute": 30})
    assert ticks(timer, utc(2024, 10, 26), 3) == [
        utc(2024, 10, 26, 0, 30),  # 02:30 CEST
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST, first occurrence only
        utc(2024, 10, 28, 1, 30),  # 02:30 CET
    ]


def test_berlin_fall_back_every_half_hour_keeps_its_rhythm() -> None:
    timer = parse_timer(CRON, {"timezone": "Europe/Berlin", "minute": "*/30"})
    assert ticks(timer, utc(2024, 10, 26, 23, 45), 5) == [
        utc(2024, 10, 27, 0, 0),  # 02:00 CEST
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST
        utc(2024, 10, 27, 1, 0),  # 02:00 CET (repeated hour)
        utc(2024, 10, 27, 1, 30),  # 02:30 CET
        utc(2024, 10, 27, 2, 0),  # 03:00 CET
    ]


def test_berlin_spring_forward_every_half_hour() -> None:
    timer = parse_timer(CRON, {"timezone": "Europe/Berlin", "minute": "*/30"})
    assert ticks(timer, utc(2024, 3, 31, 0, 0), 3) == [
        utc(2024, 3, 31, 0, 30),  # 01:30 CET
        utc(2024, 3, 31, 1, 0),  # 03:00 CEST (02:00 skipped)
        utc(2024, 3, 31, 1, 30),  # 03:30 CEST
    ]


def test_new_york_spring_forward() -> None:
    # 2024-03-10 02:00 EST -> 03:00 EDT
    timer = parse_timer(CRON, {"timezone": "America/New_York", "hour": 2, "minute": 30})
    assert ticks(timer, utc(2024, 3, 9), 3) == [
        utc(2024, 3, 9, 7, 30),  # 02:30 EST
        utc(2024, 3, 10, 7, 30),  # 03:30 EDT
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT
    ]


def test_new_york_fall_back_hourly_fires_in_both_passes() -> None:
    # 2024-11-03 02:00 EDT -> 01:00 EST
    timer = parse_timer(CRON, {"timezone": "America/New_York", "minute": 0})
    assert ticks(timer, utc(2024, 11, 3, 4, 0), 3) == [
        utc(2024, 11, 3, 5, 0),  # 01:00 EDT
        utc(2024, 11, 3, 6, 0),  # 01:00 EST
        utc(2024, 11, 3, 7, 0),  # 02:00 EST
    ]


def test_new_york_fall_back_fixed_time_fires_once() -> None:
    timer = parse_timer(CRON, {"timezone": "America/New_York", "hour": 1, "minute": 30})
    assert next_fire_after(timer, utc(2024, 11, 3, 0)) == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert next_fire_after(timer, utc(2024, 11, 3, 5, 30)) == utc(2024, 11, 4, 6, 30)
    # starting inside the repeated hour's second pass
    assert next_fire_after(timer, utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 4, 6, 30)
    every_half = parse_timer(CRON, {"timezone": "America/New_York", "minute": "*/30"})
    assert next_fire_after(every_half, utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 3, 6, 30)


def test_timezone_shifts_the_wall_clock() -> None:
    timer = parse_timer(CRON, {"timezone": "Asia/Kolkata", "hour": 9, "minute": 0})
    assert next_fire_after(timer, utc(2024, 6, 1)) == utc(2024, 6, 1, 3, 30)


# --- interval and date timers -----------------------------------------------------------------


def test_interval_timer() -> None:
    timer = parse_timer(INTERVAL, {"unit": "seconds", "delta": 30})
    assert next_fire_after(timer, utc(2024, 6, 1, 10)) == utc(2024, 6, 1, 10, 0, 30)
    anchor = utc(2024, 6, 1, 10)
    assert next_fire_after(timer, utc(2024, 6, 1, 10, 1, 10), anchor=anchor) == utc(
        2024, 6, 1, 10, 1, 30
    )
    assert next_fire_after(timer, utc(2024, 6, 1, 10, 1, 30), anchor=anchor) == utc(
        2024, 6, 1, 10, 2
    )
    assert next_fire_after(timer, utc(2024, 6, 1, 9), anchor=anchor) == utc(2024, 6, 1, 10, 0, 30)


@pytest.mark.parametrize(
    ("unit", "delta", "seconds"),
    [("weeks", 2, 1209600), ("days", 1, 86400), ("hours", 3, 10800), ("minutes", 5, 300)],
)
def test_interval_units(unit: str, delta: int, seconds: int) -> None:
    timer = parse_timer(INTERVAL, {"unit": unit, "delta": delta})
    after = utc(2024, 6, 1)
    assert next_fire_after(timer, after) == after + timedelta(seconds=seconds)


def test_interval_is_elapsed_time_across_dst() -> None:
    timer = parse_timer(INTERVAL, {"unit": "days", "delta": 1, "timezone": "Europe/Berlin"})
    anchor = utc(2024, 3, 30, 12)
    assert next_fire_after(timer, anchor, anchor=anchor) == utc(2024, 3, 31, 12)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"unit": "fortnights", "delta": 1}, "unit"),
        ({"delta": 1}, "unit"),
        ({"unit": "seconds", "delta": 0}, "delta"),
        ({"unit": "seconds", "delta": "5"}, "delta"),
        ({"unit": "seconds"}, "delta"),
        ({"unit": "seconds", "delta": 5, "every": 1}, "every"),
    ],
)
def test_interval_validation(params: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_timer(INTERVAL, params)
    assert info.value.issues[0].path == f"trigger.parameters.{field}"


def test_date_timer() -> None:
    timer = parse_timer(DATE, {"date": "2030-01-01 09:00:00", "timezone": "America/New_York"})
    assert next_fire_after(timer, utc(2024, 6, 1)) == utc(2030, 1, 1, 14)
    assert next_fire_after(timer, utc(2030, 1, 1, 14)) is None  # strictly after
    aware = parse_timer(DATE, {"date": "2030-01-01T09:00:00+02:00", "timezone": "America/New_York"})
    assert next_fire_after(aware, utc(2024, 6, 1)) == utc(2030, 1, 1, 7)
    utc_default = parse_timer(DATE, {"date": "2030-01-01T09:00:00"})
    assert next_fire_after(utc_default, utc(2024, 6, 1)) == utc(2030, 1, 1, 9)


def test_date_in_the_past_never_fires() -> None:
    timer = parse_timer(DATE, {"date": "2014-12-31 23:59:59"})
    assert next_fire_after(timer, utc(2024, 6, 1)) is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "date"),
        ({"date": "not a date"}, "date"),
        ({"date": 5}, "date"),
        ({"date": "2030-01-01", "timezone": "X/Y"}, "timezone"),
    ],
)
def test_date_validation(params: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_timer(DATE, params)
    assert info.value.issues[0].path == f"trigger.parameters.{field}"


def test_not_a_timer() -> None:
    with pytest.raises(RuleError, match="not a timer"):
        parse_timer("core.st2.webhook", {})


# --- missed ticks -----------------------------------------------------------------------------

MINUTELY = parse_timer(INTERVAL, {"unit": "minutes", "delta": 1})


def test_nothing_due() -> None:
    plan = plan_ticks(MINUTELY, utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 0, 30))
    assert (plan.fire, plan.missed, plan.next_at) == (None, 0, utc(2024, 6, 1, 10, 1))


def test_on_time_tick() -> None:
    plan = plan_ticks(MINUTELY, utc(2024, 6, 1, 10), utc(2024, 6, 1, 10, 1))
    assert (plan.fire, plan.missed, plan.next_at) == (
        utc(2024, 6, 1, 10, 1),
        0,
        utc(2024, 6, 1, 10, 2),
    )


def test_downtime_fires_one_catch_up_tick_not_a_burst() -> None:
    plan = plan_ticks(MINUTELY, utc(2024, 6, 1, 10), utc(2024, 6, 1, 11, 0, 30))
    assert plan.fire == utc(2024, 6, 1, 10, 1)
    assert plan.missed == 59  # 10:02 … 11:00 are dropped
    assert plan.next_at == utc(2024, 6, 1, 11, 1)


def test_catch_up_older_than_max_lateness_is_dropped() -> None:
    plan = plan_ticks(
        MINUTELY, utc(2024, 6, 1, 10), utc(2024, 6, 1, 11, 0, 30), max_lateness=timedelta(minutes=5)
    )
    assert (plan.fire, plan.missed, plan.next_at) == (None, 60, utc(2024, 6, 1, 11, 1))


def test_missed_count_is_capped() -> None:
    every_second = parse_timer(CRON, {})
    plan = plan_ticks(every_second, utc(2024, 6, 1), utc(2024, 6, 2), count_cap=100)
    assert plan.fire == utc(2024, 6, 1, 0, 0, 1)
    assert plan.missed == 100
    assert plan.next_at == utc(2024, 6, 2, 0, 0, 1)


def test_interval_rhythm_follows_the_anchor() -> None:
    plan = plan_ticks(
        MINUTELY,
        utc(2024, 6, 1, 10, 0, 20),
        utc(2024, 6, 1, 10, 5),
        anchor=utc(2024, 6, 1, 9, 0, 20),
    )
    assert plan.fire == utc(2024, 6, 1, 10, 1, 20)
    assert plan.missed == 3  # 10:02:20, 10:03:20 and 10:04:20 are dropped
    assert plan.next_at == utc(2024, 6, 1, 10, 5, 20)


def test_never_fired_timer() -> None:
    plan = plan_ticks(MINUTELY, None, utc(2024, 6, 1, 10, 0, 30))
    assert (plan.fire, plan.missed) == (None, 0)
    assert plan.next_at == utc(2024, 6, 1, 10, 1, 30)


def test_date_timer_due_while_down_fires_once_late() -> None:
    timer = parse_timer(DATE, {"date": "2024-06-01T10:30:00Z"})
    plan = plan_ticks(timer, None, utc(2024, 6, 1, 11), anchor=utc(2024, 6, 1, 10))
    assert (plan.fire, plan.missed, plan.next_at) == (utc(2024, 6, 1, 10, 30), 0, None)
    done = plan_ticks(timer, utc(2024, 6, 1, 10, 30), utc(2024, 6, 1, 11))
    assert (done.fire, done.next_at) == (None, None)
