"""Parameter metadata: merging runner and action specs, checking specs."""

from __future__ import annotations

import pytest

from squall.errors import ParameterError
from squall.params import (
    merge_parameter_specs,
    schema_of,
    secret_parameter_names,
    validate_parameter_specs,
)

LOCAL_RUNNER = {
    "cmd": {"description": "Command", "type": "string"},
    "cwd": {"type": "string"},
    "sudo": {"type": "boolean", "default": False},
    "sudo_password": {"type": "string", "secret": True, "required": False},
    "timeout": {"type": "integer", "default": 60},
    "kwarg_op": {"type": "string", "default": "--"},
}


def test_core_echo_merges_over_local_runner() -> None:
    echo = {
        "message": {"type": "string", "required": True},
        "cmd": {
            "description": "Arbitrary Linux command",
            "required": True,
            "type": "string",
            "default": 'echo "{{message}}"',
            "immutable": True,
        },
        "kwarg_op": {"immutable": True},
        "sudo": {"default": False, "immutable": True},
    }
    merged = merge_parameter_specs(LOCAL_RUNNER, echo, action_ref="core.echo")
    assert merged["cmd"] == {
        "description": "Arbitrary Linux command",
        "type": "string",
        "required": True,
        "default": 'echo "{{message}}"',
        "immutable": True,
    }
    assert merged["kwarg_op"] == {"type": "string", "default": "--", "immutable": True}
    assert merged["message"] == {"type": "string", "required": True}
    assert merged["timeout"] == {"type": "integer", "default": 60}
    assert set(merged) == set(LOCAL_RUNNER) | {"message"}
    # Inputs are not modified.
    assert LOCAL_RUNNER["cmd"] == {"description": "Command", "type": "string"}


def test_overriding_other_attributes_is_an_error_naming_each() -> None:
    action = {
        "timeout": {"type": "string", "default": "x"},
        "sudo_password": {"secret": False, "position": 0},
    }
    with pytest.raises(ParameterError) as info:
        merge_parameter_specs(LOCAL_RUNNER, action, action_ref="pack.act")
    err = info.value
    assert "pack.act" in err.message
    paths = sorted(issue.path or "" for issue in err.issues)
    assert paths == [
        "parameters.sudo_password.position",
        "parameters.sudo_password.secret",
        "parameters.timeout.type",
    ]
    text = str(err)
    assert "cannot override attribute 'type' of runner parameter 'timeout'" in text
    assert "pack.act" in text


def test_secret_parameter_names() -> None:
    specs = {"a": {"secret": True}, "b": {"secret": False}, "c": {}}
    assert secret_parameter_names(specs) == frozenset({"a"})


def test_schema_of_strips_stackstorm_keys_and_converts_nested_required() -> None:
    spec = {
        "type": "object",
        "required": True,
        "secret": True,
        "immutable": False,
        "position": 1,
        "default": {},
        "properties": {
            "name": {"type": "string", "required": True},
            "age": {"type": "integer"},
        },
    }
    assert schema_of(spec) == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name"],
    }


def paths(issues: list) -> list[str]:
    return sorted(i.path for i in issues)


def test_valid_specs_have_no_issues() -> None:
    specs = {
        "a": {"type": "string", "required": True, "position": 0},
        "b": {"type": ["integer", "null"], "default": 3, "position": 1},
        "c": {"type": "string", "enum": ["x", "y"], "default": "x"},
        "d": {"type": "integer", "default": "{{ a | int }}"},
        "e": {"type": "object", "properties": {"k": {"type": "string", "required": True}}},
        "f": {"type": "string", "immutable": True, "required": True, "default": "v"},
    }
    assert validate_parameter_specs(specs) == []


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"type": "str"}, "parameters.p.type", "unknown type 'str'"),
        ({"type": ["string", "bogus"]}, "parameters.p.type", "unknown type 'bogus'"),
        ({"type": []}, "parameters.p", "'type' must be"),
        ({"type": "string", "required": "yes"}, "parameters.p.required", "true or false"),
        ({"type": "string", "secret": 1}, "parameters.p.secret", "true or false"),
        ({"type": "string", "immutable": "no"}, "parameters.p.immutable", "true or false"),
        ({"type": "string", "position": -1}, "parameters.p.position", "integer >= 0"),
        ({"type": "string", "position": "1"}, "parameters.p.position", "integer >= 0"),
        ({"type": "string", "position": True}, "parameters.p.position", "integer >= 0"),
        ({"type": "string", "enum": []}, "parameters.p.enum", "non-empty list"),
        ({"type": "integer", "default": "ten"}, "parameters.p.default", "is not of type"),
        ({"type": "string", "enum": ["a"], "default": "b"}, "parameters.p.default", "is not one"),
        ({"type": "string", "minLength": "x"}, "parameters.p.minLength", "invalid schema"),
        (
            {"type": "string", "immutable": True, "required": True},
            "parameters.p.default",
            "never get a value",
        ),
        ("not a mapping", "parameters.p", "must be a mapping"),
    ],
)
def test_spec_issues(spec: object, path: str, fragment: str) -> None:
    issues = validate_parameter_specs({"p": spec}, source="actions/a.yaml")
    assert len(issues) == 1, issues
    assert issues[0].path == path
    assert fragment in issues[0].message
    assert "parameter 'p'" in issues[0].message
    assert issues[0].file == "actions/a.yaml"


def test_duplicate_positions() -> None:
    specs = {
        "a": {"type": "string", "position": 0},
        "b": {"type": "string", "position": 0},
        "c": {"type": "string", "position": 1},
    }
    issues = validate_parameter_specs(specs)
    assert paths(issues) == ["parameters.b.position"]
    assert "already used by parameter 'a'" in issues[0].message
