"""The workflow graph, compiled once per definition.

Nodes are the tasks reachable from the start tasks plus the engine commands they reach
(``continue``, ``noop``, ``fail``). An edge is one ``(task, next task)`` pair of a transition;
parallel edges between the same two tasks are numbered (``key``) in transition order, and
that number is what Orquesta writes in transition ids (``task2__t0``) and routes
(``task1__t1``). Everything the conductor asks per event — outgoing edges in order, inbound
tasks of a join, whether a task splits the workflow into routes, the retry policy, compiled
criteria and publishes — is precomputed here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from squall.workflow.expressions import CompiledValue, compile_value
from squall.workflow.spec import ENGINE_COMMANDS, RetrySpec, TaskSpec, WorkflowSpec

__all__ = ["Edge", "Graph", "Node", "compile_graph"]


@dataclass(eq=False)
class Edge:
    """One transition from ``src`` to ``dst``."""

    src: str
    dst: str
    key: int
    ref: int
    criteria: str | None
    compiled_criteria: CompiledValue | None
    publish: tuple[tuple[str, CompiledValue], ...]

    @property
    def transition_id(self) -> str:
        """Id used in task ``next`` maps and error logs: ``<dst>__t<key>``."""
        return f"{self.dst}__t{self.key}"

    @property
    def route_id(self) -> str:
        """Id used in route details: ``<src>__t<key>``."""
        return f"{self.src}__t{self.key}"


@dataclass(eq=False)
class Node:
    """One task (or engine command) of the graph with everything precomputed."""

    name: str
    spec: TaskSpec
    barrier: int | str | None = None
    splits: bool = False
    in_cycle: bool = False
    retry: RetrySpec | None = None
    out_edges: list[Edge] = field(default_factory=list)
    in_edges: list[Edge] = field(default_factory=list)
    #: distinct source tasks of the inbound edges, in first-seen order
    in_sources: list[str] = field(default_factory=list)
    #: joins (barrier nodes) this node feeds
    feeds_joins: list[str] = field(default_factory=list)
    action: CompiledValue | None = None
    input: CompiledValue | None = None
    delay: CompiledValue | None = None
    items: CompiledValue | None = None
    concurrency: CompiledValue | None = None

    @property
    def is_engine_command(self) -> bool:
        """True for ``continue``, ``noop`` and ``fail``."""
        return self.name in ENGINE_COMMANDS


@dataclass(eq=False)
class Graph:
    """The compiled workflow graph."""

    spec: WorkflowSpec
    nodes: dict[str, Node]
    roots: list[str]

    def node(self, name: str) -> Node:
        """The node for ``name``; KeyError when the task is not in the graph."""
        return self.nodes[name]


def cycle_nodes(spec: WorkflowSpec) -> frozenset[str]:
    """Every task that lies on a cycle of the task graph.

    Tarjan's strongly connected components, iteratively, in time linear in the tasks and
    transitions (a task is on a cycle when its component has several tasks or a self-loop).
    """
    successors = {
        name: [n for n, _, _ in task.next_tasks() if n in spec.tasks]
        for name, task in spec.tasks.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: set[str] = set()
    counter = 0
    for root in successors:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = successors[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in successors[node]:
                    result.update(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return frozenset(result)


def _next(spec: WorkflowSpec, name: str) -> list[tuple[str, str | None, int]]:
    if name not in spec.tasks:
        return []
    return spec.tasks[name].next_tasks()


def compile_graph(spec: WorkflowSpec) -> Graph:
    """Build the graph of ``spec`` (which should have passed inspection)."""
    prev_count: dict[str, int] = {}
    for task in spec.tasks.values():
        for next_name, _, _ in task.next_tasks():
            prev_count[next_name] = prev_count.get(next_name, 0) + 1
    roots = sorted(name for name in spec.tasks if not prev_count.get(name))
    cyclic = cycle_nodes(spec)

    def in_cycle(name: str) -> bool:
        return name in cyclic

    nodes: dict[str, Node] = {}
    queue = deque(roots)
    expanded: set[str] = set()
    while queue:
        name = queue.popleft()
        task = spec.get_task(name) if spec.has_task(name) else TaskSpec(name=name)
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = _make_node(name, task)
            node.splits = not task.is_join and prev_count.get(name, 0) > 1 and not in_cycle(name)
            node.in_cycle = in_cycle(name)
        if name in expanded:
            continue
        expanded.add(name)
        for next_name, when, ref in task.next_tasks():
            if next_name == "retry":
                node.retry = RetrySpec(count=3, when=when or "<% completed() %>")
                continue
            if next_name not in expanded:
                queue.append(next_name)
            if any(e.dst == next_name and e.ref == ref for e in node.out_edges):
                continue  # the same name twice in one ``do``
            key = sum(1 for e in node.out_edges if e.dst == next_name)
            publish = task.next[ref].publish
            node.out_edges.append(
                Edge(
                    src=name,
                    dst=next_name,
                    key=key,
                    ref=ref,
                    criteria=when,
                    compiled_criteria=compile_value(when) if when else None,
                    publish=tuple((k, compile_value(v)) for k, v in publish),
                )
            )
    for node in nodes.values():
        node.out_edges.sort(key=lambda e: (e.dst, e.key))
        for edge in node.out_edges:
            target = nodes[edge.dst]
            target.in_edges.append(edge)
            if edge.src not in target.in_sources:
                target.in_sources.append(edge.src)
    for node in nodes.values():
        if node.barrier is not None:
            for source in node.in_sources:
                nodes[source].feeds_joins.append(node.name)
    return Graph(spec=spec, nodes=nodes, roots=roots)


def _make_node(name: str, task: TaskSpec) -> Node:
    node = Node(name=name, spec=task)
    if task.join is not None:
        node.barrier = "*" if task.join == "all" else task.join
    node.retry = task.retry
    node.action = compile_value(task.action)
    node.input = compile_value(task.input if task.input is not None else {})
    node.delay = compile_value(task.delay) if task.delay is not None else None
    if task.items is not None:
        node.items = compile_value(task.items.expression)
        concurrency: Any = task.items.concurrency
        node.concurrency = compile_value(concurrency) if concurrency is not None else None
    return node
