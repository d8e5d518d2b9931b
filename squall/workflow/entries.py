"""The records the state is made of: task entries, staged tasks, context merging."""

from __future__ import annotations

from typing import Any

from squall.workflow import statuses as st
from squall.workflow.items import ItemsTracker

__all__ = ["StagedTask", "TaskEntry", "merge_dicts", "route_key"]


def route_key(task_id: str, route: int) -> str:
    """``task__r<route>``, the key Orquesta uses for a task on a route."""
    return f"{task_id}__r{route}"


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``right`` into a copy of ``left`` (right wins; nested dicts merge).

    Neither argument is modified; unchanged values are shared, not copied.
    """
    if not right:
        return left
    merged = dict(left)
    for key, value in right.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge_dicts(old, value)
        else:
            merged[key] = value
    return merged


class TaskEntry:
    """One task execution in the sequence."""

    __slots__ = (
        "ctx",
        "has_result",
        "idx",
        "next",
        "prev",
        "result",
        "retry",
        "route",
        "status",
        "task_id",
        "term",
    )

    def __init__(self, idx: int, task_id: str, route: int, ctx: int, prev: dict[str, int]):
        self.idx = idx
        self.task_id = task_id
        self.route = route
        self.ctx = ctx
        self.prev = prev
        self.next: dict[str, bool] = {}
        self.status = st.UNSET
        self.term = False
        self.retry: dict[str, Any] | None = None
        self.result: Any = None
        self.has_result = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (Orquesta's entry fields, ``ctx`` as a snapshot index)."""
        data: dict[str, Any] = {
            "id": self.task_id,
            "route": self.route,
            "ctx": self.ctx,
            "prev": dict(self.prev),
            "next": dict(self.next),
            "status": self.status,
        }
        if self.term:
            data["term"] = True
        if self.retry is not None:
            data["retry"] = dict(self.retry)
        if self.has_result:
            data["result"] = self.result
        return data

    @classmethod
    def from_dict(cls, idx: int, data: dict[str, Any]) -> TaskEntry:
        """Inverse of :meth:`to_dict`."""
        entry = cls(idx, data["id"], data["route"], data["ctx"], dict(data.get("prev", {})))
        entry.next = dict(data.get("next", {}))
        entry.status = data.get("status", st.UNSET)
        entry.term = bool(data.get("term", False))
        entry.retry = dict(data["retry"]) if data.get("retry") is not None else None
        if "result" in data:
            entry.result = data["result"]
            entry.has_result = True
        return entry


class StagedTask:
    """A task waiting for dispatch (or a with-items task with items left)."""

    __slots__ = (
        "completed",
        "ctx",
        "items",
        "order",
        "prev",
        "ready",
        "retry",
        "route",
        "run_on_fail",
        "task_id",
    )

    def __init__(
        self,
        task_id: str,
        route: int,
        ctx: int,
        prev: dict[str, int],
        ready: bool,
        retry: dict[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self.route = route
        self.ctx = ctx
        self.prev = prev
        self.ready = ready
        self.retry = retry
        self.run_on_fail = False
        self.completed = False
        self.items: ItemsTracker | None = None
        #: staging order (Orquesta keeps staged tasks in a list; order shows in error logs)
        self.order = 0

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        """Plain-data form; ``full=False`` leaves the per-item arrays out."""
        data: dict[str, Any] = {
            "id": self.task_id,
            "route": self.route,
            "ctx": self.ctx,
            "prev": dict(self.prev),
            "ready": self.ready,
            "order": self.order,
        }
        if self.retry is not None:
            data["retry"] = dict(self.retry)
        if self.run_on_fail:
            data["run_on_fail"] = True
        if self.completed:
            data["completed"] = True
        if self.items is not None:
            data["items"] = self.items.to_dict() if full else self.items.meta()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StagedTask:
        """Inverse of :meth:`to_dict`."""
        staged = cls(
            data["id"],
            data["route"],
            data["ctx"],
            dict(data.get("prev", {})),
            bool(data.get("ready", False)),
            dict(data["retry"]) if data.get("retry") is not None else None,
        )
        staged.order = int(data.get("order", 0))
        staged.run_on_fail = bool(data.get("run_on_fail", False))
        staged.completed = bool(data.get("completed", False))
        if data.get("items") is not None:
            staged.items = ItemsTracker.from_dict(data["items"])
        return staged
