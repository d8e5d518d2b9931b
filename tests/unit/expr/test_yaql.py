"""YAQL evaluation: plain results, registered functions, errors, limits."""

from __future__ import annotations

from typing import Any

import pytest

from squall.errors import ExpressionError
from squall.expr.yaql_engine import check_yaql, create_yaql_context, evaluate_yaql


def test_basic_expressions_against_data() -> None:
    data = {"items": [{"name": "a", "ok": True}, {"name": "b", "ok": False}], "n": 2}
    assert evaluate_yaql("$.n + 1", data) == 3
    assert evaluate_yaql("$.items.where($.ok).select($.name)", data) == ["a"]
    assert evaluate_yaql("$.items.len()", data) == 2
    assert evaluate_yaql("$.get(missing)", data) is None
    with pytest.raises(ExpressionError, match="KeyError: 'missing'"):
        evaluate_yaql("$.missing", data)
    assert evaluate_yaql("'a' + 'b'", None) == "ab"


def test_results_are_plain_python() -> None:
    result = evaluate_yaql("dict(a => [1, 2], b => set(3))", None)
    assert result == {"a": [1, 2], "b": [3]}
    assert type(result) is dict
    assert type(result["a"]) is list
    assert type(evaluate_yaql("$.t", {"t": (1, 2)})) is list
    assert evaluate_yaql("range(3)", None) == [0, 1, 2]
    data = {"d": {"x": {"y": 1}}}
    out = evaluate_yaql("$.d", data)
    assert out == {"x": {"y": 1}} and type(out["x"]) is dict


def test_registered_functions_read_context_variables() -> None:
    def ctx(context: Any, name: str | None = None) -> Any:
        state = context["__state"]
        return state if name is None else state[name]

    def task_status(context: Any, task_id: str) -> str:
        return str(context["__statuses"].get(task_id, "unknown"))

    wf = create_yaql_context({"ctx": ctx, "task_status": task_status})
    variables = {"__state": {"x": 40, "y": 2}, "__statuses": {"t1": "succeeded"}}
    assert evaluate_yaql("ctx(x) + ctx().y", None, context=wf, variables=variables) == 42
    assert evaluate_yaql("task_status(t1)", None, context=wf, variables=variables) == "succeeded"
    # The shared context is not modified by evaluations.
    with pytest.raises(ExpressionError, match="ctx"):
        evaluate_yaql("ctx(x)", None)


def test_functions_argument_for_one_call() -> None:
    assert evaluate_yaql("double(21)", None, {"double": lambda v: v * 2}) == 42


def test_variables_are_dollar_names() -> None:
    assert evaluate_yaql("$x * 2", None, variables={"x": 4}) == 8


def test_parse_error_message_is_yaqls() -> None:
    with pytest.raises(ExpressionError) as info:
        check_yaql("ctx(a), ctx(b)")
    assert "Parse error: unexpected ',' at position 6" in str(info.value)
    assert "ctx(a), ctx(b)" in str(info.value)
    with pytest.raises(ExpressionError, match="Lexical error"):
        check_yaql('"abc')
    check_yaql("$.a.b")


def test_evaluation_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r"'nope\(1\)'.*Unknown function \"nope\""):
        evaluate_yaql("nope(1)", None)
    with pytest.raises(ExpressionError, match="ZeroDivisionError"):
        evaluate_yaql("1 / 0", None)


def test_function_raising_expression_error_passes_through() -> None:
    def boom() -> None:
        raise ExpressionError("custom failure")

    with pytest.raises(ExpressionError, match=r"^custom failure$"):
        evaluate_yaql("boom()", None, {"boom": boom})


def test_collection_size_is_limited() -> None:
    with pytest.raises(ExpressionError, match="exceeds"):
        evaluate_yaql("range(1000000)", None)
