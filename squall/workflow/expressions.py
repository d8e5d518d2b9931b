"""Evaluating Orquesta expressions: ``<% YAQL %>`` and ``{{ Jinja }}`` inside spec values.

Values from a workflow definition are compiled once (:func:`compile_value`): constants are
returned as they are, strings with expressions keep their parsed YAQL statements (and a
fast-path closure, see ``yaql_fast``) or compiled Jinja expressions. Evaluation follows
Orquesta exactly where users can see it: a value that is one expression yields the native
result, several expressions or surrounding text interpolate ``str(result)`` (so ``None``
renders as ``None``), a string result is evaluated again, and errors carry Orquesta's
messages (``YaqlEvaluationException: Unable to evaluate expression '<% … %>'. …``).

The environment comes from ``squall.expr`` (the sandbox and its limits, StackStorm's filters,
the YAQL engine options); the Orquesta functions live in ``functions``.
"""

from __future__ import annotations

import collections.abc  # noqa: F401 - yaql 3.2 needs it imported before yaql (see CONVENTIONS)
import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.parser
import jinja2.sandbox
import yaql.language.exceptions as yaql_exc

from squall.errors import ExpressionError
from squall.workflow import functions as fn
from squall.workflow.environment import SCOPED_FUNCTIONS, environments
from squall.workflow.yaql_fast import Fallback, compile_fast

__all__ = [
    "CompiledValue",
    "ExpressionEvaluationError",
    "JinjaEvaluationException",
    "YaqlEvaluationException",
    "compile_value",
    "evaluate",
    "has_expressions",
    "jinja_environment",
]

YAQL_RE = re.compile("<%.*?%>")
JINJA_RE = re.compile("{{.*?}}")
JINJA_BLOCK_RE = re.compile("{%.*?%}")
JINJA_RAW_RE = re.compile("{% raw %}.*?{% endraw %}")


class ExpressionEvaluationError(ExpressionError):
    """An expression failed at run time; ``str()`` is Orquesta's message."""


class YaqlEvaluationException(ExpressionEvaluationError):
    """A YAQL expression failed."""


class JinjaEvaluationException(ExpressionEvaluationError):
    """A Jinja expression failed."""


# --- compiled values --------------------------------------------------------------------------


class CompiledValue:
    """A spec value ready to evaluate; constants evaluate to themselves."""

    __slots__ = ()
    constant = True

    def evaluate(self, scope: fn.EvalScope) -> Any:
        """Evaluate against ``scope``."""
        raise NotImplementedError


class _Const(CompiledValue):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, scope: fn.EvalScope) -> Any:
        # Rendered values leave the conductor (action inputs, outputs); never hand out the
        # definition's own containers.
        value = self.value
        return _copy_json(value) if isinstance(value, list | dict) else value


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


class _List(CompiledValue):
    __slots__ = ("items",)
    constant = False

    def __init__(self, items: list[CompiledValue]) -> None:
        self.items = items

    def evaluate(self, scope: fn.EvalScope) -> Any:
        return [item.evaluate(scope) for item in self.items]


class _Dict(CompiledValue):
    __slots__ = ("items",)
    constant = False

    def __init__(self, items: list[tuple[CompiledValue, CompiledValue]]) -> None:
        self.items = items

    def evaluate(self, scope: fn.EvalScope) -> Any:
        return {k.evaluate(scope): v.evaluate(scope) for k, v in self.items}


class _YaqlPart:
    __slots__ = ("fast", "statement", "stripped", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.stripped = text.strip("<%>").strip()
        self.statement: Any = None
        self.fast: Callable[[fn.EvalScope], Any] | None = None
        try:
            self.statement = environments().yaql_engine(self.stripped)
            self.fast = compile_fast(self.statement)
        except (yaql_exc.YaqlException, ValueError, TypeError):
            self.statement = None  # reported when evaluated, as Orquesta does

    def run(self, scope: fn.EvalScope) -> Any:
        if self.fast is not None:
            try:
                return self.fast(scope)
            except Fallback:
                pass
        statement = self.statement
        if statement is None:
            statement = environments().yaql_engine(self.stripped)  # raises the grammar error
        context = environments().yaql_root.create_child_context()
        context["__scope"] = scope
        result = statement.evaluate(context=context)
        if inspect.isgenerator(result):
            result = list(result)
        return result


class _Yaql(CompiledValue):
    __slots__ = ("parts", "text")
    constant = False

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = [_YaqlPart(expr) for expr in YAQL_RE.findall(text)]

    def evaluate(self, scope: fn.EvalScope) -> Any:
        output: Any = self.text
        part = None
        try:
            for part in self.parts:
                result = part.run(scope)
                if isinstance(result, str) and YAQL_RE.search(result):
                    result = _yaql_value(result).evaluate(scope)
                if len(self.parts) > 1 or len(output) > len(part.text):
                    output = output.replace(part.text, str(result))
                else:
                    output = result
        except KeyError as e:
            key = str(e).strip("'")
            raise YaqlEvaluationException(
                f"Unable to resolve key '{key}' in expression '{_text(part)}' from context."
            ) from e
        except (yaql_exc.YaqlException, ValueError, TypeError) as e:
            raise YaqlEvaluationException(
                f"Unable to evaluate expression '{_text(part)}'. "
                f"{type(e).__name__}: {str(e).strip(chr(39))}"
            ) from e
        except Exception as e:
            raise YaqlEvaluationException(
                f"Unable to evaluate expression '{_text(part)}'. {type(e).__name__}: {e}"
            ) from e
        return output


def _text(part: _YaqlPart | None) -> str:
    return part.text if part is not None else ""


class _Jinja(CompiledValue):
    __slots__ = ("text",)
    constant = False

    def __init__(self, text: str) -> None:
        self.text = text

    def evaluate(self, scope: fn.EvalScope) -> Any:
        return _jinja_evaluate(self.text, scope)


@functools.lru_cache(maxsize=4096)
def _jinja_compiled(stripped: str) -> Any:
    return environments().jinja.compile_expression(stripped, undefined_to_none=False)


def _jinja_context(scope: fn.EvalScope) -> dict[str, Any]:
    env = environments()
    ctx: dict[str, Any] = dict(env.jinja_globals)
    for name, func in SCOPED_FUNCTIONS.items():
        ctx[name] = functools.partial(func, scope)
    return ctx


def _jinja_evaluate(text: str, scope: fn.EvalScope) -> Any:
    raw_blocks = JINJA_RAW_RE.findall(text)
    for i, block in enumerate(raw_blocks):
        text = text.replace(block, f"{{{i}}}")
    ctx = _jinja_context(scope)
    output = _jinja_expand(text, ctx)
    if isinstance(output, str):
        unresolved = [e.strip("{}").strip() for e in JINJA_RE.findall(output)]
        if unresolved:
            raise JinjaEvaluationException(
                "There are unresolved variables: " + ", ".join(unresolved)
            )
        if raw_blocks:
            for i, block in enumerate(raw_blocks):
                output = output.replace(f"{{{i}}}", block)
            output = environments().jinja.from_string(output).render(ctx)
    return output


def _jinja_expand(text: str, ctx: dict[str, Any]) -> Any:
    exprs = JINJA_RE.findall(text)
    blocks = JINJA_BLOCK_RE.findall(text)
    expr = text
    try:
        if blocks:
            output: Any = environments().jinja.from_string(text).render(ctx)
            return _jinja_expand(output, ctx)
        output = text
        for expr in exprs:
            result = _jinja_compiled(expr.strip("{}").strip())(**ctx)
            if inspect.isgenerator(result):
                result = list(result)
            if isinstance(result, str):
                result = _jinja_expand(result, ctx)
            if isinstance(result, jinja2.StrictUndefined):
                continue
            if len(exprs) > 1 or len(output) > len(expr):
                output = output.replace(expr, str(result))
            else:
                output = result
        return output
    except Exception as e:
        raise JinjaEvaluationException(
            f"Unable to evaluate expression '{expr}'. {type(e).__name__}: {e}"
        ) from e


@functools.lru_cache(maxsize=8192)
def _yaql_value(text: str) -> _Yaql:
    return _Yaql(text)


def jinja_environment() -> jinja2.Environment:
    """The sandboxed Jinja environment (strict undefined, StackStorm filters when available)."""
    return environments().jinja


def has_expressions(text: str) -> bool:
    """True when ``text`` contains a YAQL or Jinja expression (or Jinja block)."""
    return bool(YAQL_RE.search(text) or JINJA_RE.search(text) or JINJA_BLOCK_RE.search(text))


def compile_value(value: Any) -> CompiledValue:
    """Compile a spec value (string, list, dict or scalar) for repeated evaluation."""
    if isinstance(value, str):
        if JINJA_RE.search(value) or JINJA_BLOCK_RE.search(value):
            return _Jinja(value)
        if YAQL_RE.search(value):
            return _yaql_value(value)
        return _Const(value)
    if isinstance(value, list):
        items = [compile_value(v) for v in value]
        if all(i.constant for i in items):
            return _Const(value)
        return _List(items)
    if isinstance(value, dict):
        pairs = [(compile_value(k), compile_value(v)) for k, v in value.items()]
        if all(k.constant and v.constant for k, v in pairs):
            return _Const(value)
        return _Dict(pairs)
    return _Const(value)


def evaluate(value: Any, scope: fn.EvalScope) -> Any:
    """Compile (cached for strings) and evaluate ``value`` in one call."""
    return compile_value(value).evaluate(scope)
