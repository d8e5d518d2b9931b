"""Rerunning completed workflows from failed or chosen tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from squall.errors import WorkflowError
from squall.workflow import RerunRequest, WorkflowConductor

SEQUENTIAL = """
version: 1.0
tasks:
  t1:
    action: core.noop
    next: [{when: <% succeeded() %>, publish: one=<% result() %>, do: t2}]
  t2:
    action: core.noop
    next: [{when: <% succeeded() %>, do: t3}]
  t3:
    action: core.noop
output:
  - one: <% ctx().one %>
"""


def test_rerun_from_the_failed_task_after_a_state_round_trip(make_driver: Any) -> None:
    driver = make_driver(SEQUENTIAL)
    driver.dispatch()
    driver.finish("t1", result=1)
    driver.dispatch()
    driver.finish("t2", "failed", result="boom")
    conductor = driver.conductor
    conductor.render_workflow_output()
    assert conductor.status == "failed" and conductor.output == {"one": 1}
    with pytest.raises(WorkflowError, match="not in a completed state"):
        WorkflowConductor(SEQUENTIAL).request_workflow_rerun()

    restored = WorkflowConductor.from_state(
        SEQUENTIAL, json.loads(json.dumps(conductor.serialize()))
    )
    restored.request_workflow_rerun()
    assert restored.status == "resuming"
    assert restored.errors == [] and restored.output is None
    assert restored.state.reruns == [[1]]
    driver.conductor = restored
    (request,) = driver.dispatch()
    assert request.task_id == "t2" and restored.status == "running"
    driver.finish("t2")
    driver.dispatch()
    driver.finish("t3")
    restored.render_workflow_output()
    assert restored.status == "succeeded" and restored.output == {"one": 1}
    assert [(e.task_id, e.status) for e in restored.sequence] == [
        ("t1", "succeeded"),
        ("t2", "failed"),
        ("t2", "succeeded"),
        ("t3", "succeeded"),
    ]


def test_rerun_chosen_task_and_unknown_task(make_driver: Any) -> None:
    driver = make_driver(SEQUENTIAL)
    for task in ("t1", "t2", "t3"):
        driver.dispatch()
        driver.finish(task, result=task)
    conductor = driver.conductor
    assert conductor.status == "succeeded"
    with pytest.raises(WorkflowError, match=r"t9\|0"):
        conductor.request_workflow_rerun([RerunRequest("t9")])
    conductor.request_workflow_rerun([RerunRequest("t2")])
    assert [r.task_id for r in driver.dispatch()] == ["t2"]
    driver.finish("t2")
    assert [r.task_id for r in driver.dispatch()] == ["t3"]


ITEMS = """
version: 1.0
vars:
  - xs: [a, b, c]
tasks:
  each:
    with: <% ctx(xs) %>
    action: core.echo message=<% item() %>
    next:
      - when: <% succeeded() %>
        publish: out=<% result() %>
output:
  - out: <% ctx().out %>
"""


@pytest.mark.parametrize(("reset_items", "rerun_items"), [(False, [1]), (True, [0, 1, 2])])
def test_rerun_with_items_reruns_failed_items(
    make_driver: Any, reset_items: bool, rerun_items: list[int]
) -> None:
    driver = make_driver(ITEMS)
    driver.dispatch()
    driver.finish("each", result="A", item_id=0)
    driver.finish("each", "failed", result="boom", item_id=1)
    driver.finish("each", result="C", item_id=2)
    conductor = driver.conductor
    assert conductor.status == "failed"
    conductor.request_workflow_rerun([RerunRequest("each", 0, reset_items=reset_items)])
    (request,) = driver.dispatch()
    assert [a.item_id for a in request.actions] == rerun_items
    for item_id in rerun_items:
        driver.finish("each", result=f"new{item_id}", item_id=item_id)
    conductor.render_workflow_output()
    expected = ["A", "new1", "C"] if not reset_items else ["new0", "new1", "new2"]
    assert conductor.status == "succeeded" and conductor.output == {"out": expected}


def test_rerun_by_task_names_builds_a_new_conductor(make_driver: Any) -> None:
    driver = make_driver(ITEMS)
    driver.dispatch()
    for item_id in range(3):
        driver.finish("each", "failed" if item_id == 2 else "succeeded", item_id, item_id=item_id)
    stored = json.loads(json.dumps(driver.conductor.serialize()))
    rerun = WorkflowConductor.rerun(ITEMS, stored, tasks=["each"], reset=["each"])
    assert rerun.status == "resuming" and stored["status"] == "failed"
    (request,) = rerun.get_next_tasks()
    assert [a.item_id for a in request.actions] == [0, 1, 2]
    with pytest.raises(WorkflowError, match="ghost"):
        WorkflowConductor.rerun(ITEMS, stored, tasks=["ghost"])
