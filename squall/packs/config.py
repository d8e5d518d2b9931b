"""Pack configuration: ``config.schema.yaml`` and the site's ``configs/<pack>.yaml``.

The schema is StackStorm's flavour of JSON schema: a mapping of property → ``{type,
description, required (bool), default, secret, enum, properties …}``. A config is checked
against it, defaults are filled in (also inside nested objects, as StackStorm does) and the
paths of secret values are recorded so they can be masked.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squall.errors import Issue
from squall.packs.checks import (
    Check,
    Checker,
    anything,
    boolean,
    describe,
    either,
    list_of,
    mapping,
    obj,
    string,
    type_names,
)
from squall.packs.yamlfile import YamlDocument, YamlPath, format_path

__all__ = [
    "ConfigResult",
    "apply_config",
    "check_config_schema",
]


def _property(checker: Checker, value: Any, path: YamlPath) -> bool:
    return _PROPERTY(checker, value, path)


_PROPERTY: Check = obj(
    {
        "type": type_names(),
        "description": string(),
        "required": either(
            (lambda v: isinstance(v, bool), boolean()),
            (lambda v: isinstance(v, list), list_of(string())),
            expected="true or false",
        ),
        "default": anything(),
        "secret": boolean(),
        "enum": list_of(anything()),
        "properties": mapping(_property, expected="a mapping of property → schema"),
        "additionalProperties": either(
            (lambda v: isinstance(v, bool), boolean()),
            (lambda v: isinstance(v, Mapping), _property),
            expected="true, false or a schema",
        ),
        "items": anything(),
    },
    extra=True,  # other JSON-schema keywords (minimum, pattern, format …)
    expected="a mapping (the property's schema)",
)

_SCHEMA: Check = mapping(_property, expected="a mapping of config property → schema")


def check_config_schema(doc: YamlDocument) -> list[Issue]:
    """Validate a parsed ``config.schema.yaml``.

    Args:
        doc: The parsed schema file.

    Returns:
        The issues found (empty when the schema is usable).
    """
    checker = Checker(doc)
    _SCHEMA(checker, doc.data, ())
    return checker.issues


@dataclass
class ConfigResult:
    """A pack config after validation.

    Attributes:
        config: The values with schema defaults applied.
        secret_paths: Dotted paths of values whose property is ``secret: true``.
        issues: Values that violate the schema.
        warnings: Keys the schema does not declare (often typos).
    """

    config: dict[str, Any]
    secret_paths: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


_TYPE_WORDS: dict[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _type_matches(value: Any, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES.get(type_name, (object,)))


def _is_template(value: Any) -> bool:
    # Values like "{{ st2kv.system.token }}" are rendered when an action runs; their type
    # can only be checked then.
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _ConfigValidator:
    def __init__(self, doc: YamlDocument | None, file: str, strict_required: bool) -> None:
        self.doc = doc
        self.file = file
        self.strict_required = strict_required
        self.result = ConfigResult(config={})

    def _issue(self, path: YamlPath, message: str) -> Issue:
        if self.doc is not None:
            return self.doc.issue(path, message)
        return Issue(message=message, file=self.file, path=format_path(path) or None)

    def properties(
        self, props: Mapping[str, Any], values: dict[str, Any], path: YamlPath
    ) -> dict[str, Any]:
        out = dict(values)
        for name, spec in props.items():
            if not isinstance(spec, Mapping):
                continue
            here = (*path, name)
            if name not in out:
                if "default" in spec:
                    out[name] = self.defaulted(spec, copy.deepcopy(spec["default"]), here)
                    continue
                if spec.get("type") == "object" and isinstance(spec.get("properties"), Mapping):
                    # StackStorm creates the object so nested defaults have a home.
                    out[name] = self.properties(spec["properties"], {}, here)
                elif spec.get("required") is True:
                    issue = self._issue(here, "required config value is missing")
                    bucket = self.result.issues if self.strict_required else self.result.warnings
                    bucket.append(issue)
                continue
            out[name] = self.value(spec, out[name], here)
        for name in values:
            if name not in props:
                self.result.warnings.append(
                    self._issue((*path, name), "not declared in config.schema.yaml")
                )
        return out

    def defaulted(self, spec: Mapping[str, Any], value: Any, path: YamlPath) -> Any:
        # Defaults come from the schema, not the site: they are not type-checked against it
        # here, but nested defaults and secrets still apply.
        if spec.get("secret") is True:
            self.result.secret_paths.append(".".join(str(p) for p in path))
        if isinstance(value, dict) and isinstance(spec.get("properties"), Mapping):
            return self.properties(spec["properties"], value, path)
        return value

    def value(self, spec: Mapping[str, Any], value: Any, path: YamlPath) -> Any:
        if spec.get("secret") is True:
            self.result.secret_paths.append(".".join(str(p) for p in path))
        if _is_template(value):
            return value
        declared = spec.get("type")
        types = [declared] if isinstance(declared, str) else list(declared or [])
        if value is None and spec.get("required") is not True and "null" not in types:
            return value
        if types and not any(_type_matches(value, t) for t in types):
            expected = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
            self.result.issues.append(
                self._issue(path, f"expected {expected}, got {describe(value)}")
            )
            return value
        enum = spec.get("enum")
        if isinstance(enum, list) and value not in enum:
            shown = ", ".join(str(v) for v in enum)
            self.result.issues.append(
                self._issue(path, f"{describe(value)} is not allowed; expected one of {shown}")
            )
        if isinstance(value, dict) and isinstance(spec.get("properties"), Mapping):
            return self.properties(spec["properties"], value, path)
        return value


def apply_config(
    schema: Mapping[str, Any] | None,
    doc: YamlDocument | None,
    *,
    file: str,
) -> ConfigResult:
    """Validate a pack config against its schema and fill in defaults.

    Args:
        schema: The pack's ``config.schema.yaml`` mapping (``None``: no schema, the config is
            taken as is).
        doc: The parsed ``configs/<pack>.yaml`` (``None`` when the site has no config file:
            defaults apply, and missing required values are only warnings).
        file: The config file name for issues.

    Returns:
        The :class:`ConfigResult`.
    """
    validator = _ConfigValidator(doc, file, strict_required=doc is not None)
    values: Any = {} if doc is None or doc.data is None else doc.data
    if not isinstance(values, dict):
        result = ConfigResult(config={})
        result.issues.append(
            Issue(message=f"expected a mapping, got {describe(values)}", file=file, line=1)
        )
        return result
    if schema is None:
        validator.result.config = copy.deepcopy(values)
        return validator.result
    validator.result.config = validator.properties(schema, values, ())
    return validator.result
