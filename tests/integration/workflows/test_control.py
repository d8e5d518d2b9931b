"""Pause, resume and cancel, cascading to subworkflows and delayed tasks; re-run from tasks."""

from __future__ import annotations

from typing import Any

import pytest

from squall.testing import eventually

pytestmark = pytest.mark.timeout(120)


async def _status(wf: Any, execution_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
    return dict(await wf.wait(execution_id, statuses={status}, timeout=timeout))


async def test_pause_cascades_to_subworkflows_and_resume_finishes(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.sleepy", seconds=1)
    inner = await wf.child(root, "inner")
    await _status(wf, inner["id"], "running")
    one = await wf.child(inner["id"], "one")
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "pausing"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "pausing"
    await _status(wf, root, "paused")
    assert (await wf.get(inner["id"]))["status"] == "paused"
    assert (await wf.get(one["id"]))["status"] == "succeeded"  # running tasks finish
    # Nothing new starts while paused.
    names = [c["context"]["orquesta"]["task_name"] for c in await wf.children(inner["id"])]
    assert names == ["one"]
    assert [e["status"] for e in (await wf.get(root))["log"]][-2:] == ["pausing", "paused"]

    again = await api.put(f"/api/v1/executions/{root}", json={"status": "pausing"})
    assert again.status_code == 409, again.text

    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "resuming"})
    assert resp.status_code == 200, resp.text
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded", doc.get("result")
    assert (await wf.get(inner["id"]))["status"] == "succeeded"
    statuses = [e["status"] for e in doc["log"]]
    assert statuses.index("paused") < statuses.index("resuming") < len(statuses) - 1


async def test_cancel_cascades_to_subworkflows_and_running_actions(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.sleepy", seconds=30)
    nap = await wf.child(root, "nap")
    await _status(wf, nap["id"], "running")
    resp = await api.delete(f"/api/v1/executions/{root}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "canceling"
    doc = await wf.wait(root, timeout=20)
    assert doc["status"] == "canceled"
    assert (await wf.get(nap["id"]))["status"] == "canceled"
    assert [c["context"]["orquesta"]["task_name"] for c in await wf.children(root)] == ["nap"]


async def test_cancel_reaches_a_nested_subworkflow(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.sleepy", seconds=1)
    inner = await wf.child(root, "inner")
    one = await wf.child(inner["id"], "one")
    await _status(wf, one["id"], "running")
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "canceling"})
    assert resp.status_code == 200, resp.text
    doc = await wf.wait(root)
    assert doc["status"] == "canceled"
    assert (await wf.get(inner["id"]))["status"] == "canceled"
    assert (await wf.get(one["id"]))["status"] in ("canceled", "succeeded")
    kids = await wf.children(inner["id"])
    assert [c["context"]["orquesta"]["task_name"] for c in kids] == ["one"]


async def test_pause_holds_delayed_tasks_and_cancel_drops_them(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.delayed")
    wait_task = await wf.child(root, "wait")
    assert wait_task["status"] == "delayed"
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "pausing"})
    assert resp.status_code == 200, resp.text
    await _status(wf, root, "paused")
    assert (await wf.get(wait_task["id"]))["status"] == "paused"
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "resuming"})
    assert resp.status_code == 200, resp.text
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded", doc.get("result")
    assert (await wf.get(wait_task["id"]))["status"] == "succeeded"

    second = await wf.start("wftest.delayed")
    delayed = await wf.child(second, "wait")
    await api.delete(f"/api/v1/executions/{second}")
    doc = await wf.wait(second)
    assert doc["status"] == "canceled"
    assert (await wf.get(delayed["id"]))["status"] == "canceled"


async def test_pause_is_refused_for_actions_and_finished_workflows(wf: Any, api: Any) -> None:
    noop = await wf.run("core.noop")
    resp = await api.put(f"/api/v1/executions/{noop['id']}", json={"status": "pausing"})
    assert resp.status_code in (400, 409)
    done = await wf.run("wftest.parallel_join")
    resp = await api.put(f"/api/v1/executions/{done['id']}", json={"status": "resuming"})
    assert resp.status_code == 409, resp.text


async def test_rerun_from_the_failed_task(wf: Any, api: Any) -> None:
    first = await wf.run("wftest.rerun")
    assert first["status"] == "failed"
    assert [e["task_id"] for e in first["result"]["errors"]] == ["check"]
    resp = await api.put("/api/v1/keys/wf_flag", json={"name": "wf_flag", "value": "ok"})
    assert resp.status_code == 200, resp.text
    resp = await api.post(f"/api/v1/executions/{first['id']}/re_run", json={"tasks": ["check"]})
    assert resp.status_code == 201, resp.text
    rerun = resp.json()
    assert rerun["context"]["re-run"] == {"ref": first["id"], "tasks": ["check"], "reset": []}
    doc = await wf.wait(rerun["id"])
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"] == {"checked": "passed"}
    names = [c["context"]["orquesta"]["task_name"] for c in await wf.children(rerun["id"])]
    assert names == ["check", "last"]  # "first" kept its result from the original run

    bad = await api.post(f"/api/v1/executions/{first['id']}/re_run", json={"tasks": ["nope"]})
    assert bad.status_code == 400 and "nope" in bad.json()["faultstring"]


async def test_rerun_resets_with_items(wf: Any, api: Any) -> None:
    first = await wf.run("wftest.with_items", xs=["a", "b"])
    resp = await api.post(
        f"/api/v1/executions/{first['id']}/re_run", json={"tasks": ["each"], "reset": ["each"]}
    )
    assert resp.status_code == 201, resp.text
    doc = await wf.wait(resp.json()["id"])
    assert doc["status"] == "succeeded", doc.get("result")
    kids = await wf.children(doc["id"])
    assert sorted(c["context"]["orquesta"]["item_id"] for c in kids) == [0, 1]


async def test_cancel_of_a_running_child_cancels_the_workflow(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.sleepy", seconds=30)
    nap = await wf.child(root, "nap")
    await _status(wf, nap["id"], "running")
    await api.delete(f"/api/v1/executions/{nap['id']}")
    doc = await wf.wait(root)
    assert doc["status"] == "canceled"

    async def gone() -> bool:
        return (await wf.get(nap["id"]))["status"] == "canceled"

    await eventually(gone)
