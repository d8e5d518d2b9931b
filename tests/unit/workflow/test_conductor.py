"""The conductor through its public API, as the engine service drives it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from squall.errors import WorkflowError
from squall.workflow import MISSING, WorkflowConductor, compile_workflow

SEQUENTIAL = """
version: 1.0
input:
  - who: world
tasks:
  greet:
    action: core.echo message="hello <% ctx().who %>"
    delay: 3
    next:
      - when: <% succeeded() %>
        publish: greeting=<% result().stdout %>
        do: shout
  shout:
    action: core.echo
    input:
      message: "{{ ctx('greeting') | upper }}"
output:
  - greeting: <% ctx().greeting %>
  - status: <% task_status(shout) %>
"""


def test_sequential_run_renders_requests_and_output(make_driver: Any) -> None:
    driver = make_driver(SEQUENTIAL, {"who": "squall", "ignored": 1})
    (request,) = driver.dispatch()
    assert (request.task_id, request.route, request.action) == ("greet", 0, "core.echo")
    assert request.input == {"message": "hello squall"}
    assert request.delay == 3 and request.items_count is None
    assert driver.conductor.status == "running"
    driver.finish("greet", result={"stdout": "hello squall"})
    (request,) = driver.dispatch()
    assert request.input == {"message": "HELLO SQUALL"}
    driver.finish("shout")
    conductor = driver.conductor
    assert conductor.status == "succeeded"
    conductor.render_workflow_output()
    assert conductor.output == {"greeting": "hello squall", "status": "succeeded"}
    assert [(e.task_id, e.status) for e in conductor.get_terminal_tasks()] == [
        ("shout", "succeeded")
    ]
    assert conductor.errors == []


def test_publish_error_fails_with_expression_task_and_transition(make_driver: Any) -> None:
    driver = make_driver(
        """
version: 1.0
tasks:
  task1:
    action: core.noop
    next:
      - when: <% succeeded() %>
        publish:
          - value: <% result().missing %>
        do: task2
  task2:
    action: core.noop
"""
    )
    driver.dispatch()
    driver.finish("task1", result={"other": 1})
    conductor = driver.conductor
    assert conductor.status == "failed"
    assert conductor.errors == [
        {
            "type": "error",
            "message": "YaqlEvaluationException: Unable to resolve key 'missing' in expression "
            "'<% result().missing %>' from context.",
            "task_id": "task1",
            "route": 0,
            "task_transition_id": "task2__t0",
        }
    ]
    assert driver.dispatch() == []


def test_task_rendering_error_fails_the_workflow(make_driver: Any) -> None:
    driver = make_driver(
        """
version: 1.0
tasks:
  task1:
    action: core.echo
    input:
      message: '{{ ctx("nope") }}'
""",
        check=False,
    )
    assert driver.dispatch() == []
    conductor = driver.conductor
    assert conductor.status == "failed"
    (error,) = conductor.errors
    assert error["task_id"] == "task1" and error["route"] == 0
    assert error["message"].startswith("JinjaEvaluationException: Unable to evaluate expression")
    assert 'The variable "nope" is undefined.' in error["message"]


def test_input_rendering_error_fails_before_anything_runs() -> None:
    definition = (
        "version: 1.0\nvars:\n  - x: <% ctx().nope %>\ntasks:\n  t:\n    action: core.noop\n"
    )
    conductor = WorkflowConductor(compile_workflow(definition, check=False))
    assert conductor.status == "failed"
    assert conductor.errors[0]["message"].startswith("YaqlEvaluationException: Unable to resolve")
    assert conductor.get_next_tasks() == []


WITH_ITEMS = """
version: 1.0
input:
  - xs
  - limit: 2
tasks:
  each:
    with:
      items: x in <% ctx(xs) %>
      concurrency: <% ctx(limit) %>
    action: core.echo message=<% item(x) %>
    next:
      - publish: out=<% result() %>
output:
  - out: <% ctx(out) %>
"""


def test_with_items_concurrency_item_events_and_ordered_results(make_driver: Any) -> None:
    driver = make_driver(WITH_ITEMS, {"xs": ["a", "b", "c", "d"]})
    (request,) = driver.dispatch()
    assert request.items_count == 4 and request.concurrency == 2
    assert [(a.item_id, a.input) for a in request.actions] == [
        (0, {"message": "a"}),
        (1, {"message": "b"}),
    ]
    assert driver.dispatch() == []  # both slots busy
    driver.finish("each", result="B", item_id=1)
    (request,) = driver.dispatch()
    assert [a.item_id for a in request.actions] == [2]
    for item_id, value in ((2, "C"), (0, "A")):
        driver.finish("each", result=value, item_id=item_id)
    (request,) = driver.dispatch()
    assert [a.item_id for a in request.actions] == [3]
    driver.finish("each", result="D", item_id=3)
    conductor = driver.conductor
    assert conductor.status == "succeeded"
    conductor.render_workflow_output()
    assert conductor.output == {"out": ["A", "B", "C", "D"]}


def test_failed_item_waits_for_active_items_then_fails(make_driver: Any) -> None:
    driver = make_driver(WITH_ITEMS, {"xs": ["a", "b", "c"]})
    driver.dispatch()
    driver.finish("each", "failed", result="boom", item_id=0)
    conductor = driver.conductor
    entry = conductor.get_task_entry("each")
    assert entry is not None and entry.status == "running" and conductor.status == "running"
    (request,) = driver.dispatch()  # the task is still running: the last slot is used
    assert [a.item_id for a in request.actions] == [2]
    driver.finish("each", result="ok", item_id=1)
    assert entry.status == "running"
    driver.finish("each", result="ok", item_id=2)
    assert entry.status == "failed" and conductor.status == "failed"
    assert conductor.errors == [
        {
            "type": "error",
            "message": "Execution failed. See result for details.",
            "task_id": "each",
            "result": "boom",
        }
    ]


def test_with_items_over_empty_list_completes_with_empty_result(make_driver: Any) -> None:
    driver = make_driver(WITH_ITEMS, {"xs": []})
    (request,) = driver.conductor.get_next_tasks()
    assert request.items_count == 0 and request.actions == ()
    driver.conductor.update_task_state("each", 0, "running")
    driver.finish("each", result=[])
    driver.conductor.render_workflow_output()
    assert driver.conductor.output == {"out": []}


PARALLEL = """
version: 1.0
tasks:
  a:
    action: core.noop
    next: [{when: <% succeeded() %>, do: c}]
  b:
    action: core.noop
    next: [{when: <% succeeded() %>, do: c}]
  c:
    join: all
    action: core.noop
"""


def test_pause_waits_for_active_tasks_then_resume(make_driver: Any) -> None:
    driver = make_driver(PARALLEL)
    driver.dispatch()
    conductor = driver.conductor
    conductor.request_workflow_status("pausing")
    assert conductor.status == "pausing"
    driver.finish("a")
    assert conductor.status == "pausing"
    driver.finish("b")
    assert conductor.status == "paused"
    assert conductor.get_next_tasks() == []
    conductor.request_workflow_status("resuming")
    assert conductor.status == "resuming"
    (request,) = driver.dispatch()
    assert request.task_id == "c" and conductor.status == "running"
    driver.finish("c")
    assert conductor.status == "succeeded"


def test_pause_when_nothing_is_active_is_immediate(make_driver: Any) -> None:
    driver = make_driver(PARALLEL)
    conductor = driver.conductor
    conductor.request_workflow_status("paused")
    assert conductor.status == "paused"
    conductor.request_workflow_status("running")
    assert conductor.status == "running" and len(driver.dispatch()) == 2


def test_cancel_with_active_tasks(make_driver: Any) -> None:
    driver = make_driver(PARALLEL)
    driver.dispatch()
    conductor = driver.conductor
    conductor.request_workflow_status("canceling")
    assert conductor.status == "canceling"
    driver.finish("a")
    assert conductor.status == "canceling" and conductor.get_next_tasks() == []
    driver.finish("b", "canceled")
    assert conductor.status == "canceled"
    with pytest.raises(WorkflowError, match="Unable to process event"):
        conductor.request_workflow_status("running")


def test_task_paused_and_pending(make_driver: Any) -> None:
    driver = make_driver(SEQUENTIAL)
    driver.dispatch()
    conductor = driver.conductor
    driver.finish("greet", "pending")
    assert conductor.status == "paused"
    conductor.request_workflow_status("resuming")  # e.g. the inquiry was answered
    assert conductor.status == "resuming"
    driver.finish("greet", "succeeded", {"stdout": "x"})
    assert conductor.status == "running"
    assert [r.task_id for r in driver.dispatch()] == ["shout"]


def test_with_items_task_pauses_with_the_workflow(make_driver: Any) -> None:
    driver = make_driver(WITH_ITEMS, {"xs": ["a", "b", "c"]})
    driver.dispatch()
    conductor = driver.conductor
    conductor.request_workflow_status("pausing")
    entry = conductor.get_task_entry("each")
    assert entry is not None and entry.status == "pausing"
    driver.finish("each", result="A", item_id=0)
    driver.finish("each", result="B", item_id=1)
    assert entry.status == "paused" and conductor.status == "paused"
    conductor.request_workflow_status("resuming")
    (request,) = driver.dispatch()
    assert [a.item_id for a in request.actions] == [2]
    driver.finish("each", result="C", item_id=2)
    assert conductor.status == "succeeded"


RETRY = """
version: 1.0
tasks:
  flaky:
    action: core.noop
    retry:
      when: <% failed() %>
      count: <% ctx().n %>
      delay: 7
vars:
  - n: 2
"""


def test_retry_policy_redispatches_with_delay(make_driver: Any) -> None:
    driver = make_driver(RETRY)
    (first,) = driver.dispatch()
    assert not first.retry and first.delay is None
    driver.finish("flaky", "failed")
    (retry,) = driver.dispatch()
    assert retry.retry and retry.delay == 7
    driver.finish("flaky", "failed")
    driver.dispatch()
    driver.finish("flaky", "failed")
    conductor = driver.conductor
    assert conductor.status == "failed" and len(conductor.sequence) == 1
    assert conductor.sequence[0].retry == {
        "when": "<% failed() %>",
        "count": 2,
        "delay": 7,
        "tally": 2,
    }


def test_kv_lookup_and_misses(make_driver: Any) -> None:
    store = {"host": "db1"}
    driver = make_driver(
        """
version: 1.0
tasks:
  t:
    action: core.echo
    input:
      host: <% st2kv('host') %>
      port: <% st2kv('port', default => 5432) %>
      who: <% ctx().st2.user %>
""",
        context={"st2": {"user": "admin"}},
        kv_lookup=lambda key, decrypt: store.get(key, MISSING),
    )
    (request,) = driver.dispatch()
    assert request.input == {"host": "db1", "port": 5432, "who": "admin"}
    assert driver.conductor.kv_misses == {"port"}


def test_task_function_reads_other_tasks(make_driver: Any) -> None:
    driver = make_driver(
        """
version: 1.0
tasks:
  a:
    action: core.noop
    next: [{do: b}]
  b:
    action: core.echo
    input:
      previous: <% task(a).result %>
      status: <% task(a).status %>
"""
    )
    driver.dispatch()
    driver.finish("a", result={"v": 1})
    (request,) = driver.dispatch()
    assert request.input == {"previous": {"v": 1}, "status": "succeeded"}


def test_invalid_events_are_refused(make_driver: Any) -> None:
    driver = make_driver(SEQUENTIAL)
    with pytest.raises(WorkflowError, match="does not exist"):
        driver.conductor.update_task_state("nope", 0, "running")
    with pytest.raises(WorkflowError, match="not staged"):
        driver.conductor.update_task_state("shout", 0, "running")
    with pytest.raises(WorkflowError, match="is not valid"):
        driver.conductor.update_task_state("greet", 0, "exploded")


def _run_split_join(conductor_factory: Any) -> list[dict[str, Any]]:
    """Run a branching/joining workflow, rebuilding the conductor between events."""
    snapshots = []
    conductor = conductor_factory(None)
    conductor.request_workflow_status("running")
    pending: list[tuple[str, int]] = []
    while True:
        for request in conductor.get_next_tasks():
            conductor.update_task_state(request.task_id, request.route, "running")
            pending.append((request.task_id, request.route))
        conductor = conductor_factory(conductor)
        if not pending:
            break
        task_id, route = pending.pop(0)
        conductor.update_task_state(task_id, route, "succeeded", {"task": task_id})
        conductor = conductor_factory(conductor)
        snapshots.append(conductor.serialize())
    conductor.render_workflow_output()
    snapshots.append(conductor.serialize())
    return snapshots


SPLIT_JOIN = """
version: 1.0
vars:
  - seen: []
tasks:
  t1:
    action: core.noop
    next: [{when: <% succeeded() %>, publish: first=<% result() %>, do: "t2, t3"}]
  t2:
    action: core.noop
    next: [{when: <% succeeded() %>, publish: left=<% result() %>, do: t4}]
  t3:
    action: core.noop
    next: [{when: <% succeeded() %>, publish: right=<% result() %>, do: t4}]
  t4:
    action: core.noop
    next: [{do: "t5, t6"}]
  t5:
    action: core.noop
    next: [{do: t7}]
  t6:
    action: core.noop
    next: [{do: t7}]
  t7:
    join: all
    action: core.noop
output:
  - left: <% ctx().left %>
  - right: <% ctx().right %>
"""


def test_state_round_trip_between_every_event_changes_nothing() -> None:
    direct = _run_split_join(lambda c: c or WorkflowConductor(SPLIT_JOIN))
    via_json = _run_split_join(
        lambda c: (
            WorkflowConductor(SPLIT_JOIN)
            if c is None
            else WorkflowConductor.from_state(SPLIT_JOIN, json.loads(json.dumps(c.serialize())))
        )
    )
    assert via_json == direct
    final = direct[-1]
    assert final["status"] == "succeeded"
    assert final["output"] == {"left": {"task": "t2"}, "right": {"task": "t3"}}
    assert final["routes"] == [[], ["t2__t0"], ["t3__t0"]]


def test_incremental_changes_rebuild_the_full_state() -> None:
    from squall.workflow import apply_changes

    conductor = WorkflowConductor(WITH_ITEMS, {"xs": ["a", "b", "c"]})
    conductor.request_workflow_status("running")
    document = apply_changes({}, conductor.pop_changes())
    events: list[tuple[Any, ...]] = [("each", "running", None, 0), ("each", "running", None, 1)]
    conductor.get_next_tasks()
    for task_id, status, result, item_id in [
        *events,
        ("each", "succeeded", "A", 0),
        ("each", "succeeded", "B", 1),
    ]:
        conductor.update_task_state(task_id, 0, status, result, item_id=item_id)
        changes = conductor.pop_changes()
        json.dumps(changes)
        document = apply_changes(document, changes)
        assert document == json.loads(json.dumps(conductor.serialize()))
    conductor.get_next_tasks()
    conductor.update_task_state("each", 0, "running", item_id=2)
    conductor.update_task_state("each", 0, "succeeded", "C", item_id=2)
    document = apply_changes(document, conductor.pop_changes())
    assert document == json.loads(json.dumps(conductor.serialize()))
    assert document["status"] == "succeeded"
