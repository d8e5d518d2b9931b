"""Typed model of an Orquesta workflow definition (version 1.0).

Parsing is forgiving on purpose: a malformed definition still becomes a :class:`WorkflowSpec`
(wrong-typed fields are dropped) so that ``inspect`` can report every problem with its path
instead of stopping at the first one. Shorthands are resolved here:

* ``action: pack.name k=v k2=<% expr %>`` splits into ``action`` and ``input``;
* ``publish: a=1 b=<% result() %>`` (or a dict) becomes ordered ``(name, value)`` pairs;
* ``do: a, b`` becomes a tuple, and a transition without ``do`` means ``continue``;
* ``with: <% list %>`` / ``x, y in <% zip(...) %>`` becomes :class:`ItemsSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from squall.errors import WorkflowError
from squall.workflow.params import parse_inline_params, parse_inline_params_ordered

__all__ = [
    "ENGINE_COMMANDS",
    "RESERVED_TASK_NAMES",
    "ItemsSpec",
    "RetrySpec",
    "TaskSpec",
    "TransitionSpec",
    "WorkflowSpec",
    "load_definition",
    "parse_workflow",
]

#: Names in ``do`` that are engine commands rather than tasks.
ENGINE_COMMANDS = frozenset({"continue", "fail", "noop"})
RESERVED_TASK_NAMES = frozenset({*ENGINE_COMMANDS, "retry"})

#: libyaml's safe loader when PyYAML was built with it (the same documents, ~10x faster).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_ITEMS_RE = re.compile(
    r"^\s*(?:(?P<keys>\w+(?:\s*,\s*\w+)*)\s+in\s+)?(?P<expr>(?:<%.*?%>|{{.*?}}))\s*$"
)


@dataclass(frozen=True)
class TransitionSpec:
    """One entry of a task's ``next`` list."""

    index: int
    when: str | None
    publish: tuple[tuple[str, Any], ...]
    do: tuple[str, ...]
    raw: Any = None


@dataclass(frozen=True)
class ItemsSpec:
    """A task's ``with``: the items expression, optional variable names, concurrency."""

    items: str
    expression: str
    keys: tuple[str, ...] | None
    concurrency: Any = None


@dataclass(frozen=True)
class RetrySpec:
    """A task's retry policy (``retry:`` or compiled from ``do: retry``)."""

    count: Any
    when: str | None = None
    delay: Any = None


@dataclass(frozen=True)
class TaskSpec:
    """One task of the workflow."""

    name: str
    action: str | None = None
    input: Any = None
    next: tuple[TransitionSpec, ...] = ()
    join: Any = None
    items: ItemsSpec | None = None
    retry: RetrySpec | None = None
    delay: Any = None
    raw: Any = None

    @property
    def is_join(self) -> bool:
        """True for ``join: all`` or ``join: N`` tasks."""
        return self.join is not None

    def next_tasks(self) -> list[tuple[str, str | None, int]]:
        """``(next task, when, transition index)`` for every name in every ``do``, by name."""
        found = [(name, t.when, t.index) for t in self.next for name in t.do]
        return sorted(found, key=lambda x: x[0])


@dataclass(frozen=True)
class WorkflowSpec:
    """A parsed workflow definition."""

    tasks: dict[str, TaskSpec]
    version: Any = None
    description: Any = None
    input: tuple[tuple[str, Any, bool], ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    output: tuple[tuple[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def get_task(self, name: str) -> TaskSpec:
        """The task spec; engine commands are empty tasks."""
        if name in RESERVED_TASK_NAMES:
            return TaskSpec(name=name)
        return self.tasks[name]

    def has_task(self, name: str) -> bool:
        """True for defined tasks and engine commands."""
        return name in RESERVED_TASK_NAMES or name in self.tasks


def load_definition(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Load a definition from YAML text (or pass a dict through).

    Raises:
        WorkflowError: the text is not YAML or not a mapping.
    """
    if isinstance(text, dict):
        return text
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # a safe loader (see _SafeLoader)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"The workflow definition is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise WorkflowError("The workflow definition must be a YAML mapping.")
    return data


def parse_workflow(definition: str | bytes | dict[str, Any]) -> WorkflowSpec:
    """Parse a workflow definition (YAML text or dict) into a :class:`WorkflowSpec`."""
    data = load_definition(definition)
    raw_tasks = data.get("tasks")
    tasks: dict[str, TaskSpec] = {}
    if isinstance(raw_tasks, dict):
        for name, body in raw_tasks.items():
            tasks[str(name)] = _parse_task(str(name), body)
    return WorkflowSpec(
        tasks=tasks,
        version=data.get("version"),
        description=data.get("description"),
        input=tuple(_parse_inputs(data.get("input"))),
        vars=tuple(_one_key_pairs(data.get("vars"))),
        output=tuple(_one_key_pairs(data.get("output"))),
        raw=data,
    )


def _parse_inputs(value: Any) -> list[tuple[str, Any, bool]]:
    result: list[tuple[str, Any, bool]] = []
    if not isinstance(value, list):
        return result
    for item in value:
        if isinstance(item, str):
            result.append((item, None, False))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, default),) = item.items()
            result.append((str(name), default, True))
    return result


def _one_key_pairs(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    if not isinstance(value, list):
        return []
    return [
        (str(next(iter(item))), next(iter(item.values())))
        for item in value
        if isinstance(item, dict) and len(item) == 1
    ]


def _parse_task(name: str, body: Any) -> TaskSpec:
    if not isinstance(body, dict):
        return TaskSpec(name=name, raw=body)
    action = body.get("action") if isinstance(body.get("action"), str) else None
    task_input = body.get("input")
    if action is not None:
        inline = parse_inline_params(action)
        if inline:
            action = action[: action.index(" ")]
            task_input = inline
    transitions = body.get("next")
    return TaskSpec(
        name=name,
        action=action,
        input=task_input,
        next=tuple(
            _parse_transition(i, t) for i, t in enumerate(transitions or []) if isinstance(t, dict)
        )
        if isinstance(transitions, list)
        else (),
        join=body.get("join"),
        items=_parse_items(body.get("with")),
        retry=_parse_retry(body.get("retry")),
        delay=body.get("delay"),
        raw=body,
    )


def _parse_transition(index: int, body: dict[str, Any]) -> TransitionSpec:
    when = body.get("when") if isinstance(body.get("when"), str) else None
    publish_raw = body.get("publish")
    if isinstance(publish_raw, str):
        publish = parse_inline_params_ordered(publish_raw)
    else:
        publish = _one_key_pairs(publish_raw)
    do_raw = body.get("do")
    if isinstance(do_raw, str):
        do = tuple(x.strip() for x in do_raw.split(","))
    elif isinstance(do_raw, list) and do_raw:
        do = tuple(str(x) for x in do_raw)
    else:
        do = ("continue",)
    return TransitionSpec(index=index, when=when, publish=tuple(publish), do=do, raw=body)


def _parse_items(value: Any) -> ItemsSpec | None:
    if isinstance(value, str):
        value = {"items": value}
    if not isinstance(value, dict) or not isinstance(value.get("items"), str):
        return None
    text = value["items"]
    match = _ITEMS_RE.match(text)
    if match:
        expression = match.group("expr")
        keys_text = match.group("keys")
        keys = tuple(k.strip() for k in keys_text.split(",")) if keys_text else None
    else:
        expression, keys = text.strip(), None
    return ItemsSpec(
        items=text, expression=expression, keys=keys, concurrency=value.get("concurrency")
    )


def _parse_retry(value: Any) -> RetrySpec | None:
    if not isinstance(value, dict) or "count" not in value:
        return None
    when = value.get("when") if isinstance(value.get("when"), str) else None
    return RetrySpec(count=value["count"], when=when, delay=value.get("delay"))
