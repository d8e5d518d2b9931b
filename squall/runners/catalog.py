"""StackStorm's runner types and their runner parameters, as served by ``/api/v1/runnertypes``.

The parameter definitions follow StackStorm's runner metadata (names, types, defaults,
``secret`` / ``immutable`` / ``required`` flags) so that action metadata written for StackStorm
overrides and inherits them the same way. Runners that arrive in a later Squall release are
listed with ``available=False``: they register, but executions fail with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.runners._runner_params import (
    ANY_JSON,
    HTTP_PARAMS,
    INQUIRER_PARAMS,
    PYTHON_PARAMS,
    Params,
    local_params,
    remote_params,
)
from squall.runners.base import RunnerTypeSpec

__all__ = ["RUNNER_TYPES", "SHELL_COMMAND_PARAMS", "SHELL_COMMAND_RUNNERS"]

_SHELL_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "return_code": {"type": "integer"},
        "succeeded": {"type": "boolean"},
        "failed": {"type": "boolean"},
    },
}


def _spec(
    name: str,
    description: str,
    params: Params,
    *,
    available: bool = True,
    output_key: str | None = None,
    output_schema: Mapping[str, Any] | None = None,
) -> RunnerTypeSpec:
    return RunnerTypeSpec(
        name=name,
        description=description,
        runner_parameters=params,
        output_key=output_key,
        output_schema=output_schema,
        available=available,
    )


_SPECS: list[RunnerTypeSpec] = [
    _spec(
        "local-shell-cmd",
        "A runner to execute local actions as a fixed user.",
        local_params(with_cmd=True),
        output_key="stdout",
        output_schema=_SHELL_RESULT_SCHEMA,
    ),
    _spec(
        "local-shell-script",
        "A runner to execute local actions as a fixed user.",
        local_params(with_cmd=False),
        output_key="stdout",
        output_schema=_SHELL_RESULT_SCHEMA,
    ),
    _spec(
        "remote-shell-cmd",
        "A remote execution runner that executes actions as a fixed system user.",
        remote_params(with_cmd=True),
    ),
    _spec(
        "remote-shell-script",
        "A remote execution runner that executes actions as a fixed system user.",
        remote_params(with_cmd=False),
    ),
    _spec(
        "python-script",
        "A runner for launching python actions.",
        PYTHON_PARAMS,
        output_key="result",
        output_schema={
            "type": "object",
            "properties": {
                "result": ANY_JSON,
                "stderr": {"type": "string", "required": True},
                "stdout": {"type": "string", "required": True},
                "exit_code": {"type": "integer", "required": True},
            },
            "additionalProperties": False,
        },
    ),
    _spec(
        "http-request",
        "HTTP client for running HTTP actions.",
        HTTP_PARAMS,
        output_key="body",
        output_schema={
            "type": "object",
            "properties": {
                "status_code": {"type": "integer"},
                "body": ANY_JSON,
                "parsed": {"type": "boolean"},
                "headers": {"type": "object"},
            },
            "additionalProperties": False,
        },
    ),
    _spec(
        "noop",
        "A runner that returns a static response regardless of input parameters",
        {},
    ),
    _spec(
        "orquesta",
        "A runner for executing orquesta workflow.",
        {
            "notify": {
                "type": "array",
                "description": "List of tasks to trigger notifications for.",
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 1, "pattern": "^\\w+$"},
                "default": [],
            }
        },
        output_key="output",
        output_schema={
            "type": "object",
            "properties": {
                "errors": {"anyOf": [{"type": "object"}, {"type": "array"}]},
                "output": ANY_JSON,
            },
            "additionalProperties": False,
        },
    ),
    _spec(
        "action-chain",
        "A runner for launching linear action chains.",
        {
            "display_published": {
                "default": True,
                "description": "Intermediate published variables will be stored and displayed.",
                "type": "boolean",
            },
            "skip_notify": {
                "default": [],
                "description": "List of tasks to skip notifications for.",
                "type": "array",
            },
        },
        output_key="published",
        output_schema={
            "type": "object",
            "properties": {"published": {"type": "object"}, "tasks": {"type": "array"}},
            "additionalProperties": False,
        },
    ),
    _spec("inquirer", "A runner for Inquiries", INQUIRER_PARAMS),
    _spec(
        "announcement",
        "A runner for emitting an announcement event on the stream.",
        {
            "experimental": {
                "default": False,
                "description": "Flag to indicate acknowledgment of using experimental runner",
                "required": True,
                "type": "boolean",
            },
            "route": {
                "default": "general",
                "description": (
                    "The routing_key used to route the message to consumers. Might be a list "
                    "of words, delimited by dots."
                ),
                "maxLength": 255,
                "minLength": 1,
                "type": "string",
            },
        },
        output_schema={"output": {"type": "object"}},
    ),
]

#: Every runner type Squall knows, by name.
RUNNER_TYPES: dict[str, RunnerTypeSpec] = {spec.name: spec for spec in _SPECS}

#: Parameter names whose value is a shell command line (rendered shell-safely upstream) …
SHELL_COMMAND_PARAMS: frozenset[str] = frozenset({"cmd"})
#: … in actions of these runner types (``cmd`` of a python-script action is just a string).
SHELL_COMMAND_RUNNERS: frozenset[str] = frozenset({"local-shell-cmd", "remote-shell-cmd"})
