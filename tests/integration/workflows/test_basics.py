"""Workflows end to end: sequential, parallel + join, with-items, retry, nesting, fail-fast,
output and errors, st2kv, expression errors, action-chain — on both backends."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


async def test_sequential_publishes_and_renders_output(wf: Any) -> None:
    doc = await wf.run("wftest.sequential", name="squall")
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {
        "greeting": "hello squall",
        "loud": "HELLO SQUALL",
        "user": "admin",
    }
    assert "errors" not in doc["result"]
    kids = await wf.children(doc["id"])
    assert [c["context"]["orquesta"]["task_name"] for c in kids] == ["greet", "shout", "finish"]
    for child in kids:
        assert child["parent"] == doc["id"]
        assert child["context"]["workflow_execution"] == doc["id"]
        assert child["context"]["parent"]["execution_id"] == doc["id"]
        assert child["status"] == "succeeded"


async def test_parallel_branches_join(wf: Any) -> None:
    doc = await wf.run("wftest.parallel_join")
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"joined": "ABC"}
    names = sorted(c["context"]["orquesta"]["task_name"] for c in await wf.children(doc["id"]))
    assert names == ["a", "b", "c", "join", "start"]


async def test_with_items_respects_concurrency_and_keeps_item_order(wf: Any, runtime: Any) -> None:
    xs = [f"x{i}" for i in range(7)]
    doc = await wf.run("wftest.with_items", xs=xs, concurrency=2)
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"lines": [f"item {x}" for x in xs]}
    kids = await wf.children(doc["id"])
    assert sorted(c["context"]["orquesta"]["item_id"] for c in kids) == list(range(7))
    # Never more than two items in flight: each item starts after an earlier one ended.
    spans = sorted((c["start_timestamp"], c["end_timestamp"]) for c in kids)
    for i, (started, _ended) in enumerate(spans):
        running = [s for s in spans[:i] if s[1] > started]
        assert len(running) < 2, spans


async def test_with_items_over_an_empty_list_succeeds(wf: Any) -> None:
    doc = await wf.run("wftest.with_items", xs=[])
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"lines": []}
    assert await wf.children(doc["id"]) == []


async def test_retry_runs_the_task_again_then_fails(wf: Any) -> None:
    doc = await wf.run("wftest.retry")
    assert doc["status"] == "failed"
    kids = await wf.children(doc["id"])
    assert len(kids) == 3 and all(c["status"] == "failed" for c in kids)
    (error,) = doc["result"]["errors"]
    assert error["task_id"] == "flaky" and error["result"]["return_code"] == 3


async def test_subworkflows_nest(wf: Any) -> None:
    doc = await wf.run("wftest.nested")
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"]["inner"]["greeting"] == "hello nested"
    assert doc["result"]["output"]["deep"] == "deep"
    inner = await wf.child(doc["id"], "deeper")
    level2 = await wf.child(inner["id"], "level2")
    leaf = await wf.child(level2["id"], "leaf")
    assert leaf["context"]["parent"]["execution_id"] == level2["id"]
    assert {c["root_id"] if "root_id" in c else doc["id"] for c in (inner, level2, leaf)}


async def test_fail_fast_lets_running_branches_finish(wf: Any) -> None:
    doc = await wf.run("wftest.fail_fast")
    assert doc["status"] == "failed"
    names = {c["context"]["orquesta"]["task_name"]: c for c in await wf.children(doc["id"])}
    assert set(names) == {"start", "bad", "slow"}  # nothing new after the failure
    assert names["slow"]["status"] == "succeeded"
    assert doc["end_timestamp"] >= names["slow"]["end_timestamp"]
    (error,) = doc["result"]["errors"]
    assert error["task_id"] == "bad"
    assert error["message"] == "Execution failed. See result for details."
    assert error["result"]["stderr"] == "broken"
    # The output is rendered once the last branch finished (Orquesta does not publish from
    # transitions it no longer follows after a fail-fast).
    assert set(doc["result"]["output"]) == {"slow"}


async def test_st2kv_reads_the_datastore(wf: Any, api: Any) -> None:
    resp = await api.put("/api/v1/keys/wf_greeting", json={"name": "wf_greeting", "value": "hey"})
    assert resp.status_code == 200, resp.text
    resp = await api.put(
        "/api/v1/keys/wf_private",
        json={"name": "wf_private", "value": "s3cret", "secret": True, "scope": "user"},
    )
    assert resp.status_code == 200, resp.text
    doc = await wf.run("wftest.kv")
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"said": "hey", "fallback": "none", "mine": "s3cret"}


async def test_missing_st2kv_key_fails_with_the_message(wf: Any) -> None:
    doc = await wf.run("wftest.kv")
    assert doc["status"] == "failed"
    messages = [e["message"] for e in doc["result"]["errors"]]
    assert any('The key "system.wf_greeting" does not exist' in m for m in messages), messages


async def test_expression_error_at_run_time_fails_the_task(wf: Any) -> None:
    doc = await wf.run("wftest.expr_error")
    assert doc["status"] == "failed"
    (error,) = doc["result"]["errors"]
    assert error["task_id"] == "broken" and error["route"] == 0
    assert "<% ctx(items) %>" in error["message"] and "not type of list" in error["message"]


async def test_action_chain_runs_publishes_and_branches(wf: Any) -> None:
    doc = await wf.run("wftest.chain", who="you")
    assert doc["status"] == "succeeded", doc.get("result")
    result = doc["result"]
    assert [t["name"] for t in result["tasks"]] == ["c1", "c2", "c3"]
    assert result["published"] == {"first": "hi you"}
    kids = await wf.children(doc["id"])
    assert [c["context"]["chain"]["name"] for c in kids] == ["c1", "c2", "c3"]
    assert all(t["execution_id"] for t in result["tasks"])

    failed = await wf.run("wftest.chain", who="fail")
    assert [t["name"] for t in failed["result"]["tasks"]] == ["c1", "c2", "recover"]
    assert failed["status"] == "succeeded"  # the on-failure node recovered


async def test_parallel_200_branches_complete_concurrently(wf: Any) -> None:
    doc = await wf.wait(await wf.start("wfgen.parallel200"), timeout=90)
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"total": sum(range(200))}
    kids = await wf.children(doc["id"])
    assert len(kids) == 202
    assert sum(1 for c in kids if c["context"]["orquesta"]["task_name"] == "join") == 1


async def test_publish_error_names_the_task_transition_and_expression(wf: Any) -> None:
    doc = await wf.run("wftest.publish_error")
    assert doc["status"] == "failed"
    (error,) = doc["result"]["errors"]
    assert error["task_id"] == "first" and error["task_transition_id"] == "second__t0"
    assert "<% result().missing.deeper %>" in error["message"]
    names = [c["context"]["orquesta"]["task_name"] for c in await wf.children(doc["id"])]
    assert names == ["first"]
