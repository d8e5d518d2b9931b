"""A workflow definition compiled for running: spec, graph and expressions, built once.

:func:`compile_workflow` parses, inspects (raising :class:`~squall.errors.WorkflowError`
with one :class:`~squall.errors.Issue` per problem) and compiles a definition; results are
cached by definition text, so conductors for many executions of the same workflow share one
compiled graph.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from squall.errors import Issue, WorkflowError
from squall.workflow.expressions import CompiledValue, compile_value
from squall.workflow.graph import Graph, compile_graph
from squall.workflow.inspect import inspect_spec
from squall.workflow.spec import WorkflowSpec, load_definition, parse_workflow

__all__ = ["Workflow", "compile_workflow", "inspection_error"]


@dataclass(frozen=True, eq=False)
class Workflow:
    """A parsed, inspected and compiled workflow definition (immutable, shareable)."""

    spec: WorkflowSpec
    graph: Graph
    inputs: tuple[tuple[str, CompiledValue, bool], ...]
    vars: tuple[tuple[str, CompiledValue], ...]
    output: tuple[tuple[str, CompiledValue], ...]

    @classmethod
    def from_spec(cls, spec: WorkflowSpec) -> Workflow:
        """Compile an already parsed spec (no inspection)."""
        return cls(
            spec=spec,
            graph=compile_graph(spec),
            inputs=tuple((n, compile_value(v), has) for n, v, has in spec.input),
            vars=tuple((n, compile_value(v)) for n, v in spec.vars),
            output=tuple((n, compile_value(v)) for n, v in spec.output),
        )


def inspection_error(errors: dict[str, list[dict[str, Any]]]) -> WorkflowError:
    """A :class:`WorkflowError` listing inspection errors as issues."""
    issues = []
    for category, entries in errors.items():
        for entry in entries:
            message = entry["message"]
            if entry.get("expression"):
                message = f"{message} (expression {entry['expression']!r})"
            issues.append(Issue(f"[{category}] {message}", path=entry.get("spec_path")))
    return WorkflowError(
        "Workflow definition failed inspection.",
        issues=issues,
        hint="fix the listed problems; `squall workflow inspect` shows them all",
    )


_CACHE: OrderedDict[tuple[bool, tuple[str, ...], str], Workflow] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 256


def compile_workflow(
    definition: str | bytes | dict[str, Any] | WorkflowSpec,
    *,
    check: bool = True,
    app_ctx: list[str] | None = None,
) -> Workflow:
    """Parse, inspect and compile a workflow definition (cached by content).

    Args:
        definition: YAML text, a parsed mapping, or a :class:`WorkflowSpec`.
        check: run the static inspection first and refuse invalid definitions.
        app_ctx: names the application puts in the context (``st2``, ``parent``); they
            count as defined for the context inspection.

    Raises:
        WorkflowError: the definition is not YAML or fails inspection.
    """
    names = {name: None for name in sorted(app_ctx or [])}
    if isinstance(definition, WorkflowSpec):
        if check:
            errors = inspect_spec(definition, names)
            if errors:
                raise inspection_error(errors)
        return Workflow.from_spec(definition)
    if isinstance(definition, bytes):
        definition = definition.decode("utf-8")
    text = definition if isinstance(definition, str) else json.dumps(definition, sort_keys=True)
    # A tuple key reuses the text's cached hash: no per-call cost proportional to its size.
    key = (check, tuple(names), text)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    spec = parse_workflow(load_definition(definition))
    if check:
        errors = inspect_spec(spec, names)
        if errors:
            raise inspection_error(errors)
    workflow = Workflow.from_spec(spec)
    with _CACHE_LOCK:
        _CACHE[key] = workflow
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return workflow
