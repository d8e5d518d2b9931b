"""Inquiries end to end: a pending inquiry pauses its workflow branch; answers are validated
and authorized; TTL expiry times out; the inquiry trigger fires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from squall.store.schema import inquiries
from squall.store.util import utcnow

pytestmark = pytest.mark.timeout(120)


async def _pending(wf: Any, root: str) -> dict[str, Any]:
    await wf.wait(root, statuses={"paused"})
    ask = await wf.child(root, "approve")
    assert ask["status"] == "pending"
    return dict(ask)


async def test_answer_resumes_the_workflow(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.ask")
    ask = await _pending(wf, root)
    listed = (await api.get("/api/v1/inquiries")).json()
    assert [i["id"] for i in listed] == [ask["id"]]
    inquiry = listed[0]
    assert inquiry["route"] == "ops" and inquiry["ttl"] == 60 and inquiry["users"] == []
    assert inquiry["schema"]["properties"]["approved"]["type"] == "boolean"
    pending = await wf.get(ask["id"])
    assert pending["result"]["route"] == "ops"  # a pending inquiry shows its question
    fired = (
        await api.get(
            "/api/v1/triggerinstances", params={"trigger_type": "core.st2.generic.inquiry"}
        )
    ).json()
    assert [t["payload"] for t in fired] == [{"id": ask["id"], "route": "ops"}]

    resp = await api.put(
        f"/api/v1/inquiries/{ask['id']}", json={"id": ask["id"], "response": {"approved": True}}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": ask["id"], "response": {"approved": True}}
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded", doc.get("result")
    assert doc["result"]["output"]["answer"] == {"approved": True}
    assert doc["result"]["output"]["acted"].startswith("approved=")
    answered = await wf.get(ask["id"])
    assert answered["status"] == "succeeded"
    assert answered["result"]["response"] == {"approved": True}
    assert (await api.get("/api/v1/inquiries")).json() == []
    again = await api.put(f"/api/v1/inquiries/{ask['id']}", json={"response": {"approved": 1}})
    assert again.status_code == 409


async def test_invalid_answers_are_rejected_naming_the_field(wf: Any, api: Any) -> None:
    root = await wf.start("wftest.ask")
    ask = await _pending(wf, root)
    url = f"/api/v1/inquiries/{ask['id']}"
    wrong_type = await api.put(url, json={"response": {"approved": "yes"}})
    assert wrong_type.status_code == 400
    assert "response.approved" in wrong_type.json()["faultstring"]
    missing = await api.put(url, json={"response": {"reason": "because"}})
    assert missing.status_code == 400
    assert "'approved' is a required property" in missing.json()["faultstring"]
    assert (await wf.get(ask["id"]))["status"] == "pending"
    await api.delete(f"/api/v1/executions/{root}")
    assert (await wf.wait(root))["status"] == "canceled"
    assert (await wf.get(ask["id"]))["status"] == "canceled"


async def test_only_listed_users_may_answer(wf: Any, api: Any, runtime: Any) -> None:
    from tests.integration.workflows.conftest import client_for

    await runtime.auth.add_user("alice", "alice-password-1", roles=[])
    root = await wf.start("wftest.ask", users=["alice"])
    ask = await _pending(wf, root)
    denied = await api.put(f"/api/v1/inquiries/{ask['id']}", json={"response": {"approved": False}})
    assert denied.status_code == 403
    assert "admin" in denied.json()["faultstring"]
    alice = await client_for(runtime)
    token = await alice.post("/auth/v1/tokens", auth=("alice", "alice-password-1"))
    alice.headers["X-Auth-Token"] = token.json()["token"]
    try:
        ok = await alice.put(
            f"/api/v1/inquiries/{ask['id']}", json={"response": {"approved": False}}
        )
        assert ok.status_code == 200, ok.text
    finally:
        await alice.aclose()
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded"
    assert doc["result"]["output"]["answer"] == {"approved": False}


async def test_unanswered_inquiry_times_out(wf: Any, runtime: Any) -> None:
    root = await wf.start("wftest.ask", ttl=1)
    ask = await _pending(wf, root)
    past = utcnow() - timedelta(seconds=1)
    await runtime.db.write(
        lambda conn: conn.execute(
            inquiries.update().where(inquiries.c.id == ask["id"]).values(expires_at=past)
        )
    )
    assert await runtime.workflows.inquiries.expire_due() == 1
    assert (await wf.get(ask["id"]))["status"] == "timeout"
    doc = await wf.wait(root)
    assert doc["status"] == "succeeded"  # remediated by the failed() transition to noop
    assert doc["result"]["output"]["answer"] == "timeout"


async def test_core_ask_outside_a_workflow(wf: Any, api: Any) -> None:
    resp = await api.post(
        "/api/v1/executions",
        json={
            "action": "core.ask",
            "parameters": {"schema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        },
    )
    assert resp.status_code == 201, resp.text
    ask = resp.json()["id"]
    await wf.wait(ask, statuses={"pending"})
    got = (await api.get(f"/api/v1/inquiries/{ask}")).json()
    assert got["id"] == ask and got["ttl"] == 1440
    answer = await api.put(f"/api/v1/inquiries/{ask}", json={"response": {"n": 3}})
    assert answer.status_code == 200, answer.text
    doc = await wf.wait(ask)
    assert doc["status"] == "succeeded" and doc["result"]["response"] == {"n": 3}
    assert (await api.get("/api/v1/inquiries/nope")).status_code == 404
