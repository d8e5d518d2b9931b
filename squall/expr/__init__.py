"""Sandboxed templates and expressions: Jinja with StackStorm's filters, YAQL, ``st2kv``.

The public API lives in the submodules; the most used names are re-exported here.
"""

from __future__ import annotations

from squall.expr.jinja import (
    CompiledTemplate,
    check_template,
    compile_template,
    get_environment,
    is_template,
    render_native,
    render_template,
    render_value,
)
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot, render_with_kv
from squall.expr.shell import render_shell_safe
from squall.expr.yaql_engine import check_yaql, create_yaql_context, evaluate_yaql

__all__ = [
    "CompiledTemplate",
    "KVEntry",
    "KVSnapshot",
    "KeyRef",
    "check_template",
    "check_yaql",
    "compile_template",
    "create_yaql_context",
    "evaluate_yaql",
    "get_environment",
    "is_template",
    "render_native",
    "render_shell_safe",
    "render_template",
    "render_value",
    "render_with_kv",
]
