"""Schemas of StackStorm pack metadata files, written with :mod:`squall.packs.checks`.

Only structure and types are checked here. Parameter merging with runner parameters, rule
criteria operators and workflow definitions are validated by the modules that own them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from squall.packs.checks import (
    Check,
    Checker,
    anything,
    boolean,
    either,
    enum,
    integer,
    list_of,
    mapping,
    number,
    obj,
    string,
    type_names,
)

__all__ = [
    "ACTION",
    "ALIAS",
    "KINDS",
    "PACK",
    "PACK_FIELDS",
    "POLICY",
    "REF_PATTERN",
    "RESERVED_PACK_REFS",
    "RULE",
    "SENSOR",
    "TRIGGER_TYPE",
    "ContentKind",
    "normalize_version",
    "parameters",
]

#: Valid pack refs (and pack names that double as refs).
REF_PATTERN = r"[a-z0-9_]+"
_REF_HINT = "lowercase letters, digits and underscores (^[a-z0-9_]+$)"
#: Refs no pack may take (``_global`` names the system scope of the datastore).
RESERVED_PACK_REFS = frozenset({"_global"})

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_SHORT_VERSION = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)")

# Fields the API adds when a resource is exported (``st2 action get -j``); harmless in files.
_API_FIELDS = ("id", "uid", "ref", "metadata_file")


def normalize_version(value: Any) -> str | None:
    """Return ``value`` as a semver string, or ``None`` when it is not a version.

    ``0.2`` (string, or the float YAML makes of it) becomes ``0.2.0``, as StackStorm
    normalizes versions of packs written before semver was required.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    if _SEMVER.fullmatch(text):
        return text
    if _SHORT_VERSION.fullmatch(text):
        return f"{text}.0"
    return None


def _version(checker: Checker, value: Any, path: tuple[Any, ...]) -> bool:
    if normalize_version(value) is None:
        checker.error(path, f"{value!r} is not a valid version; expected semver like 1.0.0")
        return False
    return True


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_name = string(non_empty=True)
_text = string()
_tags = list_of(anything())

# ---- pack.yaml -----------------------------------------------------------------------------

PACK_FIELDS: Mapping[str, Check] = {
    "name": _name,
    "ref": string(pattern=REF_PATTERN, hint=_REF_HINT),
    "description": _text,
    "version": _version,
    "author": _name,
    "email": string(pattern=r"[^@\s]+@[^@\s]+", hint="an email address"),
    "keywords": list_of(_text),
    "contributors": list_of(_text),
    "stackstorm_version": _text,
    "python_versions": list_of(
        either((_is_str, _text), (_is_int, integer()), expected='a version like "3"')
    ),
    "dependencies": list_of(_name),
    "system": mapping(),
    "files": list_of(_text),
    "repo_url": _text,
}
#: pack.yaml; unknown fields are accepted (the loader warns about them).
PACK: Check = obj(PACK_FIELDS, required=("name", "description", "version", "author"), extra=True)

# ---- actions -------------------------------------------------------------------------------

_PARAMETER: Check = obj(
    {
        "type": type_names(),
        "description": _text,
        "required": boolean(),
        "secret": boolean(),
        "immutable": boolean(),
        "position": integer(minimum=0),
        "enum": list_of(anything()),
        "default": anything(),
    },
    extra=True,  # any other JSON-schema keyword (items, properties, minimum, pattern …)
    expected="a mapping (the parameter's schema)",
)

#: ``parameters``: a mapping of parameter name → schema (actions, runners).
parameters: Check = mapping(_PARAMETER, expected="a mapping of parameter name → schema")

_NOTIFY_SUB = obj(
    {
        "message": _text,
        "data": mapping(),
        "routes": list_of(_text),
        "channels": list_of(_text),  # StackStorm's older name for routes
    }
)

ACTION: Check = obj(
    {
        "name": _name,
        "runner_type": _name,
        "pack": _name,
        "description": _text,
        "enabled": boolean(),
        "entry_point": _text,
        "parameters": parameters,
        "output_schema": mapping(),
        "tags": _tags,
        "notify": obj(
            {"on-complete": _NOTIFY_SUB, "on-success": _NOTIFY_SUB, "on-failure": _NOTIFY_SUB}
        ),
    },
    required=("name", "runner_type"),
    tolerated=_API_FIELDS,
)

# ---- rules ---------------------------------------------------------------------------------

_CRITERION = obj(
    {"type": _name, "pattern": anything(), "condition": _text},
    required=("type",),
    extra=True,
    expected="a mapping {type, pattern}",
)

RULE: Check = obj(
    {
        "name": _name,
        "pack": _name,
        "description": _text,
        "enabled": boolean(),
        "trigger": obj(
            {"type": _name, "parameters": mapping(), "description": _text},
            required=("type",),
            tolerated=("ref", "id", "uid", "name", "pack"),
        ),
        "criteria": mapping(_CRITERION, expected="a mapping of payload key → {type, pattern}"),
        "action": obj(
            {"ref": _name, "parameters": mapping(), "description": _text}, required=("ref",)
        ),
        "type": obj({"ref": enum("standard", "backstop"), "parameters": mapping()}),
        "context": mapping(),
        "tags": _tags,
        # Squall additions; their contents are checked by the rules engine.
        "throttle": mapping(),
        "dedup": mapping(),
    },
    required=("name", "trigger", "action"),
    tolerated=_API_FIELDS,
)

# ---- trigger types and sensors -------------------------------------------------------------

TRIGGER_TYPE: Check = obj(
    {
        "name": _name,
        "pack": _name,
        "description": _text,
        "payload_schema": mapping(),
        "parameters_schema": mapping(),
        "tags": _tags,
    },
    required=("name",),
    tolerated=_API_FIELDS,
)

SENSOR: Check = obj(
    {
        "class_name": _name,
        "name": _name,
        "entry_point": _text,
        "pack": _name,
        "description": _text,
        "enabled": boolean(),
        "poll_interval": number(minimum=0),
        "trigger_types": list_of(
            either(
                (_is_map, TRIGGER_TYPE),
                (_is_str, _name),
                expected="a trigger type (a mapping) or a trigger type ref",
            )
        ),
    },
    required=("class_name",),
    tolerated=(*_API_FIELDS, "artifact_uri"),
)

# ---- policies and aliases ------------------------------------------------------------------

POLICY: Check = obj(
    {
        "name": _name,
        "pack": _name,
        "description": _text,
        "enabled": boolean(),
        "resource_ref": _name,
        "policy_type": _name,
        "parameters": mapping(),
    },
    required=("name", "resource_ref", "policy_type"),
    tolerated=_API_FIELDS,
)

_FORMAT = either(
    (_is_str, _text),
    (
        _is_map,
        obj({"display": _text, "representation": list_of(_text)}, required=("representation",)),
    ),
    expected="a format string or a mapping {display, representation}",
)

ALIAS: Check = obj(
    {
        "name": _name,
        "pack": _name,
        "description": _text,
        "enabled": boolean(),
        "action_ref": _name,
        "formats": list_of(_FORMAT),
        "ack": obj(
            {"enabled": boolean(), "format": _text, "append_url": boolean(), "extra": mapping()}
        ),
        "result": obj({"enabled": boolean(), "format": _text, "extra": mapping()}),
        "immutable_parameters": mapping(),
        "extra": mapping(),
    },
    required=("name", "action_ref"),
    tolerated=_API_FIELDS,
)


@dataclass(frozen=True)
class ContentKind:
    """One kind of pack content: where its files live and how they are checked."""

    kind: str
    directory: str
    check: Check
    #: ``enabled`` when a file does not say (StackStorm: rules are disabled by default).
    enabled_default: bool | None = True


#: Content kinds in registration order (trigger types before the sensors and rules using them).
KINDS: tuple[ContentKind, ...] = (
    ContentKind("trigger_type", "triggers", TRIGGER_TYPE, enabled_default=None),
    ContentKind("action", "actions", ACTION),
    ContentKind("sensor", "sensors", SENSOR),
    ContentKind("rule", "rules", RULE, enabled_default=False),
    ContentKind("policy", "policies", POLICY),
    ContentKind("alias", "aliases", ALIAS),
)
