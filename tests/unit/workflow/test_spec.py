"""Parsing workflow definitions and their shorthands."""

from __future__ import annotations

from squall.workflow.params import parse_inline_params, parse_inline_params_ordered
from squall.workflow.spec import parse_workflow

DEFINITION = """
version: 1.0
description: shorthands
input:
  - name
  - count: 3
vars:
  - greeting: hello
tasks:
  shorthand:
    action: core.local cmd="echo <% ctx().name %>" timeout=30 sudo=true extra=<% ctx().count %>
    next:
      - when: <% succeeded() %>
        publish: a=1 b="two" c=<% result() %> d='{{ ctx("x") }}' e=[1, 2]
        do: left, right
      - publish:
          - x: 1
          - y: <% ctx().x %>
  left:
    with: <% ctx(items) %>
    action: core.echo message=<% item() %>
  right:
    with:
      items: a, b in <% zip(ctx(xs), ctx(ys)) %>
      concurrency: <% ctx().count %>
    action: core.echo
    input:
      message: <% item(a) %>
    retry:
      when: <% failed() %>
      count: 2
      delay: 5
    next:
      - do: [join_me]
  join_me:
    join: all
    delay: 10
    action: core.noop
"""


def test_action_shorthand_splits_action_and_input() -> None:
    task = parse_workflow(DEFINITION).tasks["shorthand"]
    assert task.action == "core.local"
    assert task.input == {
        "cmd": "echo <% ctx().name %>",
        "timeout": 30,
        "sudo": True,
        "extra": "<% ctx().count %>",
    }


def test_publish_string_becomes_ordered_pairs() -> None:
    first, second = parse_workflow(DEFINITION).tasks["shorthand"].next
    assert first.publish == (
        ("a", 1),
        ("b", "two"),
        ("c", "<% result() %>"),
        ("d", '{{ ctx("x") }}'),
        ("e", [1, 2]),
    )
    assert first.do == ("left", "right")
    assert first.when == "<% succeeded() %>"
    assert second.publish == (("x", 1), ("y", "<% ctx().x %>"))
    assert second.do == ("continue",) and second.when is None


def test_items_forms() -> None:
    spec = parse_workflow(DEFINITION)
    left = spec.tasks["left"].items
    assert left is not None and left.keys is None and left.expression == "<% ctx(items) %>"
    right = spec.tasks["right"].items
    assert right is not None
    assert right.keys == ("a", "b")
    assert right.expression == "<% zip(ctx(xs), ctx(ys)) %>"
    assert right.concurrency == "<% ctx().count %>"


def test_retry_join_delay_inputs_vars() -> None:
    spec = parse_workflow(DEFINITION)
    retry = spec.tasks["right"].retry
    assert retry is not None and (retry.when, retry.count, retry.delay) == ("<% failed() %>", 2, 5)
    assert spec.tasks["join_me"].is_join and spec.tasks["join_me"].delay == 10
    assert spec.input == (("name", None, False), ("count", 3, True))
    assert spec.vars == (("greeting", "hello"),)
    assert spec.tasks["right"].next[0].do == ("join_me",)


def test_next_tasks_sorted_by_name() -> None:
    task = parse_workflow(DEFINITION).tasks["shorthand"]
    assert task.next_tasks() == [
        ("continue", None, 1),
        ("left", "<% succeeded() %>", 0),
        ("right", "<% succeeded() %>", 0),
    ]


def test_inline_params_values() -> None:
    assert parse_inline_params("a=1 b=-2.5 c=true d=False e=null f=\"x y\" g='z'") == {
        "a": 1,
        "b": -2.5,
        "c": True,
        "d": False,
        "e": None,
        "f": "x y",
        "g": "z",
    }
    assert parse_inline_params('j={"k": 1}') == {}
    assert parse_inline_params("bare=word") == {}
    assert parse_inline_params_ordered("b=2 a=1") == [("b", 2), ("a", 1)]
    assert parse_inline_params_ordered(None) == []


def test_malformed_definition_still_parses_for_inspection() -> None:
    spec = parse_workflow({"tasks": {"t": "not a mapping", "u": {"next": "nope"}}})
    assert set(spec.tasks) == {"t", "u"}
    assert spec.tasks["u"].next == ()
