"""Sandboxed Jinja rendering with StackStorm's filters.

One shared :class:`~jinja2.sandbox.SandboxedEnvironment` (strict undefined, no autoescape,
``trim_blocks``/``lstrip_blocks`` as StackStorm) renders every template. Compiled templates are
cached in an LRU keyed by the template text, so rendering the same template again costs only
the render.

Every failure — syntax, undefined variable, sandbox violation, a filter's error — is raised as
:class:`~squall.errors.ExpressionError` naming the template and the cause.

Native rendering: a template that is exactly one ``{{ expression }}`` (surrounding whitespace
allowed) evaluates to the expression's Python value (dict, list, int, None…) instead of its
string form; anything else renders to a string.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template, TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment

from squall.errors import ExpressionError
from squall.expr.filters import FILTERS, NONE_MAGIC_VALUE
from squall.expr.kv import DynamicLookup, KVSnapshot, KVValue

__all__ = [
    "NONE_MAGIC_VALUE",
    "CompiledTemplate",
    "SquallSandbox",
    "check_template",
    "compile_template",
    "get_environment",
    "is_template",
    "render_native",
    "render_template",
    "render_value",
]

#: Longest string or list a ``*`` may build, and the largest exponent ``**`` may use.
MAX_REPEAT_LENGTH = 1_000_000
MAX_EXPONENT = 10_000


class SquallSandbox(SandboxedEnvironment):
    """The sandbox, plus datastore lookups and limits on ``*``/``**`` (memory/CPU bombs)."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Datastore objects expose nothing but their keys (resolved in getattr below).
        if isinstance(obj, DynamicLookup | KVSnapshot):
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, DynamicLookup):
            try:
                return obj.lookup_attr(attribute)
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, DynamicLookup):
            try:
                return obj.lookup_item(argument)
            except KeyError:
                return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple | bytes)
                    and isinstance(count, int)
                    and len(seq) * count > MAX_REPEAT_LENGTH
                ):
                    raise SecurityError(
                        f"repetition would build {len(seq) * count} items "
                        f"(limit {MAX_REPEAT_LENGTH})"
                    )
            return operator.mul(left, right)
        if operator_ == "**":
            if isinstance(right, int) and abs(right) > MAX_EXPONENT and abs(left) > 1:
                raise SecurityError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
            return operator.pow(left, right)
        return super().call_binop(context, operator_, left, right)


@lru_cache(maxsize=1)
def get_environment() -> SquallSandbox:
    """The shared sandboxed environment (created once; safe to share across threads)."""
    env = SquallSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        cache_size=0,  # templates are cached by compile_template instead
    )
    env.filters.update(FILTERS)
    return env


def is_template(value: str) -> bool:
    """True when ``value`` contains a Jinja expression or statement (``{{`` or ``{%``)."""
    return "{{" in value or "{%" in value


def _syntax_error(template: str, exc: TemplateSyntaxError) -> ExpressionError:
    return ExpressionError(
        f"Invalid Jinja template {template!r}: {exc.message} (line {exc.lineno})",
        hint="check the {{ }} / {% %} syntax",
    )


def _render_error(template: str, exc: Exception) -> ExpressionError:
    if isinstance(exc, ExpressionError):
        cause = exc.message
    elif isinstance(exc, SecurityError):
        cause = f"sandbox violation: {exc}"
    elif isinstance(exc, UndefinedError):
        cause = str(exc)
    elif isinstance(exc, TemplateSyntaxError):
        cause = f"{exc.message} (line {exc.lineno})"
    else:
        cause = f"{type(exc).__name__}: {exc}"
    return ExpressionError(f"Unable to render template {template!r}: {cause}")


def _single_expression(env: SquallSandbox, template: str) -> nodes.Expr | None:
    """The expression node when ``template`` is exactly one ``{{ … }}`` block."""
    stripped = template.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    body = env.parse(stripped).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


@dataclass(frozen=True, eq=False)
class CompiledTemplate:
    """A template compiled once: render it as a string or as a native value.

    Attributes:
        source: The template text.
        referenced_names: Top-level variable names the template reads from its context.
        is_native: True when the template is a single ``{{ expression }}``.
    """

    source: str
    referenced_names: frozenset[str]
    is_native: bool
    _template: Template
    _expression: TemplateExpression | None

    def render(self, context: Mapping[str, Any]) -> str:
        """Render to a string.

        Raises:
            ExpressionError: rendering failed.
        """
        try:
            return self._template.render(context)
        except Exception as exc:
            raise _render_error(self.source, exc) from exc

    def render_native(self, context: Mapping[str, Any], *, keep_none_marker: bool = False) -> Any:
        """Render to the expression's native value (or a string for mixed templates).

        Args:
            context: Template variables.
            keep_none_marker: Return ``use_none``'s marker string instead of ``None`` (lets a
                caller tell "explicitly None" apart from a value that happened to be None).

        Raises:
            ExpressionError: rendering failed.
        """
        if self._expression is None:
            result: Any = self.render(context)
        else:
            try:
                result = self._expression(context)
                if isinstance(result, Undefined):
                    # Force StrictUndefined to raise its "'x' is undefined" error.
                    str(result)
            except Exception as exc:
                raise _render_error(self.source, exc) from exc
            result = _plain_result(result)
        if result == NONE_MAGIC_VALUE and not keep_none_marker:
            return None
        return result


def _plain_result(value: Any) -> Any:
    """Replace datastore ``str`` subclasses by plain strings (deeply, only when present)."""
    if isinstance(value, KVValue):
        return str.__str__(value)
    if isinstance(value, DynamicLookup):
        return str(value)
    if isinstance(value, dict):
        if any(isinstance(v, DynamicLookup | dict | list) for v in value.values()):
            return {k: _plain_result(v) for k, v in value.items()}
        return value
    if isinstance(value, list) and any(isinstance(v, DynamicLookup | dict | list) for v in value):
        return [_plain_result(v) for v in value]
    return value


@lru_cache(maxsize=4096)
def compile_template(template: str) -> CompiledTemplate:
    """Compile ``template`` (cached by its text).

    Raises:
        ExpressionError: the template has a syntax error.
    """
    env = get_environment()
    try:
        ast = env.parse(template)
        names = frozenset(meta.find_undeclared_variables(ast))
        expr_node = _single_expression(env, template)
        compiled = env.from_string(ast)
        expression = None
        if expr_node is not None:
            expression = env.compile_expression(
                template.strip()[2:-2].strip("-"), undefined_to_none=False
            )
    except TemplateSyntaxError as exc:
        raise _syntax_error(template, exc) from exc
    return CompiledTemplate(
        source=template,
        referenced_names=names,
        is_native=expression is not None,
        _template=compiled,
        _expression=expression,
    )


def check_template(template: str) -> None:
    """Raise :class:`ExpressionError` when ``template`` does not parse.

    The message contains the template, Jinja's message and the line within the template.
    """
    compile_template(template)


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Render ``template`` to a string in the sandbox.

    Raises:
        ExpressionError: syntax error, undefined variable, sandbox violation or filter error.
    """
    return compile_template(template).render(context)


def render_native(template: str, context: Mapping[str, Any]) -> Any:
    """Render ``template``; a single ``{{ expr }}`` yields the native Python value.

    ``"{{ [1, 2] }}"`` → ``[1, 2]``; ``"{{ x | use_none }}"`` → ``None``;
    ``"n={{ n }}"`` → ``"n=3"``.

    Raises:
        ExpressionError: rendering failed.
    """
    return compile_template(template).render_native(context)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value`` (dict keys and values, list items).

    Strings without ``{{``/``{%`` and non-string scalars are returned as they are. Strings are
    rendered with :func:`render_native` semantics.

    Raises:
        ExpressionError: a template failed to render.
    """
    if isinstance(value, str):
        return render_native(value, context) if is_template(value) else value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            rendered_key = render_value(key, context)
            try:
                out[rendered_key] = render_value(item, context)
            except TypeError as exc:  # the key rendered to a list or dict
                raise ExpressionError(
                    f"Template key {key!r} rendered to {rendered_key!r}, which cannot be a key"
                ) from exc
        return out
    if isinstance(value, list | tuple):
        return [render_value(v, context) for v in value]
    return value
