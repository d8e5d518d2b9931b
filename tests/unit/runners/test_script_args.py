"""Serialization of script action arguments (StackStorm's rules)."""

from __future__ import annotations

import pytest

from squall.runners.script_args import script_arguments, serialize_named, serialize_positional


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "1"),
        (False, "0"),
        (["a", "b", 3], "a,b,3"),
        ([], ""),
        ({"k": [1, 2]}, '{"k":[1,2]}'),
        (3, "3"),
        (1.5, "1.5"),
        ("with space", "with space"),
    ],
)
def test_positional_serialization(value, expected):
    assert serialize_positional(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (False, None),
        (True, "--flag"),
        ("v", "--flag=v"),
        (0, "--flag=0"),
        ([1, "a"], '--flag=[1,"a"]'),
        ({"a": 1}, '--flag={"a":1}'),
    ],
)
def test_named_serialization(value, expected):
    assert serialize_named("flag", value) == expected


def test_kwarg_op_prefix():
    assert serialize_named("x", 1, "-") == "-x=1"


def test_positional_order_gaps_and_missing():
    specs = {
        "c": {"position": 2},
        "a": {"position": 0},
        "b": {"position": 1},
        "named": {"type": "string"},
    }
    args = script_arguments({"a": "A", "c": True, "named": "n"}, specs)
    assert args == ["--named=n", "A", "", "1"]


def test_runner_parameters_are_excluded():
    specs = {"timeout": {"type": "integer"}, "x": {"type": "string"}}
    args = script_arguments({"timeout": 5, "x": "y"}, specs, exclude={"timeout"})
    assert args == ["--x=y"]


def test_bool_position_is_not_a_position():
    assert script_arguments({"x": "v"}, {"x": {"position": True}}) == ["--x=v"]


def test_values_are_single_arguments_never_shell():
    evil = "$(rm -rf /); `id` && echo"
    assert script_arguments({"p": evil, "n": evil}, {"p": {"position": 0}}) == [
        f"--n={evil}",
        evil,
    ]
