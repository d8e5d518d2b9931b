"""Static inspection of a workflow definition, in Orquesta's four categories.

* ``syntax`` — the definition against the JSON schema;
* ``semantics`` — reserved task names, no start task, transitions to undefined tasks,
  ambiguous (unreachable) joins, with-items tasks without an action;
* ``expressions`` — YAQL/Jinja that does not parse, with the expression and its path
  (``tasks.task1.next[0].when``);
* ``context`` — ``ctx().x`` / ``ctx(x)`` read before any input, var or publish defines ``x``
  on the way to that point.

Each entry is ``{message, spec_path, schema_path}`` plus ``type`` and ``expression`` for
the last two. :func:`inspect_spec` returns only non-empty categories.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import jsonschema

from squall.workflow import expr_checks as expr
from squall.workflow.graph import cycle_nodes
from squall.workflow.params import parse_inline_params_ordered
from squall.workflow.schema import WORKFLOW_SCHEMA, normalize_for_schema
from squall.workflow.spec import (
    RESERVED_TASK_NAMES,
    TaskSpec,
    WorkflowSpec,
    load_definition,
    parse_workflow,
)

__all__ = ["inspect_definition", "inspect_spec"]

_TASKS = ("tasks", "properties.tasks")
_TASK_SCHEMA = "properties.tasks.patternProperties.^\\w+$"
_VALIDATOR = jsonschema.Draft4Validator(WORKFLOW_SCHEMA)


def inspect_definition(
    definition: str | bytes | dict[str, Any], app_ctx: dict[str, Any] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Inspect YAML text or a mapping; see :func:`inspect_spec`."""
    return inspect_spec(parse_workflow(load_definition(definition)), app_ctx)


def inspect_spec(
    spec: WorkflowSpec, app_ctx: dict[str, Any] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Inspect a parsed workflow.

    Args:
        spec: the parsed workflow.
        app_ctx: names the application provides in the context (e.g. ``st2``).

    Returns:
        ``{category: [error, ...]}`` for the categories that have errors.
    """

    def order(e: dict[str, Any]) -> tuple[str, str]:
        return (e.get("schema_path") or "", e.get("spec_path") or "")

    result: dict[str, list[dict[str, Any]]] = {}
    categories = (
        ("syntax", _syntax(spec)),
        ("semantics", _semantics(spec)),
        ("expressions", _expressions(spec)),
        ("context", _context(spec, list(app_ctx or {}))),
    )
    for name, errors in categories:
        if errors:
            result[name] = sorted(errors, key=order)
    return result


# --- syntax -----------------------------------------------------------------------------------


def _path(parts: Any) -> str | None:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or None


def _syntax(spec: WorkflowSpec) -> list[dict[str, Any]]:
    return [
        {
            "message": error.message,
            "spec_path": _path(error.absolute_path),
            "schema_path": _path(error.absolute_schema_path),
        }
        for error in _VALIDATOR.iter_errors(normalize_for_schema(spec.raw))
    ]


# --- semantics --------------------------------------------------------------------------------


def _task_paths(name: str) -> tuple[str, str]:
    return f"tasks.{name}", _TASK_SCHEMA


def _start_tasks(spec: WorkflowSpec) -> list[str]:
    referenced = {n for task in spec.tasks.values() for n, _, _ in task.next_tasks()}
    return sorted(name for name in spec.tasks if name not in referenced)


def _next(spec: WorkflowSpec, name: str) -> list[tuple[str, str | None, int]]:
    return spec.tasks[name].next_tasks() if name in spec.tasks else []


def _semantics(spec: WorkflowSpec) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for name in spec.tasks:
        if name in RESERVED_TASK_NAMES:
            path, schema = _task_paths(name)
            message = f'The task name "{name}" is reserved with special function.'
            errors.append({"message": message, "spec_path": path, "schema_path": schema})
    starts = _start_tasks(spec)
    if spec.tasks and not starts:
        errors.append(
            {
                "message": (
                    "Unable to identify any tasks to start the workflow. If the workflow has a "
                    "loop, please add a task that serves as an entry point (or lead) into the "
                    "loop."
                ),
                "spec_path": _TASKS[0],
                "schema_path": _TASKS[1],
            }
        )
    errors.extend(_undefined_tasks(spec, starts))
    errors.extend(_unreachable_joins(spec, starts))
    for name, task in spec.tasks.items():
        if task.items is not None and not task.action:
            path, schema = _task_paths(name)
            message = "The action property is required for with items task."
            errors.append({"message": message, "spec_path": path, "schema_path": schema})
    return errors


def _undefined_tasks(spec: WorkflowSpec, starts: list[str]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    queued = set(starts)
    queue = deque(starts)
    while queue:
        name = queue.popleft()
        path, schema = _task_paths(name)
        for transition in spec.get_task(name).next:
            for next_name in transition.do:
                if spec.has_task(next_name):
                    if next_name not in RESERVED_TASK_NAMES and next_name not in queued:
                        queued.add(next_name)
                        queue.append(next_name)
                    continue
                entry = {
                    "message": f'The task "{next_name}" is not defined.',
                    "spec_path": f"{path}.next[{transition.index}].do",
                    "schema_path": f"{schema}.properties.next.items.properties.do",
                }
                if entry not in errors:
                    errors.append(entry)
    return errors


def _unreachable_joins(spec: WorkflowSpec, starts: list[str]) -> list[dict[str, Any]]:
    prev_count: dict[str, int] = {}
    for task in spec.tasks.values():
        for n, _, _ in task.next_tasks():
            prev_count[n] = prev_count.get(n, 0) + 1
    staging: dict[str, dict[str, Any]] = {}
    cyclic = cycle_nodes(spec)
    queue: deque[tuple[str | None, str, list[str]]] = deque((None, s, []) for s in starts)
    while queue:
        prev_name, name, splits = queue.popleft()
        if name not in spec.tasks:
            continue
        task = spec.tasks[name]
        if not task.is_join and prev_count.get(name, 0) > 1 and name not in cyclic:
            splits.append(name)
        meta = staging.setdefault(name, {"join": task.is_join, "splits": set(), "prev": set()})
        meta["splits"] |= set(splits)
        if prev_name:
            meta["prev"].add(prev_name)
        for next_name, _, _ in task.next_tasks():
            if next_name not in staging or next_name not in cyclic:
                queue.append((name, next_name, list(splits)))
    errors = []
    for name, meta in staging.items():
        if not meta["join"]:
            continue
        for prev_name in sorted(meta["prev"]):
            if meta["splits"] != staging[prev_name]["splits"]:
                path, schema = _task_paths(name)
                message = (
                    f'The join task "{name}" is unreachable. A join task is determined to be '
                    "unreachable if there are nested forks from multi-referenced tasks that "
                    "join on the said task. This is ambiguous to the workflow engine because "
                    "it does not know at which level should the join occurs."
                )
                errors.append({"message": message, "spec_path": path, "schema_path": schema})
                break
    return errors


# --- expressions ------------------------------------------------------------------------------


def _check(value: Any, spec_path: str, schema_path: str) -> list[dict[str, Any]]:
    found = expr.validate(value)
    for entry in found:
        entry["spec_path"] = spec_path
        entry["schema_path"] = schema_path
    return found


def _expressions(spec: WorkflowSpec) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for prop in ("vars", "input", "output"):
        if spec.raw.get(prop) is not None:
            errors.extend(_check(spec.raw[prop], prop, f"properties.{prop}"))
    for name, task in spec.tasks.items():
        path, schema = _task_paths(name)
        plain = (("delay", task.delay), ("join", task.join), ("action", task.action))
        for prop, value in (*plain, ("input", task.input)):
            if value is not None:
                errors.extend(_check(value, f"{path}.{prop}", f"{schema}.properties.{prop}"))
        if task.items is not None:
            for prop, value in (
                ("items", task.items.items),
                ("concurrency", task.items.concurrency),
            ):
                if value is not None:
                    errors.extend(
                        _check(
                            value,
                            f"{path}.with.{prop}",
                            f"{schema}.properties.with.properties.{prop}",
                        )
                    )
        if task.retry is not None:
            retry = task.retry
            for prop, value in (
                ("when", retry.when),
                ("count", retry.count),
                ("delay", retry.delay),
            ):
                if value is not None:
                    errors.extend(
                        _check(
                            value,
                            f"{path}.retry.{prop}",
                            f"{schema}.properties.retry.properties.{prop}",
                        )
                    )
        for t in task.next:
            base, tschema = f"{path}.next[{t.index}]", f"{schema}.properties.next.items"
            publish = [{k: v} for k, v in t.publish] or None
            for prop, value in (("when", t.when), ("publish", publish), ("do", list(t.do))):
                if value is not None:
                    errors.extend(_check(value, f"{base}.{prop}", f"{tschema}.properties.{prop}"))
    return errors


# --- context ----------------------------------------------------------------------------------


def _ctx_inputs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        names: list[str] = []
        for item in value:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and len(item) == 1:
                names.extend(str(k) for k in item)
        return names
    if isinstance(value, str):
        return [value]
    return []


class _ContextCheck:
    """Orquesta's walk: which variables are defined at each point of the workflow."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def check(self, value: Any, spec_path: str, schema_path: str, known: set[str]) -> None:
        for kind, statement, name in expr.extract_vars(value):
            base = {"type": kind, "expression": statement}
            paths = {"spec_path": spec_path, "schema_path": schema_path}
            if name.startswith("__"):
                message = (
                    f'Variable "{name}" that is prefixed with double underscores is considered '
                    "a private variable and cannot be referenced."
                )
                self.errors.append({**base, "message": message, **paths})
            if name not in known:
                message = f'Variable "{name}" is referenced before assignment.'
                self.errors.append({**base, "message": message, **paths})

    def prop(
        self, value: Any, spec_path: str, schema_path: str, known: set[str], defines: bool
    ) -> set[str]:
        """Check one property; returns the variables known afterwards."""
        if value is None or value == "" or value == [] or value == {}:
            return known
        if isinstance(value, str):
            inline = parse_inline_params_ordered(value)
            if inline:
                value = [{k: v} for k, v in inline]
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check(item, f"{spec_path}[{i}]", schema_path, known)
                if defines:
                    known = known | set(_ctx_inputs(item))
            return known
        self.check(value, spec_path, schema_path, known)
        return known | set(_ctx_inputs(value)) if defines else known

    def task(self, task: TaskSpec, path: str, schema: str, known: set[str]) -> None:
        self.prop(task.delay, f"{path}.delay", f"{schema}.properties.delay", known, False)
        if task.items is not None:
            wpath, wschema = f"{path}.with", f"{schema}.properties.with"
            self.prop(
                task.items.items, f"{wpath}.items", f"{wschema}.properties.items", known, False
            )
            self.prop(
                task.items.concurrency,
                f"{wpath}.concurrency",
                f"{wschema}.properties.concurrency",
                known,
                False,
            )
        self.prop(task.action, f"{path}.action", f"{schema}.properties.action", known, False)
        self.prop(task.input, f"{path}.input", f"{schema}.properties.input", known, False)


def _context(spec: WorkflowSpec, app_ctx: list[str]) -> list[dict[str, Any]]:
    walk = _ContextCheck()
    known = set(app_ctx)
    raw = spec.raw
    known = walk.prop(raw.get("input"), "input", "properties.input", known, True)
    known = walk.prop(raw.get("vars"), "vars", "properties.vars", known, True)
    if spec.tasks:
        known = _walk_tasks(spec, walk, known)
    walk.prop(raw.get("output"), "output", "properties.output", known, True)
    return walk.errors


def _walk_tasks(spec: WorkflowSpec, walk: _ContextCheck, rolling: set[str]) -> set[str]:
    join_ctx: dict[str, set[str]] = {}
    traversed: set[str] = set()
    queue: deque[tuple[str, set[str] | None]] = deque(
        (name, set(rolling)) for name in _start_tasks(spec)
    )
    while queue:
        name, task_ctx = queue.popleft()
        traversed.add(name)
        if not task_ctx:
            task_ctx = set(join_ctx.get(name, set()))
        task = spec.get_task(name)
        path, schema = _task_paths(name)
        walk.task(task, path, schema, task_ctx)
        rolling = rolling | task_ctx
        for t in task.next:
            tpath, tschema = f"{path}.next[{t.index}]", f"{schema}.properties.next.items"
            branch = walk.prop(
                t.when, f"{tpath}.when", f"{tschema}.properties.when", task_ctx, False
            )
            publish = [{k: v} for k, v in t.publish]
            branch = walk.prop(
                publish, f"{tpath}.publish", f"{tschema}.properties.publish", branch, True
            )
            walk.prop(list(t.do), f"{tpath}.do", f"{tschema}.properties.do", branch, False)
            for next_name in t.do:
                if next_name in traversed or not spec.has_task(next_name):
                    continue
                if not spec.get_task(next_name).is_join:
                    queue.append((next_name, set(branch)))
                else:
                    join_ctx[next_name] = join_ctx.get(next_name, set()) | branch
                    queue.append((next_name, None))
    return rolling
