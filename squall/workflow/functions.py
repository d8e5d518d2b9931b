"""Orquesta's expression functions: ``ctx()``, ``result()``, ``succeeded()`` and friends.

The functions are plain Python taking an :class:`EvalScope` first; ``expressions.py`` binds
them into YAQL and Jinja. A scope is cheap to build: it points at the (never mutated)
context dict instead of copying it, and reaches the workflow state through the small
:class:`StateView` protocol instead of a serialized snapshot of the whole state.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from squall.workflow import statuses as st

__all__ = [
    "MISSING",
    "EvalScope",
    "ExpressionEvaluationException",
    "KvLookup",
    "StateView",
    "VariableInaccessibleError",
    "VariableUndefinedError",
    "completed_",
    "ctx_",
    "failed_",
    "item_",
    "json_",
    "result_",
    "st2kv_",
    "succeeded_",
    "task_",
    "task_status_",
    "zip_",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Sentinel for "no value" (distinct from ``None``, which is a valid JSON value).
MISSING: Any = _Missing()

#: ``kv_lookup(key, decrypt)`` returns the value or :data:`MISSING` when the key is absent.
KvLookup = Callable[[str, bool], Any]


class ExpressionEvaluationException(Exception):
    """An expression function failed (the class name appears in error messages)."""


class VariableUndefinedError(ExpressionEvaluationException):
    """``ctx(name)`` names a variable that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f'The variable "{name}" is undefined.')


class VariableInaccessibleError(ExpressionEvaluationException):
    """``ctx(name)`` names a private (``__``-prefixed) variable."""

    def __init__(self, name: str) -> None:
        super().__init__(f'The variable "{name}" is for internal use and inaccessible.')


class StateView(Protocol):
    """What expression functions may read from the workflow state."""

    def task_status(self, task_id: str, route: int) -> str:
        """Status of the latest entry of ``task_id`` on ``route`` (ancestor routes too)."""
        ...

    def task_info(self, task_id: str, route: int) -> dict[str, Any] | None:
        """``{id, route, status, result}`` of the latest entry, or None."""
        ...


class EvalScope:
    """Everything an expression can see while it is evaluated.

    Attributes:
        vars: the workflow context (``ctx()``); treated as immutable.
        task: the current task ``{"id", "route"}`` plus ``"result"`` once it completed.
        item: the current with-items item, or :data:`MISSING`.
        state: read access to task statuses; None outside a running workflow.
        kv_lookup: datastore access for ``st2kv()``; None when not available.
        kv_misses: keys ``st2kv()`` asked for and did not find (for two-pass prefetch).
    """

    __slots__ = ("item", "kv_lookup", "kv_misses", "state", "task", "vars")

    def __init__(
        self,
        vars: Mapping[str, Any],
        *,
        task: Mapping[str, Any] | None = None,
        item: Any = MISSING,
        state: StateView | None = None,
        kv_lookup: KvLookup | None = None,
        kv_misses: set[str] | None = None,
    ) -> None:
        self.vars = vars
        self.task = task
        self.item = item
        self.state = state
        self.kv_lookup = kv_lookup
        self.kv_misses = kv_misses

    def with_vars(self, vars: Mapping[str, Any]) -> EvalScope:
        """A copy of this scope seeing ``vars`` (used by rolling publish/output rendering)."""
        return EvalScope(
            vars,
            task=self.task,
            item=self.item,
            state=self.state,
            kv_lookup=self.kv_lookup,
            kv_misses=self.kv_misses,
        )


def ctx_(scope: EvalScope, key: str | None = None) -> Any:
    """``ctx()`` returns the public context; ``ctx(name)`` one variable."""
    if key:
        if key not in scope.vars:
            raise VariableUndefinedError(key)
        if key.startswith("__"):
            raise VariableInaccessibleError(key)
        return scope.vars[key]
    return {k: v for k, v in scope.vars.items() if not k.startswith("__")}


def _current_task(scope: EvalScope) -> Mapping[str, Any]:
    if not scope.task:
        raise ExpressionEvaluationException("The current task is not set in the context.")
    return scope.task


def task_status_(scope: EvalScope, task_id: str, route: int | None = None) -> str:
    """Status of a task on the current route (or ``route``); ``"null"`` if it has not run."""
    if route is None:
        route = int(scope.task.get("route", 0) or 0) if scope.task else 0
    if scope.state is None:
        return st.UNSET
    return scope.state.task_status(task_id, route)


def succeeded_(scope: EvalScope) -> bool:
    """True when the current task succeeded."""
    task = _current_task(scope)
    return task_status_(scope, task["id"], task["route"]) == st.SUCCEEDED


def failed_(scope: EvalScope) -> bool:
    """True when the current task failed."""
    task = _current_task(scope)
    return task_status_(scope, task["id"], task["route"]) == st.FAILED


def completed_(scope: EvalScope) -> bool:
    """True when the current task reached any completed status."""
    task = _current_task(scope)
    return task_status_(scope, task["id"], task["route"]) in st.COMPLETED_STATUSES


def result_(scope: EvalScope) -> Any:
    """Result of the current task (the ordered item results for with-items tasks)."""
    return _current_task(scope).get("result")


def item_(scope: EvalScope, key: str | None = None) -> Any:
    """The current with-items item, or one named variable of a multi-variable item."""
    current = None if scope.item is MISSING else scope.item
    if not key:
        return current
    if not isinstance(current, Mapping):
        raise ExpressionEvaluationException("Item is not type of collections.Mapping.")
    if key not in current:
        raise ExpressionEvaluationException(f'Item does not have key "{key}".')
    return current[key]


def task_(scope: EvalScope, task_id: str | None = None, route: int | None = None) -> Any:
    """``task(name)``: ``{id, route, status, result}`` of a task (the current one by default)."""
    if task_id is None:
        task = _current_task(scope)
        task_id, route = task["id"], task["route"]
    if route is None:
        route = int(scope.task.get("route", 0) or 0) if scope.task else 0
    info = scope.state.task_info(task_id, route) if scope.state is not None else None
    if info is None:
        raise ExpressionEvaluationException(f'Unable to find task "{task_id}" in the workflow.')
    return info


def json_(s: Any) -> Any:
    """Parse a JSON string (dicts pass through)."""
    if isinstance(s, dict):
        return s
    if not isinstance(s, str):
        raise TypeError("Given object is not typeof string.")
    return json.loads(s)


def zip_(*args: Any, pad: Any = None) -> Any:
    """Zip lists into a list of tuples, padding the shorter ones with ``pad``."""
    lists = [[] if arg is None else arg for arg in args]
    if len(lists) == 1:
        return lists[0]
    return list(itertools.zip_longest(*lists, fillvalue=pad))


def st2kv_(scope: EvalScope, key: str, decrypt: bool = False, default: Any = MISSING) -> Any:
    """StackStorm datastore lookup through the injected ``kv_lookup``.

    A missing key is recorded in ``scope.kv_misses`` so an engine can prefetch it and
    evaluate again; without a default it is an error, as in StackStorm.
    """
    if not isinstance(key, str):
        raise TypeError("Given key is not typeof string.")
    if not isinstance(decrypt, bool):
        raise TypeError("Decrypt parameter is not typeof bool.")
    value = MISSING
    if scope.kv_lookup is not None:
        value = scope.kv_lookup(key, decrypt)
    if value is MISSING:
        if scope.kv_misses is not None:
            scope.kv_misses.add(key)
        if default is MISSING:
            raise ExpressionEvaluationException(
                f'The key "{key}" does not exist in the StackStorm datastore.'
            )
        return default
    return value
