"""Restart mid-workflow, inspection (API, registration, run, CLI), action-chain control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from squall.cli.main import main as cli
from tests.integration.workflows.conftest import Client, client_for

pytestmark = pytest.mark.timeout(120)

CORPUS = Path("/work/shared/conformance/orquesta")

BAD = """\
version: 1.0
tasks:
  t1:
    action: core.noop
    input:
      x: <% ctx().undefined_var %>
    next:
      - when: <% succeeded( %>
        do: t_missing
  t2:
    action: nope.nothing
"""


async def test_restart_mid_workflow_resumes_from_the_database(open_runtime: Any) -> None:
    rt = await open_runtime()
    api = await client_for(rt)
    try:
        wf = Client(api)
        root = await wf.start("wftest.steps")
        await wf.child(root, "s2")
    finally:
        await api.aclose()
        await rt.close()  # the engine stops with s2 (or s3) in flight or queued

    rt = await open_runtime(register=False)
    api = await client_for(rt)
    try:
        wf = Client(api)
        doc = await wf.wait(root)
        assert doc["status"] == "succeeded", doc.get("result")
        assert doc["result"]["output"] == {"trail": "1234"}
        kids = await wf.children(root)
        assert [c["context"]["orquesta"]["task_name"] for c in kids] == ["s1", "s2", "s3", "s4"]
        assert all(c["status"] == "succeeded" for c in kids)
        # The workflow itself was never abandoned by the restart.
        assert "abandoned" not in [e["status"] for e in doc["log"]]
    finally:
        await api.aclose()
        await rt.close()


async def test_inspect_api_reports_every_category(api: Any) -> None:
    ok = (CORPUS / "workflows" / "sequential.yaml").read_text()
    resp = await api.post(
        "/api/v1/workflows/inspect", content=ok, headers={"content-type": "text/plain"}
    )
    assert resp.status_code == 200 and resp.json() == [], resp.text
    resp = await api.post(
        "/api/v1/workflows/inspect", content=BAD, headers={"content-type": "text/plain"}
    )
    errors = resp.json()
    assert {e["type"] for e in errors} == {"semantics", "expression", "context", "content"}
    by_type = {e["type"]: e for e in errors}
    assert by_type["content"]["spec_path"] == "tasks.t2.action"
    assert "nope.nothing" in by_type["content"]["message"]
    assert by_type["expression"]["spec_path"] == "tasks.t1.next[0].when"
    assert by_type["context"]["expression"] == "<% ctx().undefined_var %>"
    chain = await api.post(
        "/api/v1/workflows/inspect?kind=action-chain",
        json={"chain": [{"name": "a", "ref": "core.nothing"}]},
    )
    assert [e["type"] for e in chain.json()] == ["content"]


async def test_invalid_workflows_are_rejected_at_registration(
    open_runtime: Any, tmp_path: Path
) -> None:
    pack = tmp_path / "extra" / "wfbad"
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "ref: wfbad\nname: wfbad\ndescription: bad\nversion: 0.1.0\nauthor: a\nemail: a@b.c\n"
    )
    (pack / "actions" / "bad.yaml").write_text(
        "name: bad\nrunner_type: orquesta\nentry_point: workflows/bad.yaml\n"
    )
    (pack / "actions" / "workflows" / "bad.yaml").write_text(BAD)
    rt = await open_runtime(register=False, extra_packs=(str(tmp_path / "extra"),))
    try:
        (reg,) = await rt.packs.register_all(["wfbad"])
        assert not reg.ok
        rendered = [str(i) for i in reg.issues]
        assert any(r.startswith("actions/workflows/bad.yaml:8:") for r in rendered), rendered
        assert any("[context]" in r and "bad.yaml:5: tasks.t1.input" in r for r in rendered)
        assert "bad" not in reg.counts or reg.counts.get("actions") == 0
    finally:
        await rt.close()


async def test_invalid_workflow_fails_at_run_with_the_inspection_errors(wf: Any) -> None:
    doc = await wf.run("wftest.missing_action")
    assert doc["status"] == "failed"
    (error,) = doc["result"]["errors"]
    assert error["type"] == "content" and error["spec_path"] == "tasks.second.action"
    assert doc["result"]["output"] is None
    assert await wf.children(doc["id"]) == []


async def test_action_chain_pause_resume_and_cancel(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.chain_sleep")
    nap = await wf.child(root, "nap")
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "pausing"})
    assert resp.status_code == 200 and resp.json()["status"] == "pausing", resp.text
    await wf.wait(root, statuses={"paused"})
    assert (await wf.get(nap["id"]))["status"] == "succeeded"
    assert [c["context"]["chain"]["name"] for c in await wf.children(root)] == ["nap"]
    resp = await api.put(f"/api/v1/executions/{root}", json={"status": "resuming"})
    assert resp.status_code == 200, resp.text
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded"
    assert [t["name"] for t in doc["result"]["tasks"]] == ["nap", "after"]

    second = await wf.start("wftest.chain_sleep")
    nap = await wf.child(second, "nap")
    await wf.wait(nap["id"], statuses={"running"})
    await api.delete(f"/api/v1/executions/{second}")
    doc = await wf.wait(second)
    assert doc["status"] == "canceled"
    assert (await wf.get(nap["id"]))["status"] == "canceled"


def test_cli_inspect_and_rehearse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert cli(["workflow", "inspect", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:8: tasks.t1.next[0].when: [expression]" in out
    good = CORPUS / "workflows" / "sequential.yaml"
    assert cli(["workflow", "inspect", str(good)]) == 0
    spec = CORPUS / "specs" / "sequential__success.yaml"
    assert cli(["workflow", "rehearse", "-p", str(CORPUS), str(spec)]) == 0
    assert "PASS" in capsys.readouterr().out


async def test_an_engine_error_fails_the_workflow_instead_of_sticking(
    wf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from squall.engine.workflows_orquesta import OrquestaRun

    original = OrquestaRun.apply

    def broken(self: OrquestaRun, tx: Any, event: Any) -> None:
        if event.data.get("task_id") == "shout":
            raise RuntimeError("boom")
        original(self, tx, event)

    monkeypatch.setattr(OrquestaRun, "apply", broken)
    doc = await wf.run("wftest.sequential")
    assert doc["status"] == "failed"
    messages = [e["message"] for e in doc["result"]["errors"]]
    assert any("Internal error" in m and "boom" in m for m in messages), messages
    names = [c["context"]["orquesta"]["task_name"] for c in await wf.children(doc["id"])]
    assert names == ["greet", "shout"]  # nothing started after the failure


async def test_two_engines_share_one_database(open_runtime: Any, db_url: str) -> None:
    """On PostgreSQL several processes run the workflow role: completions of one workflow
    processed by either engine never race (row lock + version)."""
    if db_url.startswith("sqlite"):
        pytest.skip("one process per SQLite home")
    first = await open_runtime()
    second = await open_runtime(register=False)
    api = await client_for(first)
    try:
        wf = Client(api)
        doc = await wf.wait(await wf.start("wfgen.parallel200"), timeout=90)
        assert doc["status"] == "succeeded", doc.get("result")
        assert doc["result"]["output"] == {"total": sum(range(200))}
        kids = await wf.children(doc["id"])
        assert len(kids) == 202 and all(c["status"] == "succeeded" for c in kids)
    finally:
        await api.aclose()
        await second.close()
        await first.close()
