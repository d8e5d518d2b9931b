"""What the conductor hands to the engine, and what the engine asks of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ActionRequest", "RerunRequest", "TaskRequest"]


@dataclass(frozen=True)
class ActionRequest:
    """One action execution to start: the whole task, or one item of a with-items task."""

    action: str | None
    input: Any
    item_id: int | None = None


@dataclass(frozen=True)
class TaskRequest:
    """A task the engine should run now.

    Attributes:
        task_id: the task name.
        route: the route (branch instance) the task runs on.
        actions: executions to start; one per item (only the items allowed to start now)
            for with-items tasks.
        delay: seconds to wait before starting (task ``delay`` or retry delay), or None.
        items_count: number of items for a with-items task, else None. A with-items task
            over an empty list comes with no actions: complete it as succeeded with ``[]``.
        concurrency: with-items concurrency, or None.
        retry: True when this is a retry of a completed task.
    """

    task_id: str
    route: int
    actions: tuple[ActionRequest, ...]
    delay: int | None = None
    items_count: int | None = None
    concurrency: int | None = None
    retry: bool = False

    @property
    def action(self) -> str | None:
        """The action ref (of the first action; every item runs the same action)."""
        return self.actions[0].action if self.actions else None

    @property
    def input(self) -> Any:
        """The rendered input of the first action."""
        return self.actions[0].input if self.actions else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {
            "id": self.task_id,
            "route": self.route,
            "actions": [
                {"action": a.action, "input": a.input, "item_id": a.item_id} for a in self.actions
            ],
            "delay": self.delay,
            "items_count": self.items_count,
            "concurrency": self.concurrency,
            "retry": self.retry,
        }


@dataclass(frozen=True)
class RerunRequest:
    """A task (on a route) to run again; ``reset_items`` reruns every item, not just failed."""

    task_id: str
    route: int = 0
    reset_items: bool = False

    @property
    def key(self) -> str:
        """``task__r<route>``."""
        return f"{self.task_id}__r{self.route}"
