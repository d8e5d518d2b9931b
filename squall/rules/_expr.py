"""The rules package's only door to template rendering.

Everything the rules code needs from :mod:`squall.expr` goes through these five functions, so
the rest of the package does not depend on that module's exact shape. They delegate to
``squall.expr.jinja`` (StackStorm's sandboxed environment and filters). Until that module is
importable a small sandboxed stand-in with the same contract is used, so the rules engine can
be built and tested independently.

Contract:

* :func:`is_template` — true for strings containing ``{{``, ``{%`` or ``{#``.
* :func:`check_template` — raises :class:`~squall.errors.ExpressionError` on a syntax error.
* :func:`render_native` — one template to a native value (a lone ``{{ expr }}`` keeps the
  expression's type, as StackStorm's ``to_complex`` round trip does for criteria patterns).
* :func:`render_template` — one template to a string.
* :func:`render_value` — a nested value (dicts/lists of templates) to native values.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from functools import lru_cache
from types import ModuleType
from typing import Any

from squall.errors import DomainError, ExpressionError

__all__ = ["check_template", "is_template", "render_native", "render_template", "render_value"]


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("squall.expr.jinja")
    except ImportError:
        return None


_jinja: Any = _load()


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string that Jinja would change."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def check_template(template: str) -> None:
    """Parse ``template`` without rendering it.

    Raises:
        ExpressionError: the template has a syntax error.
    """
    if _jinja is not None:
        _jinja.check_template(template)
        return
    _compiled(template)


def render_native(template: str, context: Mapping[str, Any]) -> Any:
    """Render one template; a lone ``{{ expr }}`` returns the expression's native value.

    Raises:
        ExpressionError: rendering failed (undefined name, filter error …).
    """
    if _jinja is not None:
        return _jinja.render_native(template, context)
    match = _LONE_EXPR.match(template)
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        return _guard(template, lambda: _defined(_expression(match.group(1))(**context)))
    return render_template(template, context)


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Render one template to a string.

    Raises:
        ExpressionError: rendering failed.
    """
    if _jinja is not None:
        return str(_jinja.render_template(template, context))
    return str(_guard(template, lambda: _compiled(template).render(context)))


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value`` (mappings and lists recursively).

    Raises:
        ExpressionError: a template failed; the message names it.
    """
    if _jinja is not None:
        return _jinja.render_value(value, context)
    if isinstance(value, str):
        return render_native(value, context) if is_template(value) else value
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context) for v in value]
    return value


# --- stand-in until squall.expr.jinja exists --------------------------------------------------

_LONE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


def _guard(template: str, render: Any) -> Any:
    try:
        return render()
    except DomainError:
        raise
    except Exception as exc:
        raise ExpressionError(f"failed to render {template!r}: {exc}") from exc


def _defined(value: Any) -> Any:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing variable
    return value


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from squall.expr.kv import DynamicLookup

    class _Env(SandboxedEnvironment):
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

    env = _Env(undefined=StrictUndefined, autoescape=False)
    try:
        from squall.expr.filters import FILTERS

        env.filters.update(FILTERS)
    except ImportError:  # pragma: no cover - filters ship with squall.expr
        pass
    return env


@lru_cache(maxsize=4096)
def _compiled(template: str) -> Any:
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(template)
    except TemplateSyntaxError as exc:
        raise ExpressionError(
            f"template syntax error in {template!r}: {exc.message} (line {exc.lineno})"
        ) from None


@lru_cache(maxsize=4096)
def _expression(source: str) -> Any:
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"template syntax error in {{{{{source}}}}}: {exc.message}") from None
