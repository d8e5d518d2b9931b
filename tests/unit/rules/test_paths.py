"""Criteria key paths: dotted, bracketed, indexes, #tags, missing values."""

from __future__ import annotations

from typing import Any

import pytest

from squall.rules import MISSING, compile_criteria, evaluate_criteria, parse_key
from squall.rules.paths import KeyPathError

PAYLOAD: dict[str, Any] = {
    "body": {"x": 1, "nested": {"deep": {"er": "yes"}}, "items": [{"id": "a"}, {"id": "b"}]},
    "headers": {"X-Foo": "bar", "Content-Type": "json"},
    "a.b": "dotted key",
    "it's": "quoted",
    "list": [10, 20, 30],
    "text": "hello",
    "nothing": None,
}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("trigger", PAYLOAD),
        ("trigger.body.x", 1),
        ("trigger.body.nested.deep.er", "yes"),
        ("trigger.headers['X-Foo']", "bar"),
        ('trigger.headers["Content-Type"]', "json"),
        ("trigger.headers.X-Foo", "bar"),
        ("trigger['a.b']", "dotted key"),
        ("trigger.'a.b'", "dotted key"),
        ("trigger['it\\'s']", "quoted"),
        ("trigger.list[0]", 10),
        ("trigger.list[-1]", 30),
        ("trigger.list.1", 20),
        ("trigger.body.items[1].id", "b"),
        ("trigger.body['items'][0]['id']", "a"),
        ("trigger.nothing", None),
    ],
)
def test_lookup(key: str, expected: Any) -> None:
    assert parse_key(key).get(PAYLOAD) == expected


@pytest.mark.parametrize(
    "key",
    [
        "trigger.absent",
        "trigger.body.absent.deeper",
        "trigger.list[3]",
        "trigger.list.x",
        "trigger.text[0]",  # strings are not indexed
        "trigger.text.upper",
        "trigger.body.x.y",  # through a number
        "trigger.nothing.x",  # through null
        "trigger.headers[0]",  # an index into an object
        "trigger.body.items.id",
    ],
)
def test_missing_paths_resolve_to_missing(key: str) -> None:
    assert parse_key(key).get(PAYLOAD) is MISSING


def test_tag_is_stripped() -> None:
    path = parse_key("trigger.body.x#upper")
    assert path.tag == "upper"
    assert path.path == "trigger.body.x"
    assert path.get(PAYLOAD) == 1
    quoted = parse_key("trigger.headers['a#b']#2")
    assert quoted.steps == ("headers", "a#b")
    assert quoted.tag == "2"


def test_repeated_keys_with_tags_all_apply() -> None:
    criteria = compile_criteria(
        {
            "trigger.tags#1": {"type": "contains", "pattern": "deploy"},
            "trigger.tags#2": {"type": "ncontains", "pattern": "skip"},
        }
    )
    assert evaluate_criteria(criteria, {"tags": ["deploy", "prod"]}) is True
    assert evaluate_criteria(criteria, {"tags": ["deploy", "skip"]}) is False


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "non-empty"),
        ("payload.x", "start with 'trigger.'"),
        ("trigger..x", "expected a name"),
        ("trigger.x.", "expected a name"),
        ("trigger['x'", "expected ']'"),
        ("trigger['x", "unterminated"),
        ("trigger[x]", "quoted name or an integer"),
        ("trigger x", "unexpected"),
    ],
)
def test_malformed_keys(key: str, fragment: str) -> None:
    with pytest.raises(KeyPathError, match=fragment):
        parse_key(key)


def test_item_root_only_where_allowed() -> None:
    assert parse_key("item.x", roots=("item",)).get({"x": 2}) == 2
    with pytest.raises(KeyPathError):
        parse_key("item.x")
