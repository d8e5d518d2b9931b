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
import threading
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.parser
import jinja2.sandbox
import yaql
import yaql.language.exceptions as yaql_exc
import yaql.language.utils as yaql_utils

from squall.errors import ExpressionError
from squall.expr.filters import FILTERS as ST2_FILTERS
from squall.expr.jinja import SquallSandbox
from squall.expr.yaql_engine import ENGINE_OPTIONS as YAQL_ENGINE_OPTIONS
from squall.workflow import functions as fn
from squall.workflow.yaql_fast import Fallback, compile_fast

__all__ = [
    "CompiledValue",
    "ExpressionEvaluationError",
    "JinjaEvaluationException",
    "YaqlEvaluationException",
    "compile_value",
    "evaluate",
    "extract_vars",
    "has_expressions",
    "jinja_environment",
    "validate",
]

YAQL_RE = re.compile("<%.*?%>")
JINJA_RE = re.compile("{{.*?}}")
JINJA_BLOCK_RE = re.compile("{%.*?%}")
JINJA_RAW_RE = re.compile("{% raw %}.*?{% endraw %}")
_CTX_REF = r'[][a-zA-Z0-9_\'"\.()]*'
_CTX_RE = re.compile(rf'\bctx\([\'"]?{_CTX_REF}[\'"]?\)\.?{_CTX_REF}')
_VAR = r"[a-zA-Z0-9_-]+"
_VAR_EXTRACTS = [
    re.compile(rf"(?<=\bctx\(\)\.)({_VAR})\b(?!\()\.?"),
    re.compile(rf"(?:\bctx\(({_VAR})\))"),
    re.compile(rf"(?:\bctx\(\'({_VAR})\'\))"),
    re.compile(rf'(?:\bctx\("({_VAR})"\))'),
]


class ExpressionEvaluationError(ExpressionError):
    """An expression failed at run time; ``str()`` is Orquesta's message."""


class YaqlEvaluationException(ExpressionEvaluationError):
    """A YAQL expression failed."""


class JinjaEvaluationException(ExpressionEvaluationError):
    """A Jinja expression failed."""


# --- environments -----------------------------------------------------------------------------

_SCOPED_FUNCTIONS: dict[str, Callable[..., Any]] = {
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
_PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {"json": fn.json_, "zip": fn.zip_}


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


class _Environments:
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
        for functions in (_ST2_FUNCTIONS, _YAQL_FUNCTIONS, _PLAIN_FUNCTIONS):
            for name, func in functions.items():
                self.yaql_root.register_function(func, name=name)
        self.jinja = _OrquestaSandbox(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.jinja.filters.update(ST2_FILTERS)
        self.jinja.filters.update(_PLAIN_FUNCTIONS)
        self.jinja_globals: dict[str, Any] = {**_ST2_FUNCTIONS, **_PLAIN_FUNCTIONS}


_ENV: _Environments | None = None
_ENV_LOCK = threading.Lock()


def _env() -> _Environments:
    global _ENV
    if _ENV is None:
        with _ENV_LOCK:
            if _ENV is None:
                _ENV = _Environments()
    return _ENV


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
            self.statement = _env().yaql_engine(self.stripped)
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
            statement = _env().yaql_engine(self.stripped)  # raises the grammar error
        context = _env().yaql_root.create_child_context()
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
    return _env().jinja.compile_expression(stripped, undefined_to_none=False)


def _jinja_context(scope: fn.EvalScope) -> dict[str, Any]:
    env = _env()
    ctx: dict[str, Any] = dict(env.jinja_globals)
    for name, func in _SCOPED_FUNCTIONS.items():
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
            output = _env().jinja.from_string(output).render(ctx)
    return output


def _jinja_expand(text: str, ctx: dict[str, Any]) -> Any:
    exprs = JINJA_RE.findall(text)
    blocks = JINJA_BLOCK_RE.findall(text)
    expr = text
    try:
        if blocks:
            output: Any = _env().jinja.from_string(text).render(ctx)
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
    return _env().jinja


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


# --- static checks ----------------------------------------------------------------------------


def validate(value: Any) -> list[dict[str, Any]]:
    """Parse every expression in ``value``; one ``{type, expression, message}`` per error."""
    errors: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            errors.extend(validate(k))
            errors.extend(validate(v))
    elif isinstance(value, list):
        for item in value:
            errors.extend(validate(item))
    elif isinstance(value, str):
        is_jinja = bool(JINJA_RE.search(value) or JINJA_BLOCK_RE.search(value))
        is_yaql = bool(YAQL_RE.search(value))
        if is_jinja and is_yaql:
            errors.append(
                {
                    "type": None,
                    "expression": value,
                    "message": "Expression with multiple types is not supported.",
                }
            )
        elif is_yaql:
            errors.extend(_validate_yaql(value))
        elif is_jinja:
            errors.extend(_validate_jinja(value))
    return errors


def _validate_yaql(text: str) -> list[dict[str, Any]]:
    errors = []
    for expr in YAQL_RE.findall(text):
        try:
            _env().yaql_engine(expr.strip("<%>").strip())
        except (yaql_exc.YaqlException, ValueError, TypeError) as e:
            errors.append({"type": "yaql", "expression": expr, "message": str(e)})
    return errors


def _validate_jinja(text: str) -> list[dict[str, Any]]:
    env = _env().jinja
    errors: list[dict[str, Any]] = []
    try:
        env.parse(text)
    except jinja2.TemplateError as e:
        errors.append({"type": "jinja", "expression": text, "message": str(e)})
    for expr in JINJA_RE.findall(text):
        if any(err["expression"] == expr for err in errors):
            continue
        try:
            jinja2.parser.Parser(env, expr.strip("{}").strip(), state="variable").parse_expression()
        except jinja2.TemplateError as e:
            errors.append({"type": "jinja", "expression": expr, "message": str(e)})
    return errors


def extract_vars(value: Any) -> list[tuple[str, str, str]]:
    """Context variables referenced by ``ctx()`` in ``value``: ``(type, statement, name)``."""
    found: list[tuple[str, str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(extract_vars(k))
            found.extend(extract_vars(v))
    elif isinstance(value, list):
        for item in value:
            found.extend(extract_vars(item))
    elif isinstance(value, str):
        for kind, regex, delim in (("jinja", JINJA_RE, "{}"), ("yaql", YAQL_RE, "<%>")):
            for expr in regex.findall(value):
                for ref in _CTX_RE.findall(expr.strip(delim).strip()):
                    for extract in _VAR_EXTRACTS:
                        match = extract.search(ref.strip())
                        if match and match.group(1):
                            found.append((kind, value, match.group(1)))
    return sorted(set(found), key=lambda v: v[2])
