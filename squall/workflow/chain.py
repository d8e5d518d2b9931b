"""StackStorm action-chain workflows: parsing, validation and a pure stepper.

An action chain is a list of nodes (``name``, ``ref``, ``parameters``, ``on-success``,
``on-failure``, ``publish``, ``notify``) with optional ``vars`` and ``default`` (the start
node; by default the first node no other node references). Parameters and publishes are
Jinja templates rendered against the chain's input parameters, the chain ``vars``, published
variables, and the earlier nodes' results by node name (``{{ c1.stdout }}``, also under
``__results``).

:class:`ChainStepper` holds no I/O: the engine asks it for the next step, runs the action,
reports the outcome with :meth:`ChainStepper.record`, and persists :meth:`ChainStepper.to_dict`
between steps. Rendered parameters are strings or JSON values as StackStorm renders them;
casting them to the action's parameter types is the engine's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jinja2
import jsonschema

from squall.errors import Issue, WorkflowError
from squall.workflow import statuses as st
from squall.workflow.expressions import jinja_environment
from squall.workflow.spec import load_definition

__all__ = ["ActionChain", "ChainNode", "ChainStep", "ChainStepper", "parse_chain"]

_NODE_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "ref": {"type": "string", "minLength": 1},
        "params": {"type": "object"},
        "parameters": {"type": "object"},
        "on-success": {"type": "string"},
        "on-failure": {"type": "string"},
        "publish": {"type": "object"},
        "notify": {"type": "object"},
    },
    "required": ["name", "ref"],
    "additionalProperties": False,
}
_CHAIN_SCHEMA = {
    "type": "object",
    "properties": {
        "chain": {"type": "array", "items": _NODE_SCHEMA},
        "default": {"type": "string"},
        "vars": {"type": "object"},
    },
    "required": ["chain"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft4Validator(_CHAIN_SCHEMA)
_FAILED = frozenset({st.FAILED, st.TIMEOUT, st.ABANDONED})


@dataclass(frozen=True)
class ChainNode:
    """One node of the chain."""

    name: str
    ref: str
    parameters: dict[str, Any]
    on_success: str | None = None
    on_failure: str | None = None
    publish: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionChain:
    """A validated action chain."""

    nodes: tuple[ChainNode, ...]
    default: str | None
    vars: dict[str, Any]

    def node(self, name: str) -> ChainNode | None:
        """The node called ``name``."""
        return next((n for n in self.nodes if n.name == name), None)


def _is_jinja(value: str) -> bool:
    return "{{" in value or "{%" in value


def parse_chain(
    definition: str | bytes | dict[str, Any], *, source: str | None = None
) -> ActionChain:
    """Parse and validate an action-chain definition.

    Args:
        definition: YAML text or a mapping.
        source: file name for error messages.

    Raises:
        WorkflowError: with one issue per problem (schema, unknown node references, duplicate
            names, no start node).
    """
    data = load_definition(definition)
    issues = [
        Issue(e.message, file=source, path=".".join(str(p) for p in e.absolute_path) or None)
        for e in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if issues:
        raise WorkflowError("Invalid action chain.", issues=issues)
    nodes = tuple(
        ChainNode(
            name=raw["name"],
            ref=raw["ref"],
            parameters=dict(raw.get("parameters") or raw.get("params") or {}),
            on_success=raw.get("on-success") or None,
            on_failure=raw.get("on-failure") or None,
            publish=raw.get("publish"),
            notify=raw.get("notify"),
        )
        for raw in data["chain"]
    )
    names = [n.name for n in nodes]
    for i, name in enumerate(names):
        if name in names[:i]:
            issues.append(
                Issue(
                    f'Node name "{name}" is used more than once.',
                    file=source,
                    path=f"chain.{i}.name",
                )
            )
    for i, node in enumerate(nodes):
        for key, target in (("on-success", node.on_success), ("on-failure", node.on_failure)):
            if target and not _is_jinja(target) and target not in names:
                issues.append(
                    Issue(
                        f'Unable to find node with name "{target}" referenced in "{key}" in '
                        f'task "{node.name}".',
                        file=source,
                        path=f"chain.{i}.{key}",
                    )
                )
    default: str | None = data.get("default") or _default_node(nodes)
    if data.get("default") and default and not _is_jinja(default) and default not in names:
        issues.append(
            Issue(
                f'Unable to find node with name "{default}" referenced in "default".',
                file=source,
                path="default",
            )
        )
    if issues:
        raise WorkflowError("Invalid action chain.", issues=issues)
    return ActionChain(nodes=nodes, default=default, vars=dict(data.get("vars") or {}))


def _default_node(nodes: tuple[ChainNode, ...]) -> str | None:
    if not nodes:
        return None
    referenced = {n.on_success for n in nodes} | {n.on_failure for n in nodes}
    for node in nodes:
        if node.name not in referenced:
            return node.name
    return nodes[0].name


def _render_values(mapping: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """StackStorm's ``render_values``: Jinja-render each value (lists/dicts through JSON)."""
    env = jinja_environment()
    rendered: dict[str, Any] = {}
    for key, value in mapping.items():
        as_json = isinstance(value, dict | list)
        text = json.dumps(value) if as_json else str(value) if value is not None else ""
        if value is None or not _is_jinja(text):
            rendered[key] = value
            continue
        try:
            output = env.from_string(text).render(context)
        except Exception as e:
            raise WorkflowError(
                f'Failed rendering value for "{key}" (template string={text}): '
                f"{type(e).__name__}: {e}"
            ) from e
        rendered[key] = json.loads(output) if as_json else output
    return rendered


@dataclass(frozen=True)
class ChainStep:
    """The next action to run: the node, its action and rendered parameters."""

    node: str
    action: str
    parameters: dict[str, Any]
    notify: dict[str, Any] | None = None


class ChainStepper:
    """Steps through an action chain, one node at a time, with serializable state.

    Args:
        chain: the parsed chain.
        parameters: the chain action's input parameters.
        context: extra names for templates (``st2kv``, ``action_context``, ``config_context``).
        display_published: include published variables in the result (runner parameter).
    """

    def __init__(
        self,
        chain: ActionChain,
        parameters: dict[str, Any] | None = None,
        *,
        context: dict[str, Any] | None = None,
        display_published: bool = True,
    ) -> None:
        self.chain = chain
        self.parameters = dict(parameters or {})
        self.context = dict(context or {})
        self.display_published = display_published
        self.vars: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.tasks: list[dict[str, Any]] = []
        self.published: dict[str, Any] = {}
        self.status = st.FAILED
        self.error: str | None = None
        self.current: str | None = None

    # --- driving ----------------------------------------------------------------------------

    def start(self) -> ChainStep | None:
        """Render ``vars`` and return the first step (None: nothing to run, succeeded)."""
        try:
            self.vars = _render_values(self.chain.vars, {**self.context, **self.parameters})
        except WorkflowError as e:
            return self._abort(f"Failed initializing ``vars`` in chain. {e}")
        if not self.chain.default:
            self.status = st.SUCCEEDED
            return None
        return self._step(self.chain.default)

    def record(self, node: str, status: str, result: Any = None) -> ChainStep | None:
        """Report how a node's action ended; returns the next step or None when the chain
        stopped (see :attr:`status`)."""
        spec = self.chain.node(node)
        if spec is None:
            raise WorkflowError(f'Unable to find node with name "{node}".')
        self.current = None
        self.results[node] = result
        self.tasks.append({"id": node, "name": node, "state": status, "result": result})
        if status == st.SUCCEEDED and spec.publish:
            context = {**self._context(), node: result}
            try:
                published = _render_values(spec.publish, context)
            except WorkflowError as e:
                return self._abort(f'Failed rendering publish in task "{node}". {e}')
            self.vars.update(published)
            self.published.update(published)
        if status == st.SUCCEEDED:
            self.status = st.SUCCEEDED
            target = spec.on_success
        elif status in _FAILED:
            self.status = st.TIMEOUT if status == st.TIMEOUT else st.FAILED
            target = spec.on_failure
        elif status == st.CANCELED:
            self.status = st.CANCELED
            return None
        elif status in (st.PAUSED, st.PENDING):
            self.status = st.PAUSED
            self.current = node
            return None
        else:
            raise WorkflowError(f'Status "{status}" does not end a chain node.')
        if not target:
            return None
        return self._step(target)

    def resume(self) -> ChainStep | None:
        """After a pause, the node to resume (the paused one)."""
        if self.current is None:
            return None
        node = self.current
        self.tasks = [
            t
            for t in self.tasks
            if not (t["name"] == node and t["state"] in (st.PAUSED, st.PENDING))
        ]
        return self._step(node)

    @property
    def result(self) -> dict[str, Any]:
        """The chain's result: ``{"tasks": [...], "published": {...}}`` (+ ``error``)."""
        result: dict[str, Any] = {"tasks": list(self.tasks)}
        if self.display_published:
            result["published"] = dict(self.published)
        if self.error:
            result["error"] = self.error
        return result

    # --- internals --------------------------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        return {
            **self.context,
            **self.parameters,
            **self.results,
            **self.vars,
            "__results": self.results,
        }

    def _step(self, name: str) -> ChainStep | None:
        context = self._context()
        if _is_jinja(name):
            try:
                name = jinja_environment().from_string(name).render(context)
            except jinja2.TemplateError as e:
                return self._abort(f"Failed to render the next node name. {e}")
        node = self.chain.node(name)
        if node is None:
            return self._abort(f'Unable to find node with name "{name}".')
        try:
            params = _render_values(node.parameters, context)
        except WorkflowError as e:
            return self._abort(f'Failed to run task "{node.name}". Parameter rendering failed. {e}')
        self.current = node.name
        return ChainStep(node.name, node.ref, params, node.notify)

    def _abort(self, message: str) -> ChainStep | None:
        self.status = st.FAILED
        self.error = message
        self.current = None
        return None

    def to_dict(self) -> dict[str, Any]:
        """Serializable progress (vars, results, tasks, published, status)."""
        return {
            "parameters": self.parameters,
            "vars": self.vars,
            "results": self.results,
            "tasks": self.tasks,
            "published": self.published,
            "status": self.status,
            "error": self.error,
            "current": self.current,
        }

    @classmethod
    def from_dict(
        cls,
        chain: ActionChain,
        data: dict[str, Any],
        *,
        context: dict[str, Any] | None = None,
        display_published: bool = True,
    ) -> ChainStepper:
        """Restore a stepper saved with :meth:`to_dict`."""
        stepper = cls(
            chain, data.get("parameters"), context=context, display_published=display_published
        )
        stepper.vars = dict(data.get("vars", {}))
        stepper.results = dict(data.get("results", {}))
        stepper.tasks = list(data.get("tasks", []))
        stepper.published = dict(data.get("published", {}))
        stepper.status = data.get("status", st.FAILED)
        stepper.error = data.get("error")
        stepper.current = data.get("current")
        return stepper
