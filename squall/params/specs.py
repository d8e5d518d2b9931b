"""Parameter metadata: runner/action merging, checks of the metadata itself, schemas.

A parameter spec is a JSON-schema (draft 4) property plus StackStorm's keys ``required``
(bool), ``secret``, ``immutable``, ``position`` and ``default``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from squall.errors import Issue, ParameterError

__all__ = [
    "NON_SCHEMA_KEYS",
    "PARAMETER_TYPES",
    "RUNNER_OVERRIDABLE_ATTRIBUTES",
    "merge_parameter_specs",
    "parameter_types",
    "schema_of",
    "secret_parameter_names",
    "validate_parameter_specs",
]

PARAMETER_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
#: The attributes of a runner parameter an action may change.
RUNNER_OVERRIDABLE_ATTRIBUTES = frozenset(
    {"default", "description", "enum", "immutable", "required"}
)
#: StackStorm's keys that are not JSON-schema keywords (stripped before validation).
NON_SCHEMA_KEYS = frozenset({"required", "secret", "immutable", "position", "default"})


def merge_parameter_specs(
    runner_params: Mapping[str, Mapping[str, Any]],
    action_params: Mapping[str, Mapping[str, Any]],
    *,
    action_ref: str,
) -> dict[str, dict[str, Any]]:
    """Merge an action's parameters over its runner's.

    An action inherits every runner parameter and may override only ``default``,
    ``description``, ``enum``, ``immutable`` and ``required`` of one; restating another
    attribute with the runner's own value is allowed. Action-only parameters are added as-is.

    Args:
        runner_params: The runner type's parameters.
        action_params: The action's ``parameters``.
        action_ref: ``pack.name``, for error messages.

    Returns:
        Parameter name → merged spec (new dicts; the inputs are not modified).

    Raises:
        ParameterError: an action overrides a runner parameter attribute it may not; one
            :class:`Issue` per attribute, with path ``parameters.<name>.<attr>``.
    """
    merged: dict[str, dict[str, Any]] = {name: dict(spec) for name, spec in runner_params.items()}
    issues: list[Issue] = []
    for name, action_spec in action_params.items():
        runner_spec = runner_params.get(name)
        if runner_spec is None:
            merged[name] = dict(action_spec)
            continue
        for attr, value in action_spec.items():
            if attr in RUNNER_OVERRIDABLE_ATTRIBUTES:
                continue
            if attr in runner_spec and runner_spec[attr] == value:
                continue
            issues.append(
                Issue(
                    f"action '{action_ref}' cannot override attribute '{attr}' of runner "
                    f"parameter '{name}' (only "
                    f"{', '.join(sorted(RUNNER_OVERRIDABLE_ATTRIBUTES))} may be overridden)",
                    path=f"parameters.{name}.{attr}",
                )
            )
        merged[name] = {**runner_spec, **action_spec}
    if issues:
        raise ParameterError(
            f"action '{action_ref}' overrides runner parameter attributes it may not",
            issues=issues,
        )
    return merged


def secret_parameter_names(specs: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """Names of the parameters marked ``secret: true``."""
    return frozenset(name for name, spec in specs.items() if spec.get("secret") is True)


def parameter_types(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The declared type(s) of a parameter, as a tuple (empty when untyped)."""
    declared = spec.get("type")
    if declared is None:
        return ()
    if isinstance(declared, str):
        return (declared,)
    return tuple(declared)


def _schema_node(node: Any) -> Any:
    """Turn a StackStorm property schema into a draft-4 one (``required: true`` → list)."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("secret", "immutable", "position"):
            continue
        if key == "required" and isinstance(value, bool):
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {k: _schema_node(v) for k, v in value.items()}
            required = [
                k for k, v in value.items() if isinstance(v, Mapping) and v.get("required") is True
            ]
            if required:
                out["required"] = sorted(set(out.get("required", [])) | set(required))
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = _schema_node(value)
        elif key in ("items", "anyOf", "allOf", "oneOf") and isinstance(value, list):
            out[key] = [_schema_node(v) for v in value]
        elif key in ("patternProperties", "definitions") and isinstance(value, Mapping):
            out[key] = {k: _schema_node(v) for k, v in value.items()}
        else:
            out[key] = value
    if isinstance(node.get("required"), list):
        out["required"] = sorted(set(out.get("required", [])) | set(node["required"]))
    return out


def schema_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The draft-4 JSON schema of one parameter (StackStorm's extra keys stripped)."""
    schema = _schema_node(spec)
    schema.pop("default", None)
    return dict(schema)


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _check_flag(spec: Mapping[str, Any], key: str, path: str, issue: Any) -> None:
    if key in spec and not isinstance(spec[key], bool):
        issue(f"'{key}' must be true or false, got {spec[key]!r}", f"{path}.{key}")


def validate_parameter_specs(specs: Mapping[str, Any], *, source: str | None = None) -> list[Issue]:
    """Check parameter metadata itself (not values).

    Checks: each spec is a mapping; ``type`` is a known type or a list of them; ``required``,
    ``secret`` and ``immutable`` are booleans; ``position`` is an integer ≥ 0, unique; ``enum``
    is a non-empty list; the schema is valid draft 4; a non-template ``default`` matches the
    type and enum; a required immutable parameter has a default.

    Args:
        specs: Parameter name → spec.
        source: File the specs came from (put in each issue).

    Returns:
        Issues with paths ``parameters.<name>.<field>`` (empty when all is well).
    """
    issues: list[Issue] = []
    positions: dict[int, str] = {}

    for name, spec in specs.items():
        path = f"parameters.{name}"

        def issue(message: str, where: str, name: str = name) -> None:
            issues.append(Issue(f"parameter '{name}': {message}", file=source, path=where))

        if not isinstance(spec, Mapping):
            issue(f"must be a mapping, got {type(spec).__name__}", path)
            continue
        before = len(issues)
        declared = spec.get("type")
        if declared is not None:
            types = [declared] if isinstance(declared, str) else declared
            if not isinstance(types, list) or not types:
                issue(f"'type' must be a type name or a list of them, got {declared!r}", path)
            else:
                for t in types:
                    if t not in PARAMETER_TYPES:
                        issue(
                            f"unknown type {t!r} (expected one of "
                            f"{', '.join(sorted(PARAMETER_TYPES))})",
                            f"{path}.type",
                        )
        for flag in ("required", "secret", "immutable"):
            _check_flag(spec, flag, path, issue)
        if "position" in spec:
            position = spec["position"]
            if isinstance(position, bool) or not isinstance(position, int) or position < 0:
                issue(f"'position' must be an integer >= 0, got {position!r}", f"{path}.position")
            elif position in positions:
                issue(
                    f"position {position} is already used by parameter '{positions[position]}'",
                    f"{path}.position",
                )
            else:
                positions[position] = name
        if "enum" in spec and (not isinstance(spec["enum"], list) or not spec["enum"]):
            issue(f"'enum' must be a non-empty list, got {spec['enum']!r}", f"{path}.enum")
        if len(issues) > before:
            continue  # the schema checks below would only repeat these
        schema = schema_of(spec)
        try:
            Draft4Validator.check_schema(schema)
        except SchemaError as exc:
            where = ".".join([path, *(str(p) for p in exc.path)])
            issue(f"invalid schema: {exc.message}", where)
            continue
        default = spec.get("default")
        if default is not None and not _is_template(default):
            for error in Draft4Validator(schema).iter_errors(default):
                issue(f"default {default!r} is invalid: {error.message}", f"{path}.default")
                break
        if spec.get("immutable") is True and spec.get("required") is True and "default" not in spec:
            issue(
                "is required and immutable but has no default, so it can never get a value",
                f"{path}.default",
            )
    return issues
