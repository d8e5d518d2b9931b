"""Join (barrier) bookkeeping: is a join task's inbound criteria met on a route?

Orquesta re-evaluates every inbound transition of a join each time it is asked, which makes
``N`` branches into one join cost ``O(N²)``. Here each ``(join, route)`` keeps a tally per
inbound task — not run on that route, still running, ``False``, or ``True`` (one of its
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


_IN_FLIGHT = "in_flight"


class _Tally:
    """Per inbound task: True, False, None (no entry on the route) or in flight."""

    __slots__ = ("in_flight", "missing", "true", "values")

    def __init__(self) -> None:
        self.values: dict[str, bool | str | None] = {}
        self.true = 0
        self.missing = 0
        self.in_flight = 0

    def _count(self, value: bool | str | None, delta: int) -> None:
        if value is True:
            self.true += delta
        elif value is None:
            self.missing += delta
        elif value == _IN_FLIGHT:
            self.in_flight += delta

    def set(self, source: str, value: bool | str | None) -> None:
        if source in self.values:
            self._count(self.values[source], -1)
        self.values[source] = value
        self._count(value, 1)


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

    def _value(self, source: str, join: str, route: int) -> bool | str | None:
        entry = self.state.latest.get((source, route))
        if entry is None:
            return None
        if entry.status not in st.COMPLETED_STATUSES:
            return _IN_FLIGHT  # its transitions are not known yet
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

    def status(self, join: str, route: int, *, final: bool = False) -> str:
        """:data:`SATISFIED`, :data:`WIP` or :data:`NOT_SATISFIED` for ``join`` on ``route``.

        While the workflow runs, an inbound task still in flight keeps the join in progress.
        Once the workflow has ended (``final``), in-flight inbound tasks can no longer lead
        to the join (a failed workflow schedules nothing): they count as not satisfied, so a
        fail-fast also reports the joins those branches were heading to.
        """
        node = self.graph.nodes[join]
        tally = self._tally(join, route)
        barrier = node.barrier or 1
        requirement = len(node.in_sources) if barrier == "*" else int(barrier)
        if tally.true >= requirement:
            return SATISFIED
        pending = tally.missing if final else tally.missing + tally.in_flight
        if pending and (self.state.has_active_tasks() or self.state.staged_ready > 0):
            return WIP
        return NOT_SATISFIED
