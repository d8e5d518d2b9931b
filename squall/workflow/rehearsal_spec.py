"""Rehearsal spec files (Orquesta's ``orquesta-rehearse`` format): schema and loading.

A spec names a workflow file, its inputs, canned action executions ("mocks") and the
expected outcome. Unknown keys are rejected, as upstream does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from squall.errors import WorkflowError
from squall.workflow import statuses as st
from squall.workflow.spec import WorkflowSpec, parse_workflow

__all__ = ["MockExecution", "RehearsalError", "RehearsalSpec", "load_spec"]

_STRING = {"type": "string", "minLength": 1}
_INT = {"type": "integer", "minimum": 0}
_STATUS = {"type": "string", "enum": sorted(st.ALL_STATUSES)}
_INSPECTION_ERROR = {
    "type": "object",
    "properties": {
        "type": _STRING,
        "expression": _STRING,
        "message": _STRING,
        "schema_path": _STRING,
        "spec_path": _STRING,
    },
    "required": ["message"],
    "additionalProperties": False,
}
_SCHEMA = {
    "type": "object",
    "properties": {
        "workflow": _STRING,
        "inputs": {"type": "object"},
        "expected_inspection_errors": {
            "type": "object",
            "properties": {
                k: {"type": "array", "items": _INSPECTION_ERROR}
                for k in ("syntax", "semantics", "expressions", "context", "contents")
            },
            "additionalProperties": False,
        },
        "expected_routes": {"type": "array", "items": {"type": "array"}},
        "expected_task_sequence": {"type": "array", "items": _STRING},
        "mock_action_executions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "task_id": _STRING,
                    "route": _INT,
                    "seq_id": _INT,
                    "item_id": _INT,
                    "iter_id": _INT,
                    "num_iter": _INT,
                    "status": _STATUS,
                    "result": {},
                    "result_path": _STRING,
                },
                "required": ["task_id"],
                "additionalProperties": False,
            },
        },
        "expected_term_tasks": {"type": "array", "items": _STRING},
        "expected_workflow_status": _STATUS,
        "expected_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": _STRING,
                    "message": _STRING,
                    "task_id": _STRING,
                    "route": _INT,
                    "task_transition_id": _STRING,
                    "result": {},
                    "data": {"type": "object"},
                },
                "required": ["type", "message"],
                "additionalProperties": False,
            },
        },
        "expected_output": {"type": "object"},
    },
    "required": ["workflow", "expected_task_sequence"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft4Validator(_SCHEMA)


class RehearsalError(WorkflowError):
    """A rehearsal spec cannot be loaded or run."""


@dataclass
class MockExecution:
    """A canned action execution answering for a task (``num_iter`` times)."""

    task_id: str
    status: str = st.SUCCEEDED
    result: Any = None
    num_iter: int = 1
    seq_id: int | None = None
    item_id: int | None = None
    used: int = 0

    @property
    def usable(self) -> bool:
        """True while the mock has uses left."""
        return self.used < self.num_iter


@dataclass
class RehearsalSpec:
    """A loaded rehearsal spec (paths resolved, mocks validated against the workflow)."""

    path: Path
    workflow_path: Path
    workflow_text: str
    workflow_spec: WorkflowSpec
    inputs: dict[str, Any]
    mocks: list[MockExecution]
    expected_task_sequence: list[str]
    expected_routes: list[list[Any]] = field(default_factory=lambda: [[]])
    expected_term_tasks: list[str] | None = None
    expected_workflow_status: str = st.SUCCEEDED
    expected_errors: list[dict[str, Any]] | None = None
    expected_output: dict[str, Any] | None = None
    expected_inspection_errors: dict[str, Any] | None = None


def _read_result(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix in (".yaml", ".yml"):
        return yaml.safe_load(text)
    return text


def load_spec(path: Path, base_path: Path | None = None) -> RehearsalSpec:
    """Load and validate a rehearsal spec.

    Args:
        path: the spec file.
        base_path: what relative ``workflow`` and ``result_path`` values are joined to
            (Orquesta's ``-p``); defaults to the current directory.

    Raises:
        RehearsalError: unreadable file, unknown or invalid keys, missing workflow file,
            mocks for unknown tasks or without ``item_id`` for with-items tasks.
    """
    base = Path(base_path) if base_path is not None else Path.cwd()
    if not base.is_dir():
        raise RehearsalError(f'The base path "{base}" does not exist.')
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RehearsalError(f"Unable to read the rehearsal spec {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RehearsalError(f"The rehearsal spec {path} is not a YAML mapping.")
    problems = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if problems:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in problems
        )
        raise RehearsalError(f"The rehearsal spec {path} is invalid: {details}")
    workflow_path = Path(data["workflow"])
    if not workflow_path.is_absolute():
        workflow_path = base / workflow_path
    if not workflow_path.is_file():
        raise RehearsalError(f'Unable to open workflow definition at "{workflow_path}".')
    workflow_text = workflow_path.read_text(encoding="utf-8")
    workflow_spec = parse_workflow(workflow_text)
    mocks = []
    for raw in data.get("mock_action_executions", []):
        task_id = raw["task_id"]
        if not workflow_spec.has_task(task_id):
            raise RehearsalError(
                f'Mock action execution names task "{task_id}", which does '
                "not exist in the workflow."
            )
        task = workflow_spec.get_task(task_id)
        if task.items is not None and raw.get("item_id") is None:
            raise RehearsalError(
                f'Mock action execution for with items task "{task_id}" is missing "item_id".'
            )
        result = raw.get("result")
        if raw.get("result_path"):
            result_path = Path(raw["result_path"])
            if not result_path.is_absolute():
                result_path = base / result_path
            if not result_path.is_file():
                raise RehearsalError(f'The result path "{result_path}" does not exist.')
            result = _read_result(result_path)
        mocks.append(
            MockExecution(
                task_id=task_id,
                status=raw.get("status") or st.SUCCEEDED,
                result=result,
                num_iter=raw.get("num_iter", 1),
                seq_id=raw.get("seq_id"),
                item_id=raw.get("item_id"),
            )
        )
    return RehearsalSpec(
        path=Path(path),
        workflow_path=workflow_path,
        workflow_text=workflow_text,
        workflow_spec=workflow_spec,
        inputs=data.get("inputs") or {},
        mocks=mocks,
        expected_task_sequence=list(data["expected_task_sequence"]),
        expected_routes=data.get("expected_routes", [[]]),
        expected_term_tasks=data.get("expected_term_tasks"),
        expected_workflow_status=data.get("expected_workflow_status") or st.SUCCEEDED,
        expected_errors=data.get("expected_errors"),
        expected_output=data.get("expected_output"),
        expected_inspection_errors=data.get("expected_inspection_errors"),
    )
