"""Static checks of expressions: parse errors (inspection) and ``ctx()`` references."""

from __future__ import annotations

import re
from typing import Any

import jinja2
import jinja2.parser
import yaql.language.exceptions as yaql_exc

from squall.workflow.environment import environments
from squall.workflow.expressions import JINJA_BLOCK_RE, JINJA_RE, YAQL_RE

__all__ = ["extract_vars", "validate"]

_CTX_REF = r'[][a-zA-Z0-9_\'"\.()]*'
_CTX_RE = re.compile(rf'\bctx\([\'"]?{_CTX_REF}[\'"]?\)\.?{_CTX_REF}')
_VAR = r"[a-zA-Z0-9_-]+"
_VAR_EXTRACTS = [
    re.compile(rf"(?<=\bctx\(\)\.)({_VAR})\b(?!\()\.?"),
    re.compile(rf"(?:\bctx\(({_VAR})\))"),
    re.compile(rf"(?:\bctx\(\'({_VAR})\'\))"),
    re.compile(rf'(?:\bctx\("({_VAR})"\))'),
]


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
            environments().yaql_engine(expr.strip("<%>").strip())
        except (yaql_exc.YaqlException, ValueError, TypeError) as e:
            errors.append({"type": "yaql", "expression": expr, "message": str(e)})
    return errors


def _validate_jinja(text: str) -> list[dict[str, Any]]:
    env = environments().jinja
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
