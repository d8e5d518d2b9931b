"""JSON schema (draft 4) of an Orquesta 1.0 workflow definition, for syntax inspection.

It follows Orquesta's schema, with two deliberate additions: ``vars``/``output``/``publish``
may also be plain mappings, and task names must be words (Orquesta silently ignores tasks
whose names are not).
"""

from __future__ import annotations

from typing import Any

__all__ = ["WORKFLOW_SCHEMA", "normalize_for_schema"]

_STRING: dict[str, Any] = {"type": "string", "minLength": 1}
_STRING_LIST = {"type": "array", "items": _STRING, "uniqueItems": True, "minItems": 1}
_POSITIVE_INT = {"type": "integer", "minimum": 0}
_STRING_OR_POSITIVE_INT = {"oneOf": [_STRING, _POSITIVE_INT]}
_WORD = r"^\w+$"
_NONEMPTY_DICT = {"type": "object", "minProperties": 1, "patternProperties": {_WORD: {}}}
_ONE_KEY_DICT = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "patternProperties": {_WORD: {}},
}
_ONE_KEY_DICT_LIST = {"type": "array", "items": _ONE_KEY_DICT, "uniqueItems": True, "minItems": 1}
_ONE_KEY_DICT_LIST_OR_DICT = {"oneOf": [_ONE_KEY_DICT_LIST, _NONEMPTY_DICT]}
_EXPR = r"{{.*?}}|<%.*?%>"
_ITEMS_PATTERN = (
    r"^(\s+)?(" + _EXPR + r")(\s+)?$|^(\s+)?((\w+,\s?|\s+)+)?(\w+)\s+in\s+(" + _EXPR + r")(\s+)?$"
)

_TRANSITION = {
    "type": "object",
    "properties": {
        "when": _STRING,
        "publish": {"oneOf": [_STRING, _ONE_KEY_DICT_LIST, _NONEMPTY_DICT]},
        "do": {"oneOf": [_STRING, _STRING_LIST]},
    },
    "additionalProperties": False,
}

_TASK = {
    "type": "object",
    "properties": {
        "delay": _STRING_OR_POSITIVE_INT,
        "join": {"oneOf": [{"enum": ["all"]}, _POSITIVE_INT]},
        "with": {
            "type": "object",
            "properties": {
                "items": {"type": "string", "minLength": 1, "pattern": _ITEMS_PATTERN},
                "concurrency": _STRING_OR_POSITIVE_INT,
            },
            "additionalProperties": False,
        },
        "action": _STRING,
        "input": {"oneOf": [_STRING, _NONEMPTY_DICT]},
        "retry": {
            "type": "object",
            "properties": {
                "when": _STRING,
                "count": _STRING_OR_POSITIVE_INT,
                "delay": _STRING_OR_POSITIVE_INT,
            },
            "required": ["count"],
            "additionalProperties": False,
        },
        "next": {"type": "array", "items": _TRANSITION},
    },
    "additionalProperties": False,
}

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"enum": ["1.0", 1.0]},
        "name": _STRING,
        "description": _STRING,
        "tags": _STRING_LIST,
        "vars": _ONE_KEY_DICT_LIST_OR_DICT,
        "input": {
            "type": "array",
            "items": {"oneOf": [_STRING, _ONE_KEY_DICT]},
            "uniqueItems": True,
            "minItems": 1,
        },
        "output": _ONE_KEY_DICT_LIST_OR_DICT,
        "tasks": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {_WORD: _TASK},
            "additionalProperties": False,
        },
    },
    "required": ["tasks"],
    "additionalProperties": False,
}


def normalize_for_schema(definition: dict[str, Any]) -> dict[str, Any]:
    """Resolve the ``with: <string>`` shorthand so the schema sees ``with: {items: …}``."""
    tasks = definition.get("tasks")
    if not isinstance(tasks, dict):
        return definition
    fixed_tasks = {}
    for name, body in tasks.items():
        if isinstance(body, dict) and isinstance(body.get("with"), str):
            body = {**body, "with": {"items": body["with"]}}
        fixed_tasks[name] = body
    return {**definition, "tasks": fixed_tasks}
