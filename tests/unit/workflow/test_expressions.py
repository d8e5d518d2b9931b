"""Expression evaluation: Orquesta's rendering rules, functions, errors, and the fast path."""

from __future__ import annotations

from typing import Any

import pytest

from squall.workflow import statuses as st
from squall.workflow.expr_checks import extract_vars, validate
from squall.workflow.expressions import ExpressionEvaluationError, compile_value, evaluate
from squall.workflow.functions import MISSING, EvalScope


class _State:
    def __init__(self, statuses: dict[tuple[str, int], str]) -> None:
        self.statuses = statuses

    def task_status(self, task_id: str, route: int) -> str:
        return self.statuses.get((task_id, route), st.UNSET)

    def task_info(self, task_id: str, route: int) -> dict[str, Any] | None:
        status = self.task_status(task_id, route)
        return None if status == st.UNSET else {"id": task_id, "status": status}


def scope(vars: dict[str, Any] | None = None, **kwargs: Any) -> EvalScope:
    task = kwargs.pop("task", {"id": "t1", "route": 0, "result": {"out": [1, 2]}})
    state = _State(kwargs.pop("statuses", {("t1", 0): st.SUCCEEDED}))
    return EvalScope(vars or {}, task=task, state=state, **kwargs)


CTX = {"n": 2, "s": "abc", "none": None, "d": {"k": [1, 2]}, "flag": True, "xs": [1, 2, 3]}

CASES = [
    ("<% ctx().n %>", 2),
    ("<% ctx(n) + 1 %>", 3),
    ("<% ctx('s') %>", "abc"),
    ('{{ ctx("s") }}', "abc"),
    ("<% ctx().d.k[1] %>", 2),
    ("<% succeeded() and ctx().n < 3 %>", True),
    ("<% not failed() %>", True),
    ("<% completed() %>", True),
    ("<% result().out %>", [1, 2]),
    ("{{ result().out }}", [1, 2]),
    ("<% ctx().none %> <% ctx().s %>", "None abc"),
    ("{{ ctx('none') }} {{ ctx('n') }}", "None 2"),
    ("<% task_status(t1) %>", "succeeded"),
    ("<% ctx().xs.len() %>", 3),
    ("<% zip(ctx(xs), list(a, b)) %>", [[1, "a"], [2, "b"], [3, None]]),
    ("<% ctx().s = 'abc' and ctx().n != 1 %>", True),
    ("<% json('{\"a\": 1}') %>", {"a": 1}),
    ("plain text", "plain text"),
    ({"k<% ctx().s %>": ["<% ctx().n %>", 1]}, {"kabc": [2, 1]}),
    ("{% if ctx('flag') %}yes{% else %}no{% endif %}", "yes"),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_evaluation(expression: Any, expected: Any) -> None:
    assert evaluate(expression, scope(CTX)) == expected


def test_string_result_with_expression_is_evaluated_again() -> None:
    assert evaluate("<% ctx().tmpl %>", scope({"tmpl": "<% ctx().n %>", "n": 7})) == 7


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "<% ctx().missing %>",
            "Unable to resolve key 'missing' in expression '<% ctx().missing %>' from context.",
        ),
        (
            "<% ctx(missing) %>",
            "Unable to evaluate expression '<% ctx(missing) %>'. VariableUndefinedError: "
            'The variable "missing" is undefined.',
        ),
        (
            "<% ctx().s.value %>",
            "Unable to evaluate expression '<% ctx().s.value %>'. NoFunctionRegisteredException: "
            'Unknown function "#property#value"',
        ),
        ("{{ nope }}", "There are unresolved variables: nope"),
        (
            "{{ ctx('missing') }}",
            "Unable to evaluate expression '{{ ctx('missing') }}'. VariableUndefinedError: "
            'The variable "missing" is undefined.',
        ),
    ],
)
def test_error_messages(expression: str, message: str) -> None:
    with pytest.raises(ExpressionEvaluationError) as info:
        evaluate(expression, scope(CTX))
    assert str(info.value) == message


def test_error_class_names_are_orquestas() -> None:
    with pytest.raises(ExpressionEvaluationError) as yaql_error:
        evaluate("<% ctx().missing %>", scope(CTX))
    with pytest.raises(ExpressionEvaluationError) as jinja_error:
        evaluate("{{ nope }}", scope(CTX))
    assert type(yaql_error.value).__name__ == "YaqlEvaluationException"
    assert type(jinja_error.value).__name__ == "JinjaEvaluationException"


@pytest.mark.parametrize(
    "expression",
    [
        "<% succeeded() %>",
        "<% ctx().n < 3 and not failed() %>",
        "<% ctx().n + 1 %>",
        "<% ctx(s) = 'abc' %>",
        "<% ctx().d.k[0] %>",
        "<% ctx().none < 3 %>",
        "<% ctx().d.missing %>",
        "<% 'a' + 1 %>",
    ],
)
def test_fast_path_matches_yaql(expression: str) -> None:
    compiled = compile_value(expression)
    part = compiled.parts[0]  # type: ignore[attr-defined]
    fast, part.fast = part.fast, None
    try:
        try:
            slow: Any = compiled.evaluate(scope(CTX))
        except ExpressionEvaluationError as e:
            slow = ("error", str(e))
    finally:
        part.fast = fast
    try:
        quick: Any = compiled.evaluate(scope(CTX))
    except ExpressionEvaluationError as e:
        quick = ("error", str(e))
    assert quick == slow


def test_item_and_missing_item() -> None:
    assert evaluate("<% item() %>", scope(item="x")) == "x"
    assert evaluate("<% item(a) %>", scope(item={"a": 1})) == 1
    assert evaluate("<% item() %>", scope(item=MISSING)) is None
    with pytest.raises(ExpressionEvaluationError, match="Item does not have key"):
        evaluate("<% item(b) %>", scope(item={"a": 1}))


def test_st2kv_reads_through_lookup_and_records_misses() -> None:
    store = {"found": "v"}
    misses: set[str] = set()

    def lookup(key: str, decrypt: bool) -> Any:
        return store.get(key, MISSING)

    s = scope({}, kv_lookup=lookup, kv_misses=misses)
    assert evaluate("<% st2kv('found') %>", s) == "v"
    assert evaluate("{{ st2kv('gone', default='d') }}", s) == "d"
    with pytest.raises(ExpressionEvaluationError, match='The key "other" does not exist'):
        evaluate("<% st2kv('other') %>", s)
    assert misses == {"gone", "other"}


def test_constants_are_copied() -> None:
    compiled = compile_value({"a": [1, 2]})
    first = compiled.evaluate(scope())
    first["a"].append(3)
    assert compiled.evaluate(scope()) == {"a": [1, 2]}


def test_validate_and_extract_vars() -> None:
    assert validate("<% ctx().x %> and {{ ctx('y') }}")[0]["message"] == (
        "Expression with multiple types is not supported."
    )
    assert validate(["<% ok() %>", {"k": "<% bad( %>"}])[0]["expression"] == "<% bad( %>"
    names = [v[2] for v in extract_vars({"a": "<% ctx().x %> <% ctx(y) %>", "b": "{{ ctx('z') }}"})]
    assert names == ["x", "y", "z"]


def test_stackstorm_filters_in_both_languages() -> None:
    s = scope({"d": {"a": [1]}})
    assert evaluate("<% to_json_string(ctx().d) %>", s) == '{"a": [1]}'
    assert evaluate("{{ ctx().d | json_dump }}", s) == evaluate("{{ to_json_string(ctx().d) }}", s)
    assert evaluate("<% json_parse('[1, 2]') %>", s) == [1, 2]


def test_templates_cannot_modify_the_context() -> None:
    s = scope({"xs": [1]})
    with pytest.raises(ExpressionEvaluationError, match="unsafe"):
        evaluate("{{ ctx().xs.append(2) }}", s)
    assert s.vars == {"xs": [1]}
