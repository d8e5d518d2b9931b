"""CLI coercion (`squall run ref k=v`) and casting of rendered values."""

from __future__ import annotations

from typing import Any

import pytest

from squall.errors import ParameterError
from squall.expr.filters import NONE_MAGIC_VALUE
from squall.params import cast_rendered_value, coerce_cli_value


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        ({"type": "string"}, " x ", " x "),
        ({}, "anything", "anything"),
        ({"type": "integer"}, "42", 42),
        ({"type": "integer"}, " -7 ", -7),
        ({"type": "integer"}, "3.0", 3),
        ({"type": "number"}, "2.5", 2.5),
        ({"type": "number"}, "2", 2),
        ({"type": "boolean"}, "true", True),
        ({"type": "boolean"}, "TRUE", True),
        ({"type": "boolean"}, "Yes", True),
        ({"type": "boolean"}, "1", True),
        ({"type": "boolean"}, "false", False),
        ({"type": "boolean"}, "no", False),
        ({"type": "boolean"}, "0", False),
        ({"type": "array"}, "a,b, c", ["a", "b", "c"]),
        ({"type": "array"}, '["a", 1]', ["a", 1]),
        ({"type": "array"}, "", []),
        ({"type": "array", "items": {"type": "integer"}}, "1,2,3", [1, 2, 3]),
        ({"type": "array", "items": {"type": "boolean"}}, "yes,no", [True, False]),
        ({"type": "object"}, '{"a": {"b": 1}}', {"a": {"b": 1}}),
        ({"type": "object"}, "k1=v1,k2=v2", {"k1": "v1", "k2": "v2"}),
        ({"type": "object"}, "url=http://x/?a=b", {"url": "http://x/?a=b"}),
        (
            {"type": "object", "properties": {"n": {"type": "integer"}}},
            "n=5,s=x",
            {"n": 5, "s": "x"},
        ),
        ({"type": "null"}, "null", None),
        ({"type": "null"}, "None", None),
        ({"type": ["integer", "string"]}, "5", 5),
        ({"type": ["integer", "string"]}, "five", "five"),
        ({"type": ["null", "integer"]}, "null", None),
    ],
)
def test_coercion_table(spec: dict[str, Any], raw: str, expected: Any) -> None:
    result = coerce_cli_value(spec, raw, name="p")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("spec", "raw", "fragment"),
    [
        ({"type": "integer"}, "ten", "expected an integer"),
        ({"type": "integer"}, "2.5", "expected an integer"),
        ({"type": "number"}, "abc", "expected a number"),
        ({"type": "number"}, "nan", "expected a finite number"),
        ({"type": "boolean"}, "maybe", "expected a boolean"),
        ({"type": "array"}, "[1, 2", "invalid JSON"),
        ({"type": "array"}, '{"a": 1}', "expected an array (a JSON list or a,b,c)"),
        ({"type": "array", "items": {"type": "integer"}}, "1,x", "parameter 'p[1]'"),
        ({"type": "object"}, "just-a-word", "k1=v1,k2=v2"),
        ({"type": "object"}, "[1]", "expected an object"),
        ({"type": "null"}, "x", "expected null"),
        ({"type": ["integer", "boolean"]}, "x", "expected a boolean"),
    ],
)
def test_coercion_errors_name_parameter_and_type(
    spec: dict[str, Any], raw: str, fragment: str
) -> None:
    with pytest.raises(ParameterError) as info:
        coerce_cli_value(spec, raw, name="p")
    message = str(info.value)
    assert fragment in message
    assert "parameter 'p" in message
    # The whole input, or for an array item the offending item.
    assert f"got {raw!r}" in message or ("p[1]" in fragment and "got 'x'" in message)


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"type": "integer"}, "3", 3),
        ({"type": "number"}, "1.5", 1.5),
        ({"type": "boolean"}, "true", True),
        ({"type": "boolean"}, "False", False),
        ({"type": "array"}, '["a", "b"]', ["a", "b"]),
        ({"type": "array"}, "['a', 'b']", ["a", "b"]),
        ({"type": "object"}, '{"k": 1}', {"k": 1}),
        ({"type": "object"}, "{'k': True}", {"k": True}),
        ({"type": "null"}, "None", None),
        ({"type": "string"}, "3", "3"),
        ({"type": "string"}, 3, "3"),
        ({"type": "string"}, True, "True"),
        ({"type": "string"}, {"a": 1}, '{"a": 1}'),
        ({"type": ["string", "integer"]}, "3", "3"),
        ({"type": "integer"}, "not a number", "not a number"),  # left for validation
        ({"type": "array"}, "oops", "oops"),
        ({"type": "integer"}, NONE_MAGIC_VALUE, None),
        ({"type": "string"}, NONE_MAGIC_VALUE, None),
        ({}, "x", "x"),
    ],
)
def test_cast_rendered_value(spec: dict[str, Any], value: Any, expected: Any) -> None:
    result = cast_rendered_value(spec, value)
    assert result == expected
    assert type(result) is type(expected)
