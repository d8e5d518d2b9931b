"""The expression environments: one YAQL engine and root context, one Jinja sandbox.

Built once per process (lazily). The sandbox, its limits, StackStorm's filters and the YAQL
engine options come from ``squall.expr``; the Orquesta functions (``ctx()``, ``result()``,
``st2kv()`` ...) from ``functions``, bound to the evaluation scope.
"""

from __future__ import annotations

import collections.abc  # noqa: F401 - yaql 3.2 needs it imported before yaql (see CONVENTIONS)
import threading
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.sandbox
import yaql
import yaql.language.utils as yaql_utils

from squall.expr.filters import FILTERS as ST2_FILTERS
from squall.expr.jinja import SquallSandbox
from squall.expr.yaql_engine import ENGINE_OPTIONS as YAQL_ENGINE_OPTIONS
from squall.workflow import functions as fn

__all__ = ["PLAIN_FUNCTIONS", "SCOPED_FUNCTIONS", "Environments", "environments"]

SCOPED_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ctx": fn.ctx_,
    "task_status": fn.task_status_,
    "succeeded": fn.succeeded_,
    "failed": fn.failed_,
    "completed": fn.completed_,
    "result": fn.result_,
    "item": fn.item_,
    "st2kv": fn.st2kv_,
    "task": fn.task_,
}
PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {"json": fn.json_, "zip": fn.zip_}


def _y(value: Any) -> Any:
    return yaql_utils.convert_input_data(value)


# yaql passes its context to a parameter named "context"; the evaluation scope rides on it.
# The wrappers spell out each signature because yaql matches calls against it.
def _y_ctx(context: Any, key: Any = None) -> Any:
    return _y(fn.ctx_(context["__scope"], key))


def _y_task_status(context: Any, task_id: Any, route: Any = None) -> Any:
    return fn.task_status_(context["__scope"], task_id, route)


def _y_succeeded(context: Any) -> Any:
    return fn.succeeded_(context["__scope"])


def _y_failed(context: Any) -> Any:
    return fn.failed_(context["__scope"])


def _y_completed(context: Any) -> Any:
    return fn.completed_(context["__scope"])


def _y_result(context: Any) -> Any:
    return _y(fn.result_(context["__scope"]))


def _y_item(context: Any, key: Any = None) -> Any:
    return _y(fn.item_(context["__scope"], key))


def _y_st2kv(context: Any, key: Any, decrypt: Any = False, **kwargs: Any) -> Any:
    # yaql infers a parameter's type from its default, so "no default" cannot be a sentinel.
    default = kwargs.get("default", fn.MISSING)
    return _y(fn.st2kv_(context["__scope"], key, decrypt, default))


def _y_task(context: Any, task_id: Any = None, route: Any = None) -> Any:
    return _y(fn.task_(context["__scope"], task_id, route))


_YAQL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ctx": _y_ctx,
    "task_status": _y_task_status,
    "succeeded": _y_succeeded,
    "failed": _y_failed,
    "completed": _y_completed,
    "result": _y_result,
    "item": _y_item,
    "st2kv": _y_st2kv,
    "task": _y_task,
}


class _OrquestaSandbox(SquallSandbox, jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Squall's sandbox (datastore lookups, limits) that also refuses to modify lists and
    dicts: contexts are shared between snapshots and must never change in place."""


def _plain_callable(func: Callable[..., Any]) -> bool:
    # Jinja filters that take Jinja's render context cannot be called from YAQL.
    return not getattr(func, "jinja_pass_arg", None)


_ST2_FUNCTIONS = {
    name: func
    for name, func in ST2_FILTERS.items()
    if _plain_callable(func) and not name.startswith("_")
}


class Environments:
    """The YAQL engine and root context, and the Jinja environment (built once, lazily).

    StackStorm's filters (``to_json_string``, ``regex_replace``, ``json_dump``, ...) come from
    ``squall.expr``; as in StackStorm, Orquesta expressions call them as YAQL functions and
    as Jinja filters or functions.
    """

    def __init__(self) -> None:
        self.yaql_engine = yaql.language.factory.YaqlFactory().create(
            options=dict(YAQL_ENGINE_OPTIONS)
        )
        self.yaql_root = yaql.create_context()
        for functions in (_ST2_FUNCTIONS, _YAQL_FUNCTIONS, PLAIN_FUNCTIONS):
            for name, func in functions.items():
                self.yaql_root.register_function(func, name=name)
        self.jinja = _OrquestaSandbox(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.jinja.filters.update(ST2_FILTERS)
        self.jinja.filters.update(PLAIN_FUNCTIONS)
        self.jinja_globals: dict[str, Any] = {**_ST2_FUNCTIONS, **PLAIN_FUNCTIONS}


_ENV: Environments | None = None
_ENV_LOCK = threading.Lock()


def environments() -> Environments:
    """The process-wide environments (created on first use)."""
    global _ENV
    if _ENV is None:
        with _ENV_LOCK:
            if _ENV is None:
                _ENV = Environments()
    return _ENV
