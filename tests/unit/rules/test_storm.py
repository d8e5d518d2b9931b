"""Throttle and dedup: config validation, bucket keys and windows, admission semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from squall.errors import RuleError
from squall.rules import MemoryStormGate, RuleEvaluationError, compile_rule, storm_buckets
from squall.rules.storm import parse_dedup, parse_throttle, parse_window

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def buckets(
    throttle: Any = None, dedup: Any = None, payload: Any = None, now: datetime = T0
) -> list[Any]:
    return storm_buckets(
        "ops.alert", parse_throttle(throttle), parse_dedup(dedup), payload or {}, now=now
    )


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (30, 30),
        (1.5, 1.5),
        ("45", 45),
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        (" 10 M ", 600),
    ],
)
def test_windows(raw: Any, seconds: float) -> None:
    assert parse_window(raw, path="w") == seconds


@pytest.mark.parametrize("raw", [0, -5, "", "5x", "m5", "1h-", True, None, [1], "nan", "inf"])
def test_bad_windows(raw: Any) -> None:
    with pytest.raises(RuleError) as info:
        parse_window(raw, path="throttle.window")
    assert info.value.issues[0].path == "throttle.window"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"window": 60}, "throttle.count"),
        ({"count": 0, "window": 60}, "throttle.count"),
        ({"count": "5", "window": 60}, "throttle.count"),
        ({"count": 5}, "throttle.window"),
        ({"count": 5, "window": "soon"}, "throttle.window"),
        ({"count": 5, "window": 60, "group_by": "payload.host"}, "throttle.group_by.0"),
        ({"count": 5, "window": 60, "group_by": {"a": 1}}, "throttle.group_by"),
        ({"count": 5, "window": 60, "per": "host"}, "throttle.per"),
        ("5/m", "throttle"),
    ],
)
def test_bad_throttle(raw: Any, path: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_throttle(raw)
    assert info.value.issues[0].path == path


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"window": 60}, "dedup.key"),
        ({"key": "", "window": 60}, "dedup.key"),
        ({"key": "{{ trigger.id ", "window": 60}, "dedup.key"),
        ({"key": "{{ trigger.id }}"}, "dedup.window"),
        ({"key": "{{ trigger.id }}", "window": 60, "scope": "x"}, "dedup.scope"),
    ],
)
def test_bad_dedup(raw: Any, path: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_dedup(raw)
    assert info.value.issues[0].path == path


def test_rule_level_paths() -> None:
    with pytest.raises(RuleError) as info:
        compile_rule(
            {
                "name": "r",
                "trigger": {"type": "t"},
                "action": {"ref": "a.b"},
                "throttle": {"count": -1, "window": 1},
            }
        )
    assert [i.path for i in info.value.issues] == ["throttle.count"]


def test_throttle_bucket_key_and_fixed_window() -> None:
    cfg = {"count": 3, "window": "5m", "group_by": ["trigger.host", "trigger.check"]}
    [b] = buckets(cfg, payload={"host": "web1", "check": "disk"}, now=T0 + timedelta(minutes=7))
    assert b.kind == "throttle" and b.mode == "fixed" and b.limit == 3
    assert b.window_start == T0 + timedelta(minutes=5)
    assert b.window_end == T0 + timedelta(minutes=10)
    assert b.group == ["web1", "disk"]
    assert b.key.startswith("throttle:ops.alert:")
    [same] = buckets(
        cfg, payload={"host": "web1", "check": "disk", "other": 1}, now=T0 + timedelta(minutes=9)
    )
    [other] = buckets(cfg, payload={"host": "web2", "check": "disk"}, now=T0 + timedelta(minutes=7))
    [missing] = buckets(cfg, payload={"check": "disk"}, now=T0 + timedelta(minutes=7))
    assert same.key == b.key and same.window_start == b.window_start
    assert other.key != b.key
    assert missing.group == [None, "disk"] and missing.key != b.key


def test_throttle_without_group_by_is_per_rule() -> None:
    [b] = buckets({"count": 1, "window": 60})
    assert b.key == "throttle:ops.alert" and b.group == []


def test_dedup_bucket_renders_the_key() -> None:
    [b] = buckets(
        dedup={"key": "{{ trigger.alert.id }}-{{ trigger.host }}", "window": "1h"},
        payload={"alert": {"id": 7}, "host": "db"},
    )
    assert b.kind == "dedup" and b.mode == "sliding" and b.limit == 1
    assert b.group == "7-db"
    assert b.window_start == T0 - timedelta(hours=1)
    assert b.window_end == T0 + timedelta(hours=1)
    [again] = buckets(
        dedup={"key": "{{ trigger.alert.id }}-{{ trigger.host }}", "window": "1h"},
        payload={"alert": {"id": 7}, "host": "db"},
    )
    assert again.key == b.key


def test_dedup_render_failure_is_an_evaluation_error() -> None:
    with pytest.raises(RuleEvaluationError) as info:
        buckets(dedup={"key": "{{ trigger.alert.id }}", "window": 60}, payload={})
    assert info.value.rule_ref == "ops.alert"
    assert info.value.key == "dedup.key"


def test_both_buckets() -> None:
    got = buckets({"count": 2, "window": 60}, {"key": "x", "window": 60})
    assert [b.kind for b in got] == ["throttle", "dedup"]
    assert buckets() == []


def test_throttle_admission() -> None:
    gate = MemoryStormGate()
    cfg = {"count": 2, "window": 60, "group_by": ["trigger.host"]}

    def admit(host: str, at: datetime) -> bool:
        return gate.admit(buckets(cfg, payload={"host": host}, now=at), at)

    assert admit("a", T0) and admit("a", T0 + timedelta(seconds=10))
    assert not admit("a", T0 + timedelta(seconds=20))  # third in the window
    assert admit("b", T0 + timedelta(seconds=20))  # another group
    assert admit("a", T0 + timedelta(seconds=60))  # next window


def test_dedup_admission_is_a_sliding_window() -> None:
    gate = MemoryStormGate()
    cfg = {"key": "{{ trigger.id }}", "window": 60}

    def admit(alert: int, at: datetime) -> bool:
        return gate.admit(buckets(dedup=cfg, payload={"id": alert}, now=at), at)

    assert admit(1, T0)
    assert not admit(1, T0 + timedelta(seconds=59))
    assert not admit(1, T0 + timedelta(seconds=60))
    assert admit(2, T0 + timedelta(seconds=30))
    assert admit(1, T0 + timedelta(seconds=61))
    assert not admit(1, T0 + timedelta(seconds=90))  # measured from the last admission


def test_a_suppressed_enforcement_is_not_counted() -> None:
    gate = MemoryStormGate()
    throttle = {"count": 1, "window": 3600}
    dedup = {"key": "{{ trigger.id }}", "window": 3600}
    assert gate.admit(buckets(throttle, dedup, {"id": 1}), T0)
    assert not gate.admit(buckets(throttle, dedup, {"id": 1}), T0)  # dedup and throttle
    assert not gate.admit(buckets(throttle, dedup, {"id": 2}), T0)  # throttle only
    assert gate.admit(buckets(None, dedup, {"id": 2}), T0)  # dedup was not counted for id 2
