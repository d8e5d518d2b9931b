"""Command-line arguments of script actions, serialized the way StackStorm does.

Parameters with a ``position`` become positional arguments, in ``position`` order:

* ``None`` or missing → ``""`` (the slot is kept, so later positions do not shift);
* booleans → ``"1"`` / ``"0"``;
* arrays → items joined with ``,``;
* objects → JSON;
* anything else → ``str(value)``.

Every other action parameter becomes a named argument ``<kwarg_op><name>=<value>``:

* ``None`` and empty strings are left out;
* ``True`` → the bare flag (``--force``), ``False`` → left out;
* arrays and objects → JSON (StackStorm passes Python's ``repr`` here, which scripts cannot
  parse; JSON is the one deliberate difference);
* anything else → ``str(value)``.

Named arguments come first, in parameter order, then the positional ones. The result is an
argv list passed to the program without a shell, so no value can inject shell syntax.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["script_arguments", "serialize_named", "serialize_positional"]


def serialize_positional(value: Any) -> str:
    """Serialize one positional argument value (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        return ",".join(_scalar(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def serialize_named(name: str, value: Any, kwarg_op: str = "--") -> str | None:
    """Serialize one named argument, or ``None`` when it is left out."""
    if value is None or value == "" or value is False:
        return None
    flag = f"{kwarg_op}{name}"
    if value is True:
        return flag
    if isinstance(value, list | tuple | dict):
        return f"{flag}={json.dumps(value, separators=(',', ':'), default=str)}"
    return f"{flag}={value}"


def _scalar(item: Any) -> str:
    if isinstance(item, dict | list):
        return json.dumps(item, separators=(",", ":"), default=str)
    return str(item)


def _position(spec: Mapping[str, Any]) -> int | None:
    position = spec.get("position")
    if isinstance(position, bool) or not isinstance(position, int):
        return None
    return position


def script_arguments(
    parameters: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    *,
    kwarg_op: str = "--",
    exclude: Collection[str] = (),
) -> list[str]:
    """Build the argument list of a script action.

    Args:
        parameters: resolved action parameter values.
        specs: parameter metadata (``position`` marks positional parameters).
        kwarg_op: prefix of named arguments.
        exclude: parameter names that are never passed (runner parameters).

    Returns:
        Named arguments followed by positional arguments in ``position`` order.
    """
    positional: list[tuple[int, str]] = []
    for name, spec in specs.items():
        position = _position(spec)
        if position is not None and name not in exclude:
            positional.append((position, name))
    positional.sort()
    positional_names = {name for _, name in positional}

    argv: list[str] = []
    for name, value in parameters.items():
        if name in positional_names or name in exclude:
            continue
        arg = serialize_named(name, value, kwarg_op)
        if arg is not None:
            argv.append(arg)
    argv.extend(serialize_positional(parameters.get(name)) for _, name in positional)
    return argv
