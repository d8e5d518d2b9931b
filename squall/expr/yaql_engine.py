"""YAQL evaluation (Orquesta's ``<% … %>`` expressions) with safety limits.

Expressions are parsed once and cached. Results are plain Python: yaql's frozen dicts,
tuples, sets and iterators come back as ``dict`` and ``list``.

Extra functions (Orquesta's ``ctx()``, ``result()``, ``item()``, ``task_status()`` …) are
registered on a context built once with :func:`create_yaql_context` and reused::

    wf_context = create_yaql_context({"ctx": ctx_function, "task_status": task_status})
    evaluate_yaql("ctx(x) + 1", data, context=wf_context, variables={"__state": state})

A function whose first parameter is named ``context`` receives the yaql context, from which it
reads per-evaluation ``variables`` (``context["__state"]``).
"""

from __future__ import annotations

import collections.abc  # noqa: F401  (yaql 3.2 uses collections.abc without importing it)
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import yaql
from yaql.language import exceptions as yaql_exceptions
from yaql.language import factory

from squall.errors import ExpressionError, SquallError

__all__ = [
    "ENGINE_OPTIONS",
    "check_yaql",
    "create_yaql_context",
    "evaluate_yaql",
]

#: Engine options. ``limitIterators`` bounds the length of any collection an expression
#: builds or returns; ``memoryQuota`` bounds (approximately, in bytes) what string/collection
#: operations may allocate. Data and results are converted to/from plain Python.
ENGINE_OPTIONS: dict[str, Any] = {
    "yaql.limitIterators": 100_000,
    "yaql.memoryQuota": 50_000_000,
    "yaql.convertInputData": True,
    "yaql.convertOutputData": True,
    "yaql.convertTuplesToLists": True,
    "yaql.convertSetsToLists": True,
    "yaql.iterableDicts": False,
}


@lru_cache(maxsize=1)
def _engine() -> Any:
    return factory.YaqlFactory().create(options=dict(ENGINE_OPTIONS))


@lru_cache(maxsize=1)
def _root_context() -> Any:
    return yaql.create_context()


@lru_cache(maxsize=4096)
def _parse(expression: str) -> Any:
    try:
        return _engine()(expression)
    except yaql_exceptions.YaqlParsingException as exc:
        raise ExpressionError(f"Invalid YAQL expression {expression!r}: {exc}") from exc
    except yaql_exceptions.YaqlException as exc:  # pragma: no cover - defensive
        raise ExpressionError(f"Invalid YAQL expression {expression!r}: {exc}") from exc


def check_yaql(expression: str) -> None:
    """Raise :class:`ExpressionError` when ``expression`` (without ``<% %>``) does not parse.

    The message carries yaql's own, e.g. ``Parse error: unexpected ',' at position 12``.
    """
    _parse(expression)


def create_yaql_context(
    functions: Mapping[str, Callable[..., Any]] | None = None, *, parent: Any = None
) -> Any:
    """Build a yaql context with the standard library plus ``functions``.

    Build it once and pass it to :func:`evaluate_yaql` many times: each evaluation runs in a
    fresh child context, so the one returned here is never modified by evaluation.

    Args:
        functions: Name → callable. A callable whose first parameter is named ``context`` gets
            the evaluation's yaql context (``context["$"]`` is the data; ``variables`` given to
            :func:`evaluate_yaql` are there too).
        parent: Extend this context instead of the standard one.

    Returns:
        The new context (an opaque yaql ``Context``).
    """
    context = (parent if parent is not None else _root_context()).create_child_context()
    for name, function in (functions or {}).items():
        context.register_function(function, name=name)
    return context


def evaluate_yaql(
    expression: str,
    data: Any,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    *,
    context: Any = None,
    variables: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate a YAQL expression (without ``<% %>``) against ``data`` (``$``).

    Args:
        expression: The expression, e.g. ``"$.items.where($.ok).select($.name)"``.
        data: The value of ``$``.
        functions: Extra functions for this call only (prefer a prebuilt ``context``).
        context: A context from :func:`create_yaql_context`.
        variables: Values placed in the evaluation's context (readable by functions through
            ``context[name]`` and by the expression as ``$name``).

    Returns:
        The result as plain Python data.

    Raises:
        ExpressionError: parse or evaluation error, or a safety limit was exceeded.
    """
    parsed = _parse(expression)
    base = context if context is not None else _root_context()
    if functions:
        base = create_yaql_context(functions, parent=base)
    run_context = base.create_child_context()
    for name, value in (variables or {}).items():
        run_context[name] = value
    try:
        return parsed.evaluate(data=data, context=run_context)
    except ExpressionError:
        raise
    except Exception as exc:
        cause = str(exc)
        if not isinstance(exc, yaql_exceptions.YaqlException | SquallError):
            cause = f"{type(exc).__name__}: {exc}"
        raise ExpressionError(
            f"Unable to evaluate YAQL expression {expression!r}: {cause}"
        ) from exc
