"""Every criteria operator, with StackStorm's semantics and its type edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from squall.rules import RuleEvaluationError, compile_criteria, evaluate_criteria, operator_names

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ev(op: str, value: Any, pattern: Any = None) -> bool:
    spec: dict[str, Any] = {"type": op}
    if pattern is not None:
        spec["pattern"] = pattern
    criteria = compile_criteria({"trigger.v": spec})
    return evaluate_criteria(criteria, {"v": value}, now=NOW)


# (operator, value, pattern, expected)
TABLE: list[tuple[str, Any, Any, bool]] = [
    # equals / nequals: arbitrary types, no coercion
    ("equals", "a", "a", True),
    ("equals", "a", "A", False),
    ("equals", 5, 5, True),
    ("equals", 5, "5", False),
    ("equals", 5, 5.0, True),
    ("equals", [1, 2], [1, 2], True),
    ("equals", {"a": 1}, {"a": 1}, True),
    ("equals", True, True, True),
    ("equals", None, "x", False),
    ("eq", "a", "a", True),
    ("EQUALS", "a", "a", True),
    ("nequals", "a", "b", True),
    ("nequals", "a", "a", False),
    ("nequals", 5, "5", True),
    ("nequals", None, "x", True),
    ("neq", 1, 1, False),
    # iequals: strings, case-insensitive
    ("iequals", "Hello", "hELLO", True),
    ("iequals", "Hello", "world", False),
    ("ieq", "ABC", "abc", True),
    ("iequals", None, "x", False),
    # contains / ncontains: substring, list membership, object keys
    ("contains", "hello world", "lo w", True),
    ("contains", "hello", "Hello", False),
    ("contains", ["a", "b"], "b", True),
    ("contains", ["a", "b"], "c", False),
    ("contains", [1, 2, 3], 2, True),
    ("contains", {"k": 1}, "k", True),
    ("contains", None, "x", False),
    ("ncontains", "hello", "xyz", True),
    ("ncontains", "hello", "ell", False),
    ("ncontains", ["a"], "a", False),
    ("ncontains", ["a"], "b", True),
    ("ncontains", None, "x", False),
    # icontains / incontains: strings only
    ("icontains", "Hello World", "WORLD", True),
    ("icontains", "Hello", "xyz", False),
    ("incontains", "Hello", "XYZ", True),
    ("incontains", "Hello", "HELL", False),
    ("icontains", None, "x", False),
    # startswith / endswith and case-insensitive variants
    ("startswith", "foobar", "foo", True),
    ("startswith", "foobar", "Foo", False),
    ("istartswith", "FooBar", "fOO", True),
    ("istartswith", "FooBar", "bar", False),
    ("endswith", "foobar", "bar", True),
    ("endswith", "foobar", "BAR", False),
    ("iendswith", "fooBAR", "bar", True),
    ("iendswith", "fooBAR", "foo", False),
    ("startswith", None, "x", False),
    # lessthan / greaterthan
    ("lessthan", 3, 5, True),
    ("lessthan", 5, 3, False),
    ("lessthan", 5, 5, False),
    ("lt", 2.5, 3, True),
    ("greaterthan", 10, 5, True),
    ("greaterthan", 5, 10, False),
    ("gt", 5, 5, False),
    ("greaterthan", "b", "a", True),  # two strings: lexical (as StackStorm)
    ("lessthan", "10", "9", True),  # lexical, not numeric
    ("greaterthan", 10, "5", True),  # number vs numeric string: numeric (Squall)
    ("lessthan", "4.5", 5, True),
    ("lessthan", " 7 ", 5, False),
    ("greaterthan", None, 1, False),
    ("lessthan", None, 1, False),
    # matchwildcard (shell wildcards, case-sensitive)
    ("matchwildcard", "server-01.prod", "server-*.prod", True),
    ("matchwildcard", "server-01.prod", "server-??.prod", True),
    ("matchwildcard", "server-01.dev", "server-*.prod", False),
    ("matchwildcard", "Server", "server", False),
    ("matchwildcard", "a[b", "a[[]b", True),
    ("matchwildcard", None, "*", False),
    # regex (search), iregex, matchregex (match, DOTALL)
    ("regex", "error: disk full", r"disk\s+full", True),
    ("regex", "error: disk full", r"^disk", False),
    ("regex", "Disk", "disk", False),
    ("iregex", "Disk FULL", r"disk\s+full", True),
    ("iregex", "ok", "fail", False),
    ("matchregex", "abc", "b", False),  # anchored at the start
    ("matchregex", "abc", "a.c", True),
    ("matchregex", "line1\nline2", "line1.line2", True),  # DOTALL
    ("regex", "line1\nline2", "line1.line2", False),  # no DOTALL
    ("regex", None, ".*", False),
    # timediff: seconds since a timestamp (NOW = 2024-06-01T12:00:00Z)
    ("timediff_lt", "2024-06-01T11:59:30Z", 60, True),
    ("timediff_lt", "2024-06-01T11:58:00Z", 60, False),
    ("td_lt", "2024-06-01T11:59:30", 60, True),  # naive means UTC
    ("timediff_lt", "2024-06-01T13:59:30+02:00", 60, True),
    ("timediff_gt", "2024-06-01T11:00:00+00:00", 600, True),
    ("timediff_gt", "2024-06-01T11:59:59Z", 600, False),
    ("td_gt", NOW.timestamp() - 3600, 600, True),  # epoch seconds
    ("timediff_lt", str(int(NOW.timestamp()) - 5), 10, True),  # numeric string epoch
    ("timediff_lt", "2024-06-01 11:59:50", "30", True),  # numeric-string pattern
    ("timediff_lt", None, 10, False),
    # exists / nexists: null counts as not existing (StackStorm: value is None)
    ("exists", "x", None, True),
    ("exists", 0, None, True),
    ("exists", False, None, True),
    ("exists", None, None, False),
    ("nexists", None, None, True),
    ("nexists", "", None, False),
    # inside / ninside: value in pattern
    ("inside", "b", ["a", "b"], True),
    ("inside", "c", ["a", "b"], False),
    ("in", 2, [1, 2, 3], True),
    ("inside", "ell", "hello", True),
    ("inside", "k", {"k": 1}, True),
    ("inside", [1], [[1], [2]], True),  # unhashable value in a list
    ("inside", None, [None, 1], True),
    ("inside", None, "abc", False),
    ("ninside", "c", ["a", "b"], True),
    ("nin", "a", ["a", "b"], False),
    ("ninside", "z", "hello", True),
    ("ninside", "ell", "hello", False),
]


@pytest.mark.parametrize(("op", "value", "pattern", "expected"), TABLE)
def test_operator_table(op: str, value: Any, pattern: Any, expected: bool) -> None:
    assert ev(op, value, pattern) is expected


# Type mismatches StackStorm raised on become evaluation errors (failed enforcements).
MISMATCHES: list[tuple[str, Any, Any]] = [
    ("iequals", 5, "5"),
    ("icontains", ["A"], "a"),
    ("startswith", ["foo"], "f"),
    ("endswith", 42, "2"),
    ("contains", 42, "4"),
    ("contains", "abc", 1),
    ("lessthan", "abc", 5),
    ("greaterthan", {"a": 1}, 1),
    ("regex", 123, "1"),
    ("matchwildcard", 5, "*"),
    ("timediff_lt", "not a date", 10),
    ("timediff_lt", [1], 10),
    ("inside", 5, "12345"),
    ("inside", [1], {"a": 1}),
]


@pytest.mark.parametrize(("op", "value", "pattern"), MISMATCHES)
def test_type_mismatch_is_an_evaluation_error(op: str, value: Any, pattern: Any) -> None:
    with pytest.raises(RuleEvaluationError) as info:
        ev(op, value, pattern)
    assert info.value.key == "trigger.v"
    assert info.value.operator == op
    assert info.value.reason


@pytest.mark.parametrize(
    "op",
    [n for n in operator_names() if n not in ("exists", "nexists", "search")],
)
def test_missing_key_fails_every_operator_but_nexists(op: str) -> None:
    pattern: Any = ["x"] if op in ("inside", "in", "ninside", "nin") else "1"
    criteria = compile_criteria({"trigger.absent": {"type": op, "pattern": pattern}})
    assert evaluate_criteria(criteria, {"v": 1}, now=NOW) is False


def test_missing_key_exists_and_nexists() -> None:
    exists = compile_criteria({"trigger.absent": {"type": "exists"}})
    nexists = compile_criteria({"trigger.absent": {"type": "nexists"}})
    assert evaluate_criteria(exists, {}) is False
    assert evaluate_criteria(nexists, {}) is True
    assert evaluate_criteria(nexists, {"absent": 1}) is False


def test_all_stackstorm_names_are_accepted() -> None:
    names = set(operator_names())
    expected = {
        "equals", "eq", "nequals", "neq", "iequals", "ieq", "contains", "ncontains",
        "icontains", "incontains", "startswith", "istartswith", "endswith", "iendswith",
        "lessthan", "lt", "greaterthan", "gt", "matchwildcard", "regex", "iregex",
        "matchregex", "timediff_lt", "td_lt", "timediff_gt", "td_gt", "exists", "nexists",
        "inside", "in", "ninside", "nin", "search",
    }  # fmt: skip
    assert names == expected


def test_timediff_uses_the_clock_when_no_time_is_given() -> None:
    criteria = compile_criteria({"trigger.t": {"type": "td_lt", "pattern": 60}})
    recent = datetime.now(UTC).isoformat()
    assert evaluate_criteria(criteria, {"t": recent}) is True
    assert evaluate_criteria(criteria, {"t": "2000-01-01T00:00:00Z"}) is False


def test_timediff_accepts_datetime_objects() -> None:
    criteria = compile_criteria({"trigger.t": {"type": "td_gt", "pattern": 60}})
    assert evaluate_criteria(criteria, {"t": datetime(2024, 6, 1, 11, 0)}, now=NOW) is True
