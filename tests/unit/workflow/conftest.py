"""Helpers for driving a conductor the way the engine service does."""

from __future__ import annotations

from typing import Any

import pytest

from squall.workflow import WorkflowConductor, compile_workflow


class Driver:
    """Runs dispatched tasks with canned results: ``results[task] = (status, result)``."""

    def __init__(self, conductor: WorkflowConductor) -> None:
        self.conductor = conductor
        self.dispatched: list[tuple[str, int]] = []

    def dispatch(self) -> list[Any]:
        requests = self.conductor.get_next_tasks()
        for request in requests:
            self.dispatched.append((request.task_id, request.route))
            if request.items_count is None:
                self.conductor.update_task_state(request.task_id, request.route, "running")
            for action in request.actions:
                if action.item_id is not None:
                    self.conductor.update_task_state(
                        request.task_id, request.route, "running", item_id=action.item_id
                    )
        return requests

    def finish(
        self,
        task_id: str,
        status: str = "succeeded",
        result: Any = None,
        *,
        route: int = 0,
        item_id: int | None = None,
    ) -> None:
        self.conductor.update_task_state(task_id, route, status, result, item_id=item_id)


@pytest.fixture
def make_driver() -> Any:
    def make(
        definition: str, inputs: dict[str, Any] | None = None, *, check: bool = True, **kwargs: Any
    ) -> Driver:
        """A running conductor; ``check=False`` skips inspection (to test runtime errors)."""
        workflow = compile_workflow(
            definition, check=check, app_ctx=list(kwargs.get("context") or {})
        )
        conductor = WorkflowConductor(workflow, inputs, **kwargs)
        conductor.request_workflow_status("running")
        return Driver(conductor)

    return make
