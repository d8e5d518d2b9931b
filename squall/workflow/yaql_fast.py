"""A fast path for the YAQL expressions workflows use most.

YAQL's interpreter costs tens of microseconds per call, even for ``succeeded()``. Most
transition criteria and publishes are tiny (``succeeded()``, ``ctx().count < 2``,
``result().stdout``), so each parsed expression is compiled once into a Python closure that
covers a safe subset: constants, the workflow functions, property and index access on plain
data, ``and``/``or``/``not``, comparisons and arithmetic on numbers and strings.

The closures never guess: whenever a value falls outside what they can decide exactly as
YAQL would (an unknown key, a comparison between mixed types, ...) they raise
:class:`Fallback` and the caller evaluates the expression with YAQL itself, which then
produces YAQL's own result or error message.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from yaql.language import expressions as yexpr

from squall.workflow import functions as fn

__all__ = ["Fallback", "compile_fast"]

Compiled = Callable[[fn.EvalScope], Any]


class Fallback(Exception):
    """The fast path cannot decide this evaluation; use YAQL."""


_SCOPED: dict[str, Callable[..., Any]] = {
    "ctx": fn.ctx_,
    "result": fn.result_,
    "succeeded": fn.succeeded_,
    "failed": fn.failed_,
    "completed": fn.completed_,
    "task_status": fn.task_status_,
    "item": fn.item_,
}
_SCALARS = (str, int, float, bool, type(None))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(left: Any, right: Any) -> Any:
        if (_is_number(left) and _is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        ):
            return op(left, right)
        raise Fallback

    return run


def _equality(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(left: Any, right: Any) -> Any:
        if isinstance(left, _SCALARS) and isinstance(right, _SCALARS):
            return op(left, right)
        raise Fallback

    return run


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(left: Any, right: Any) -> Any:
        if _is_number(left) and _is_number(right):
            return op(left, right)
        raise Fallback

    return run


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "#operator_=": _equality(operator.eq),
    "#operator_!=": _equality(operator.ne),
    "#operator_<": _compare(operator.lt),
    "#operator_>": _compare(operator.gt),
    "#operator_<=": _compare(operator.le),
    "#operator_>=": _compare(operator.ge),
    "#operator_+": _arith(operator.add),
    "#operator_-": _arith(operator.sub),
    "#operator_*": _arith(operator.mul),
}


def _attribute(obj: Any, name: str) -> Any:
    if isinstance(obj, dict) and name in obj:
        return obj[name]
    raise Fallback


def _index(obj: Any, key: Any) -> Any:
    if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
        if -len(obj) <= key < len(obj):
            return obj[key]
    elif isinstance(obj, dict) and isinstance(key, str) and key in obj:
        return obj[key]
    raise Fallback


def compile_fast(node: Any) -> Compiled | None:
    """Compile a parsed YAQL node, or return None when it is outside the fast subset."""
    if isinstance(node, yexpr.Statement):
        return compile_fast(node.expression)
    if isinstance(node, yexpr.Wrap):
        return compile_fast(node.expr)
    if isinstance(node, yexpr.Constant):
        value = node.value
        if not isinstance(value, _SCALARS):
            return None
        return lambda scope: value
    if not isinstance(node, yexpr.Function) or isinstance(node, yexpr.GetContextValue):
        return None
    name = node.name
    if name == "#operator_." and len(node.args) == 2:
        target = compile_fast(node.args[0])
        attr = node.args[1]
        if target is None or type(attr) is not yexpr.KeywordConstant:
            return None
        key = attr.value
        return lambda scope: _attribute(target(scope), key)
    args = [compile_fast(arg) for arg in node.args]
    if any(arg is None for arg in args):
        return None
    compiled: list[Compiled] = [a for a in args if a is not None]
    if name in _SCOPED and type(node) is yexpr.Function:
        func = _SCOPED[name]
        if not all(_is_string_constant(arg) for arg in node.args):
            return None
        consts = tuple(arg.value for arg in node.args)
        return lambda scope: func(scope, *consts)
    if name == "#indexer" and len(compiled) == 2:
        obj, idx = compiled
        return lambda scope: _index(obj(scope), idx(scope))
    if name == "#operator_and" and len(compiled) == 2:
        left, right = compiled
        return lambda scope: left(scope) and right(scope)
    if name == "#operator_or" and len(compiled) == 2:
        left, right = compiled
        return lambda scope: left(scope) or right(scope)
    if name == "#unary_operator_not" and len(compiled) == 1:
        (inner,) = compiled
        return lambda scope: not inner(scope)
    if name in _BINARY and len(compiled) == 2:
        op = _BINARY[name]
        left, right = compiled
        return lambda scope: op(left(scope), right(scope))
    return None


def _is_string_constant(node: Any) -> bool:
    return isinstance(node, yexpr.Constant) and isinstance(node.value, str)
