"""Inline ``key=value`` parameters, as in ``action: core.echo message="hi"`` and
``publish: a=<% result() %> b=2``.

Values may be quoted strings, JSON numbers, booleans, ``null``, bracketed JSON, or a
YAQL/Jinja expression. Unquoted values that are none of these are ignored (Orquesta does the
same). Quoted strings stay strings; everything else goes through ``json.loads`` when it can.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["parse_inline_params", "parse_inline_params_ordered"]

_VALUE_PATTERNS = (
    r"\[.*\]\s*",  # brackets (greedy, as upstream)
    r"\"[^\"]*\"\s*",  # double quotes
    r"'[^']*'\s*",  # single quotes
    r"[-]?\d*\.\d+",  # float, before integer
    r"[-]?\d+",
    r"(?i:true)",
    r"(?i:false)",
    r"null",
    r"{{.*?}}",  # Jinja
    r"<%.*?%>",  # YAQL
)
_INLINE = re.compile(r"([\w]+)=(" + "|".join(_VALUE_PATTERNS) + ")")
_QUOTED = re.compile(r"\"[^\"]*\"\s*|'[^']*'\s*")


def _convert(raw: str) -> Any:
    value = raw.strip()
    quoted = bool(_QUOTED.search(value))
    value = re.sub('^"', "", value)
    value = re.sub('"$', "", value)
    value = re.sub("^'", "", value)
    value = re.sub("'$", "", value)
    keep_string = False
    if value:
        keep_string = quoted and not (value[0] == "{" and value[-1] == "}")
    if keep_string:
        return value
    if value.lower() in ("true", "false"):
        value = value.lower()
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_inline_params_ordered(text: Any) -> list[tuple[str, Any]]:
    """Parse ``k=v`` pairs in order; returns ``[]`` when there are none.

    Args:
        text: the string to parse (anything else yields ``[]``).

    Returns:
        The pairs in source order, values converted as described in the module docstring.
    """
    if not isinstance(text, str) or not text:
        return []
    return [(key, _convert(raw)) for key, raw in _INLINE.findall(text)]


def parse_inline_params(text: Any) -> dict[str, Any]:
    """Parse ``k=v`` pairs into a dict (a later duplicate key wins)."""
    return dict(parse_inline_params_ordered(text))
