"""Inspecting workflow definitions: at pack registration, through the API and the CLI, at run.

Orquesta definitions get Orquesta's four inspection categories (``syntax``, ``semantics``,
``expressions``, ``context``) plus ``content`` (actions that are not registered, when a set of
known actions is given); action chains get their schema and reference checks. Errors come as
StackStorm's inspection entries (``type``, ``message``, ``spec_path``, ``schema_path``, and
``expression`` for expression problems) or, for files, as :class:`Issue` with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from squall.errors import Issue, WorkflowError
from squall.packs import YamlFileError, load_yaml_file
from squall.workflow import inspect_spec, parse_chain, parse_workflow
from squall.workflow.spec import WorkflowSpec, load_definition

__all__ = [
    "APP_CONTEXT",
    "action_issues",
    "inspect_text",
    "issues_for_file",
    "static_action_refs",
    "workflow_kind",
]

#: Names the engine puts in every Orquesta run's context (``ctx().st2``, ``ctx().parent``).
APP_CONTEXT = ("parent", "st2")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def workflow_kind(runner_type: str) -> str | None:
    """``orquesta`` / ``action-chain`` for workflow runner types, else None."""
    return runner_type if runner_type in ("orquesta", "action-chain") else None


def static_action_refs(spec: WorkflowSpec) -> dict[str, str]:
    """Task name → action ref, for tasks whose action is not an expression."""
    refs: dict[str, str] = {}
    for name, task in spec.tasks.items():
        action = task.action
        if isinstance(action, str) and "<%" not in action and "{{" not in action:
            refs[name] = action
    return refs


def _flatten(errors: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """StackStorm's flat list: ``type`` is the category (``expression`` for expression
    errors), the expression language moves to ``language``."""
    out = []
    for category in ("syntax", "semantics", "expressions", "context", "content"):
        for entry in errors.get(category, []):
            item = dict(entry)
            if "type" in item:
                item["language"] = item.pop("type")
            out.append({"type": "expression" if category == "expressions" else category, **item})
    return out


def inspect_text(
    text: str | bytes | dict[str, Any],
    *,
    kind: str = "orquesta",
    action_exists: Callable[[str], bool] | None = None,
    app_ctx: Iterable[str] = APP_CONTEXT,
) -> list[dict[str, Any]]:
    """Inspection errors of a definition, flattened with their ``type`` (empty: valid).

    Args:
        text: the definition (YAML text or a mapping).
        kind: ``orquesta`` or ``action-chain``.
        action_exists: when given, static action refs it rejects are ``content`` errors.
        app_ctx: context names the application provides.
    """
    if kind == "action-chain":
        return _inspect_chain(text, action_exists)
    try:
        spec = parse_workflow(load_definition(text))
    except WorkflowError as exc:
        return [{"type": "syntax", "message": exc.message, "spec_path": None, "schema_path": None}]
    errors = inspect_spec(spec, {name: None for name in app_ctx})
    if action_exists is not None:
        content = [
            {
                "message": f'The action "{ref}" is not registered in the database.',
                "schema_path": r"properties.tasks.patternProperties.^\w+$.properties.action",
                "spec_path": f"tasks.{task}.action",
            }
            for task, ref in sorted(static_action_refs(spec).items())
            if not action_exists(ref)
        ]
        if content:
            errors["content"] = content
    return _flatten(errors)


def _inspect_chain(
    text: str | bytes | dict[str, Any], action_exists: Callable[[str], bool] | None
) -> list[dict[str, Any]]:
    try:
        chain = parse_chain(text)
    except WorkflowError as exc:
        issues = exc.issues or [Issue(exc.message)]
        return [
            {"type": "syntax", "message": i.message, "spec_path": i.path, "schema_path": None}
            for i in issues
        ]
    if action_exists is None:
        return []
    return [
        {
            "type": "content",
            "message": f'The action "{node.ref}" is not registered in the database.',
            "spec_path": f"chain[{idx}].ref",
            "schema_path": None,
        }
        for idx, node in enumerate(chain.nodes)
        if "{{" not in node.ref and not action_exists(node.ref)
    ]


def _yaml_path(spec_path: str | None) -> tuple[Any, ...]:
    if not spec_path:
        return ()
    return tuple(int(index) if index else key for key, index in _PATH_PART.findall(spec_path))


def issues_for_file(
    path: Path,
    *,
    kind: str,
    display_name: str,
    action_exists: Callable[[str], bool] | None = None,
) -> list[Issue]:
    """Inspect a workflow file; each error becomes an issue with the file and its line."""
    try:
        document = load_yaml_file(path, display_name=display_name)
    except YamlFileError as exc:
        return [exc.issue]
    issues = []
    for error in inspect_text(document.data, kind=kind, action_exists=action_exists):
        message = f"[{error['type']}] {error['message']}"
        if error.get("expression"):
            message += f" (expression {error['expression']!r})"
        spec_path = error.get("spec_path")
        line = document.line_of(_yaml_path(spec_path)) if spec_path else None
        issues.append(Issue(message, file=display_name, line=line, path=spec_path or None))
    return issues


def action_issues(action: Any, pack_path: Path) -> list[Issue]:
    """Inspection issues of a pack action's workflow definition (none for other runners).

    Args:
        action: the loaded action (``runner_type``, ``entry_point_path``).
        pack_path: the pack directory, to name files relative to it.
    """
    kind = workflow_kind(action.runner_type)
    path = getattr(action, "entry_point_path", None)
    if kind is None or path is None:
        return []
    try:
        display = str(Path(path).relative_to(pack_path))
    except ValueError:
        display = str(path)
    return issues_for_file(Path(path), kind=kind, display_name=display)
