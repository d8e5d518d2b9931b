"""The rules package's only door to template rendering (:mod:`squall.expr.jinja`).

Everything the rules code needs from the template engine goes through these five functions,
so the rest of the package does not depend on that module's exact shape:

* :func:`is_template` — true for strings containing ``{{`` or ``{%``.
* :func:`check_template` — raises :class:`~squall.errors.ExpressionError` on a syntax error.
* :func:`render_native` — one template to a native value (a lone ``{{ expr }}`` keeps the
  expression's type, as StackStorm's ``to_complex`` round trip does for criteria patterns).
* :func:`render_template` — one template to a string.
* :func:`render_value` — a nested value (dicts/lists of templates) to native values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.expr import jinja

__all__ = ["check_template", "is_template", "render_native", "render_template", "render_value"]


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string that Jinja would change."""
    return isinstance(value, str) and jinja.is_template(value)


def check_template(template: str) -> None:
    """Parse (and cache) ``template`` without rendering it.

    Raises:
        ExpressionError: the template has a syntax error.
    """
    jinja.check_template(template)


def render_native(template: str, context: Mapping[str, Any]) -> Any:
    """Render one template; a lone ``{{ expr }}`` returns the expression's native value.

    Raises:
        ExpressionError: rendering failed (undefined name, filter error …).
    """
    return jinja.render_native(template, context)


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Render one template to a string.

    Raises:
        ExpressionError: rendering failed.
    """
    return jinja.render_template(template, context)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value`` (mappings and lists recursively).

    Raises:
        ExpressionError: a template failed.
    """
    return jinja.render_value(value, context)
