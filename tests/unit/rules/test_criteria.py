"""Criteria compilation errors, Jinja patterns and the search operator."""

from __future__ import annotations

from typing import Any

import pytest

from squall.errors import RuleError
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot
from squall.rules import RuleEvaluationError, compile_criteria, evaluate_criteria


def issue_paths(raw: Any) -> dict[str, str]:
    with pytest.raises(RuleError) as info:
        compile_criteria(raw)
    return {str(i.path): i.message for i in info.value.issues}


# --- compile-time errors ----------------------------------------------------------------------


def test_unknown_operator_lists_the_valid_ones() -> None:
    issues = issue_paths({"trigger.x": {"type": "equalz", "pattern": 1}})
    message = issues["criteria.trigger.x.type"]
    assert "equalz" in message
    assert "equals" in message and "iregex" in message and "td_lt" in message


def test_missing_type() -> None:
    assert "criteria.trigger.x.type" in issue_paths({"trigger.x": {"pattern": 1}})
    assert "criteria.trigger.x.type" in issue_paths({"trigger.x": "equals"})


def test_malformed_key_path() -> None:
    issues = issue_paths({"trigger.a[": {"type": "eq", "pattern": 1}})
    assert "criteria.trigger.a[" in issues
    issues = issue_paths({"payload.a": {"type": "eq", "pattern": 1}})
    assert "start with 'trigger.'" in issues["criteria.payload.a"]


@pytest.mark.parametrize("op", ["regex", "iregex", "matchregex"])
def test_bad_regex(op: str) -> None:
    issues = issue_paths({"trigger.x": {"type": op, "pattern": "(unclosed"}})
    assert "invalid regular expression" in issues["criteria.trigger.x.pattern"]


def test_template_syntax_error() -> None:
    issues = issue_paths({"trigger.x": {"type": "eq", "pattern": "{{ trigger.x "}})
    assert "criteria.trigger.x.pattern" in issues


def test_missing_pattern() -> None:
    issues = issue_paths({"trigger.x": {"type": "equals"}})
    assert "needs a pattern" in issues["criteria.trigger.x.pattern"]


@pytest.mark.parametrize(
    ("op", "pattern"),
    [("startswith", 5), ("iequals", ["a"]), ("timediff_lt", "soon"), ("inside", 5)],
)
def test_static_pattern_of_the_wrong_type(op: str, pattern: Any) -> None:
    assert "criteria.trigger.x.pattern" in issue_paths(
        {"trigger.x": {"type": op, "pattern": pattern}}
    )


def test_search_needs_condition_and_pattern() -> None:
    child = {"item.a": {"type": "eq", "pattern": 1}}
    issues = issue_paths({"trigger.l": {"type": "search", "pattern": child}})
    assert "condition" in issues["criteria.trigger.l.type"]
    issues = issue_paths({"trigger.l": {"type": "search", "condition": "any"}})
    assert "criteria.trigger.l.pattern" in issues
    issues = issue_paths({"trigger.l": {"type": "search", "condition": "some", "pattern": child}})
    assert "any, all, all2any, any2any" in issues["criteria.trigger.l.condition"]


def test_search_child_errors_have_nested_paths() -> None:
    raw = {
        "trigger.l": {"type": "search", "condition": "any", "pattern": {"item.a": {"type": "nope"}}}
    }
    assert "criteria.trigger.l.pattern.item.a.type" in issue_paths(raw)
    raw = {
        "trigger.l": {
            "type": "search",
            "condition": "any",
            "pattern": {"trigger.a": {"type": "eq", "pattern": 1}},
        }
    }
    assert "start with 'item.'" in issue_paths(raw)["criteria.trigger.l.pattern.trigger.a"]


def test_all_problems_are_reported_at_once() -> None:
    issues = issue_paths(
        {
            "trigger.a": {"type": "bogus"},
            "trigger.b": {"type": "regex", "pattern": "["},
            "trigger.c": {"type": "eq", "pattern": 1},
        }
    )
    assert set(issues) == {"criteria.trigger.a.type", "criteria.trigger.b.pattern"}


def test_criteria_must_be_a_mapping() -> None:
    assert "criteria" in issue_paths(["trigger.x"])
    assert compile_criteria(None) == ()


# --- Jinja patterns ---------------------------------------------------------------------------


def test_pattern_template_sees_the_trigger() -> None:
    criteria = compile_criteria({"trigger.a": {"type": "equals", "pattern": "{{ trigger.b }}"}})
    assert evaluate_criteria(criteria, {"a": "x", "b": "x"}) is True
    assert evaluate_criteria(criteria, {"a": "x", "b": "y"}) is False


def test_lone_expression_keeps_its_type() -> None:
    criteria = compile_criteria({"trigger.n": {"type": "equals", "pattern": "{{ 2 + 3 }}"}})
    assert evaluate_criteria(criteria, {"n": 5}) is True
    mixed = compile_criteria({"trigger.s": {"type": "equals", "pattern": "v{{ 2 + 3 }}"}})
    assert evaluate_criteria(mixed, {"s": "v5"}) is True


def test_pattern_template_reads_the_datastore() -> None:
    kv = KVSnapshot({KeyRef("system", None, "build"): KVEntry("41")})
    criteria = compile_criteria(
        {"trigger.build": {"type": "greaterthan", "pattern": "{{ st2kv.system.build }}"}}
    )
    assert evaluate_criteria(criteria, {"build": 42}, kv=kv) is True
    assert evaluate_criteria(criteria, {"build": 40}, kv=kv) is False


def test_missing_datastore_key_is_recorded_for_prefetch() -> None:
    kv = KVSnapshot()
    criteria = compile_criteria({"trigger.x": {"type": "eq", "pattern": "{{ st2kv.system.want }}"}})
    assert evaluate_criteria(criteria, {"x": "v"}, kv=kv) is False
    assert KeyRef("system", None, "want") in kv.missed


def test_render_failure_is_an_evaluation_error() -> None:
    criteria = compile_criteria(
        {"trigger.a": {"type": "equals", "pattern": "{{ trigger.nope.deeper }}"}}
    )
    with pytest.raises(RuleEvaluationError) as info:
        evaluate_criteria(criteria, {"a": 1})
    assert info.value.key == "trigger.a"
    assert info.value.operator == "equals"
    assert info.value.issues[0].path == "criteria.trigger.a"


def test_rendered_regex_that_does_not_compile_is_an_evaluation_error() -> None:
    criteria = compile_criteria({"trigger.a": {"type": "regex", "pattern": "{{ trigger.re }}"}})
    assert evaluate_criteria(criteria, {"a": "abc", "re": "^a"}) is True
    with pytest.raises(RuleEvaluationError, match="invalid regular expression"):
        evaluate_criteria(criteria, {"a": "abc", "re": "("})


# --- search -----------------------------------------------------------------------------------

FIELDS = {
    "fields": [
        {"name": "Status", "value": "Approved", "level": 45},
        {"name": "Owner", "value": "stanley", "level": 20},
    ]
}


def search(
    condition: str, children: dict[str, Any], payload: Any = FIELDS, key: str = "trigger.fields"
) -> bool:
    criteria = compile_criteria(
        {key: {"type": "search", "condition": condition, "pattern": children}}
    )
    return evaluate_criteria(criteria, payload)


def test_search_any_needs_one_item_matching_all_children() -> None:
    both = {
        "item.name": {"type": "eq", "pattern": "Status"},
        "item.value": {"type": "eq", "pattern": "Approved"},
    }
    assert search("any", both) is True
    crossed = {
        "item.name": {"type": "eq", "pattern": "Status"},
        "item.value": {"type": "eq", "pattern": "stanley"},
    }
    assert search("any", crossed) is False


def test_search_all_needs_every_item_matching_all_children() -> None:
    assert search("all", {"item.name": {"type": "exists"}}) is True
    assert search("all", {"item.level": {"type": "gt", "pattern": 30}}) is False


def test_search_all2any_and_any2any() -> None:
    # StackStorm's docs example: levels outside 40..50
    outside = {
        "item.level#1": {"type": "lessthan", "pattern": 40},
        "item.level#2": {"type": "greaterthan", "pattern": 50},
    }
    assert search("any2any", outside) is True  # the 20 is outside
    assert search("all2any", outside) is False  # the 45 is inside
    assert search("all2any", outside, {"fields": [{"level": 10}, {"level": 60}]}) is True
    assert search("any2any", outside, {"fields": [{"level": 45}]}) is False
    # any2any differs from any: no single item needs to match every child
    mixed = {
        "item.name": {"type": "eq", "pattern": "Owner"},
        "item.level": {"type": "gt", "pattern": 40},
    }
    assert search("any2any", mixed) is True
    assert search("any", mixed) is False


def test_search_on_an_object_treats_it_as_one_item() -> None:
    child = {"item.level": {"type": "lt", "pattern": 50}}
    assert search("all2any", child, {"data": {"level": 43}}, key="trigger.data") is True
    assert search("any", child, {"data": {"level": 53}}, key="trigger.data") is False


def test_search_empty_list_and_missing_list() -> None:
    child = {"item.x": {"type": "eq", "pattern": 1}}
    assert search("any", child, {"fields": []}) is False
    assert search("all", child, {"fields": []}) is True  # as StackStorm: all() of nothing
    assert search("any", child, {}) is False


def test_search_child_templates_see_item_and_trigger() -> None:
    child = {"item.name": {"type": "equals", "pattern": "{{ trigger.wanted }}"}}
    assert search("any", child, {**FIELDS, "wanted": "Owner"}) is True
    assert search("any", child, {**FIELDS, "wanted": "Nobody"}) is False


def test_search_over_a_scalar_is_an_evaluation_error() -> None:
    with pytest.raises(RuleEvaluationError, match="list or an object"):
        search("any", {"item.x": {"type": "exists"}}, {"fields": "text"})


def test_search_child_error_names_both_keys() -> None:
    with pytest.raises(RuleEvaluationError) as info:
        search(
            "any", {"item.name": {"type": "startswith", "pattern": "S"}}, {"fields": [{"name": 5}]}
        )
    assert info.value.key == "trigger.fields"
    assert "item.name" in info.value.reason


def test_search_condition_is_case_insensitive() -> None:
    assert search("ANY", {"item.name": {"type": "eq", "pattern": "Owner"}}) is True
