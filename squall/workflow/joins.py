"""Join (barrier) bookkeeping: is a join task's inbound criteria met on a route?

Orquesta re-evaluates every inbound transition of a join each time it is asked, which makes
``N`` branches into one join cost ``O(N²)``. Here each ``(join, route)`` keeps a tally per
inbound task — ``None`` (not completed on that route yet), ``False`` or ``True`` (one of its
transitions to the join fired) — updated when that task's latest entry changes, so a
question costs ``O(1)``. The semantics are Orquesta's: ``join: all`` needs every inbound
task, ``join: N`` needs N of them; while some inbound task has not run and the workflow is
still active the answer is "work in progress".
"""

from __future__ import annotations

from squall.workflow import statuses as st
from squall.workflow.graph import Graph
from squall.workflow.state import WorkflowState

__all__ = ["NOT_SATISFIED", "SATISFIED", "WIP", "Joins"]

SATISFIED = "satisfied"
WIP = "in_progress"
NOT_SATISFIED = "not_satisfied"


class _Tally:
    __slots__ = ("none", "true", "values")

    def __init__(self) -> None:
        self.values: dict[str, bool | None] = {}
        self.true = 0
        self.none = 0

    def set(self, source: str, value: bool | None) -> None:
        old = self.values.get(source, "unset")
        if old is True:
            self.true -= 1
        elif old is None:
            self.none -= 1
        self.values[source] = value
        if value is True:
            self.true += 1
        elif value is None:
            self.none += 1


class Joins:
    """Inbound-criteria tallies for the joins of one running workflow."""

    def __init__(self, graph: Graph, state: WorkflowState) -> None:
        self.graph = graph
        self.state = state
        self._tallies: dict[tuple[str, int], _Tally] = {}
        self._edges: dict[tuple[str, str], list[str]] = {}
        for node in graph.nodes.values():
            if node.barrier is None:
                continue
            for edge in node.in_edges:
                self._edges.setdefault((edge.src, node.name), []).append(edge.transition_id)

    def _value(self, source: str, join: str, route: int) -> bool | None:
        entry = self.state.latest.get((source, route))
        if entry is None or entry.status not in st.COMPLETED_STATUSES:
            # Not run yet, or still running on this route: its transitions are unknown.
            return None
        return any(entry.next.get(tid) for tid in self._edges.get((source, join), ()))

    def _tally(self, join: str, route: int) -> _Tally:
        tally = self._tallies.get((join, route))
        if tally is None:
            tally = _Tally()
            for source in self.graph.nodes[join].in_sources:
                tally.set(source, self._value(source, join, route))
            self._tallies[(join, route)] = tally
        return tally

    def source_changed(self, source: str, route: int) -> None:
        """The latest entry of ``source`` on ``route`` was created or its transitions changed."""
        for join in self.graph.nodes[source].feeds_joins:
            tally = self._tallies.get((join, route))
            if tally is not None:
                tally.set(source, self._value(source, join, route))

    def status(self, join: str, route: int) -> str:
        """:data:`SATISFIED`, :data:`WIP` or :data:`NOT_SATISFIED` for ``join`` on ``route``."""
        node = self.graph.nodes[join]
        tally = self._tally(join, route)
        barrier = node.barrier or 1
        requirement = len(node.in_sources) if barrier == "*" else int(barrier)
        if tally.true >= requirement:
            return SATISFIED
        if tally.none and (self.state.has_active_tasks() or self.state.staged_ready > 0):
            return WIP
        return NOT_SATISFIED
