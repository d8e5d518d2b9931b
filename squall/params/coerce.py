"""Turning strings into typed parameter values.

Two callers, two policies:

* :func:`coerce_cli_value` — ``squall run pack.action k=v``: strict; bad input is an error
  naming the parameter and the expected type.
* :func:`cast_rendered_value` — a value that came out of a template: best effort, as
  StackStorm does (``"3"`` → 3 for an integer); what cannot be cast is left for schema
  validation to report.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from typing import Any

from squall.errors import ParameterError
from squall.expr.filters import NONE_MAGIC_VALUE
from squall.params.specs import parameter_types

__all__ = ["cast_rendered_value", "coerce_cli_value"]

_TRUE = frozenset({"true", "yes", "1", "on", "y"})
_FALSE = frozenset({"false", "no", "0", "off", "n"})
_NULL = frozenset({"null", "none", ""})
# Order in which a multi-type parameter tries its types on a CLI string.
_CLI_PREFERENCE = ("null", "boolean", "integer", "number", "array", "object", "string")


class _CastError(ValueError):
    pass


def _to_int(raw: str) -> int:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise _CastError("an integer") from None
    if number.is_integer():
        return int(number)
    raise _CastError("an integer")


def _to_number(raw: str) -> int | float:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise _CastError("a number") from None
    if math.isnan(number) or math.isinf(number):
        raise _CastError("a finite number")
    return number


def _to_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _CastError("a boolean (true/false, yes/no, 1/0)")


def _to_null(raw: str) -> None:
    if raw.strip().lower() in _NULL:
        return None
    raise _CastError("null")


def _split_commas(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",")] if raw.strip() else []


def _to_array(raw: str, spec: Mapping[str, Any], name: str | None) -> list[Any]:
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise _CastError(f"an array (invalid JSON: {exc})") from None
        if not isinstance(value, list):
            raise _CastError("an array")
        return value
    if text.startswith("{"):
        raise _CastError("an array (a JSON list or a,b,c)")
    items = spec.get("items")
    if isinstance(items, Mapping) and items.get("type"):
        return [coerce_cli_value(items, part, name=f"{name or 'value'}[{i}]")
                for i, part in enumerate(_split_commas(text))]  # fmt: skip
    return _split_commas(text)


def _to_object(raw: str, spec: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    text = raw.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise _CastError(f"an object (invalid JSON: {exc})") from None
        if not isinstance(value, dict):
            raise _CastError("an object")
        return value
    result: dict[str, Any] = {}
    properties = spec.get("properties") if isinstance(spec.get("properties"), Mapping) else {}
    for pair in _split_commas(text):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise _CastError("an object (JSON, or k1=v1,k2=v2)")
        key = key.strip()
        prop = properties.get(key) if properties else None
        if isinstance(prop, Mapping) and prop.get("type"):
            result[key] = coerce_cli_value(prop, value.strip(), name=f"{name or 'value'}.{key}")
        else:
            result[key] = value.strip()
    return result


def _coerce_one(type_: str, raw: str, spec: Mapping[str, Any], name: str | None) -> Any:
    if type_ == "string":
        return raw
    if type_ == "integer":
        return _to_int(raw)
    if type_ == "number":
        return _to_number(raw)
    if type_ == "boolean":
        return _to_bool(raw)
    if type_ == "null":
        return _to_null(raw)
    if type_ == "array":
        return _to_array(raw, spec, name)
    if type_ == "object":
        return _to_object(raw, spec, name)
    return raw


def coerce_cli_value(spec: Mapping[str, Any], raw: str, *, name: str | None = None) -> Any:
    """Convert a command-line string to the parameter's declared type.

    integer / number: ``"3"``, ``"2.5"``; boolean: true/false, yes/no, 1/0 (any case);
    array: a JSON list or ``a,b,c`` (items cast by ``items.type``); object: a JSON object or
    ``k1=v1,k2=v2``; null: ``null``/``none``/empty; string (or untyped): unchanged. A parameter
    with several types takes the first that fits (string last).

    Args:
        spec: The parameter's spec.
        raw: The string typed on the command line.
        name: Parameter name, for error messages.

    Raises:
        ParameterError: the string cannot be read as the declared type.
    """
    types = parameter_types(spec)
    if not types:
        return raw
    ordered = sorted(types, key=lambda t: _CLI_PREFERENCE.index(t) if t in _CLI_PREFERENCE else 99)
    expected: list[str] = []
    for type_ in ordered:
        try:
            return _coerce_one(type_, raw, spec, name)
        except _CastError as exc:
            expected.append(str(exc))
    label = f"parameter '{name}'" if name else "value"
    raise ParameterError(
        f"{label}: expected {' or '.join(expected)}, got {raw!r}",
        hint=f"declared type: {' | '.join(types)}",
    )


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _CastError("a literal") from None


def cast_rendered_value(spec: Mapping[str, Any], value: Any) -> Any:
    """Best-effort cast of a rendered value to the declared type (StackStorm's casting).

    Strings are cast for integer, number, boolean, null, array and object parameters
    (arrays and objects from JSON or a Python literal such as ``"['a', 'b']"``); use_none's
    marker becomes ``None``. Scalars rendered for a ``string`` parameter become strings
    (containers become JSON). A value that cannot be cast is returned unchanged, for schema
    validation to report.
    """
    if value == NONE_MAGIC_VALUE:
        return None
    types = parameter_types(spec)
    if not types:
        return value
    if not isinstance(value, str):
        if types == ("string",) and value is not None:
            if isinstance(value, bool | int | float):
                return str(value)
            if isinstance(value, Mapping | list | tuple):
                return json.dumps(value, default=str)
        return value
    if "string" in types:
        return value
    for type_ in types:
        try:
            if type_ in ("array", "object"):
                result = _literal(value)
                if isinstance(result, list if type_ == "array" else dict):
                    return result
            else:
                return _coerce_one(type_, value, spec, None)
        except _CastError:
            continue
    return value
