"""Progress of one with-items task: item statuses, results, concurrency, constant cost per item.

The items list is evaluated once, when the task is first dispatched, and kept so later items
render against the same values. Statuses are counted so the with-items rules (``machines``)
get their summary of the other items without scanning, and the next items to start are
found from a moving pointer. Results are kept per item; the task result is the list of
item results in item order, up to the highest item reported so far.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from squall.errors import WorkflowError
from squall.workflow import statuses as st
from squall.workflow.machines import ItemsSummary

__all__ = ["ItemsTracker"]

_PAUSED = (st.PENDING, st.PAUSED)


class ItemsTracker:
    """Item statuses and results of a with-items task on one route."""

    __slots__ = (
        "_counts",
        "_dirty",
        "_values_saved",
        "active",
        "concurrency",
        "count",
        "max_reported",
        "pointer",
        "results",
        "statuses",
        "values",
    )

    def __init__(self, values: list[Any], concurrency: int | None) -> None:
        self.values = values
        self.count = len(values)
        self.concurrency = concurrency
        self.statuses: list[str] = [st.UNSET] * self.count
        self.results: dict[int, Any] = {}
        self.max_reported = -1
        self.pointer = 0
        self.active = 0
        self._counts: Counter[str] = Counter({st.UNSET: self.count})
        self._dirty: set[int] = set()
        self._values_saved = False

    # --- dispatch -----------------------------------------------------------------------

    def next_to_start(self) -> list[int]:
        """Indexes of unstarted items allowed to start now (concurrency applied)."""
        limit = self.count
        if self.concurrency is not None:
            limit = self.concurrency - self.active
            if limit <= 0:
                return []
        while self.pointer < self.count and self.statuses[self.pointer] != st.UNSET:
            self.pointer += 1
        picked: list[int] = []
        i = self.pointer
        while i < self.count and len(picked) < limit:
            if self.statuses[i] == st.UNSET:
                picked.append(i)
            i += 1
        return picked

    # --- events -------------------------------------------------------------------------

    def set_status(self, item_id: int, status: str, result: Any, has_result: bool) -> None:
        """Record an item event."""
        if not 0 <= item_id < self.count:
            raise WorkflowError(f"Item {item_id} does not exist (the task has {self.count} items).")
        old = self.statuses[item_id]
        self._counts[old] -= 1
        if old in st.ACTIVE_STATUSES:
            self.active -= 1
        self.statuses[item_id] = status
        self._counts[status] += 1
        if status in st.ACTIVE_STATUSES:
            self.active += 1
        if status == st.UNSET and item_id < self.pointer:
            self.pointer = item_id
        self.max_reported = max(self.max_reported, item_id)
        if has_result:
            self.results[item_id] = result
        self._dirty.add(item_id)

    def summary(self, exclude: int | None = None) -> ItemsSummary:
        """Summary of item statuses, optionally leaving one item out."""
        counts = self._counts
        if exclude is not None:
            counts = Counter(counts)
            counts[self.statuses[exclude]] -= 1

        def has(*statuses: str) -> bool:
            return any(counts[s] > 0 for s in statuses)

        active = has(*st.ACTIVE_STATUSES)
        incomplete = any(n > 0 for s, n in counts.items() if s not in st.COMPLETED_STATUSES)
        if has(*_PAUSED):
            kind = "paused"
        elif has(st.CANCELED):
            kind = "canceled"
        elif has(*st.ABENDED_STATUSES):
            kind = "failed"
        else:
            kind = "incomplete" if incomplete else "completed"
        return ItemsSummary(active, kind, incomplete)

    def result_list(self) -> list[Any]:
        """Item results in item order, up to the highest item reported."""
        return [self.results.get(i) for i in range(self.max_reported + 1)]

    def reset(self, *, everything: bool) -> None:
        """Make failed items (or all items) unstarted again, for a rerun."""
        for i, status in enumerate(self.statuses):
            if everything or status in st.ABENDED_STATUSES:
                self.set_status(i, st.UNSET, None, False)
                self.results.pop(i, None)

    # --- serialization ------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The small part: sizes and pointers."""
        return {
            "count": self.count,
            "concurrency": self.concurrency,
            "max_reported": self.max_reported,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain data."""
        return {
            **self.meta(),
            "values": self.values,
            "statuses": list(self.statuses),
            "results": {str(i): r for i, r in self.results.items()},
        }

    def pop_changes(self) -> dict[str, Any]:
        """Item-level changes since the last call: ``values`` once, then touched items."""
        changes: dict[str, Any] = {"meta": self.meta(), "items": {}}
        if not self._values_saved:
            changes["values"] = self.values
            self._values_saved = True
        for i in sorted(self._dirty):
            item: dict[str, Any] = {"status": self.statuses[i]}
            if i in self.results:
                item["result"] = self.results[i]
            changes["items"][i] = item
        self._dirty.clear()
        return changes

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemsTracker:
        """Inverse of :meth:`to_dict`."""
        tracker = cls(list(data.get("values", [])), data.get("concurrency"))
        tracker.count = int(data.get("count", tracker.count))
        statuses = list(data.get("statuses", [st.UNSET] * tracker.count))
        tracker.statuses = statuses
        tracker._counts = Counter(statuses)
        tracker.active = sum(1 for s in statuses if s in st.ACTIVE_STATUSES)
        tracker.results = {int(k): v for k, v in data.get("results", {}).items()}
        tracker.max_reported = int(data.get("max_reported", -1))
        tracker._values_saved = True
        return tracker
