"""Events and rules end to end in one process: webhook → trigger instance → rule → execution."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson

from squall.engine.runtime import Runtime
from squall.testing import eventually


async def enforcements(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/ruleenforcements", params=params)
    assert resp.status_code == 200, resp.text
    return list(resp.json())


async def execution(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in ("succeeded", "failed") else None

    return await eventually(done, message="the execution to finish")


async def test_webhook_rule_runs_action_once(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/webhooks/alerts", json={"severity": "critical", "host": "web1"})
    assert resp.status_code == 202 and resp.json() == {"severity": "critical", "host": "web1"}
    found = await eventually(
        lambda: enforcements(api, rule_ref="testpack.on_alert"), message="an enforcement"
    )
    assert len(found) == 1 and found[0]["status"] == "succeeded"
    doc = await execution(api, found[0]["execution_id"])
    assert doc["result"]["stdout"] == "restarting web1"
    assert doc["context"]["user"] == "stanley"
    assert doc["context"]["rule"]["ref"] == "testpack.on_alert"
    instance_id = found[0]["trigger_instance_id"]
    ti = (await api.get(f"/api/v1/triggerinstances/{instance_id}")).json()
    assert ti["status"] == "processed" and ti["trigger_type"] == "core.st2.webhook"
    # The auth header never reaches the stored payload.
    assert "x-auth-token" not in ti["payload"]["headers"]
    # Backstop rules do not fire when a standard rule matched.
    assert await enforcements(api, rule_ref="testpack.on_alert_backstop") == []


async def test_backstop_fires_when_nothing_else_matches(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/webhooks/alerts", json={"severity": "info"})
    found = await eventually(
        lambda: enforcements(api, rule_ref="testpack.on_alert_backstop"), message="backstop"
    )
    assert found[0]["status"] == "succeeded"
    assert await enforcements(api, rule_ref="testpack.on_alert") == []


async def test_render_error_is_a_failed_enforcement(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/webhooks/badrender", json={"x": 1})
    found = await eventually(
        lambda: enforcements(api, rule_ref="testpack.bad_render"), message="an enforcement"
    )
    assert found[0]["status"] == "failed" and "missing" in found[0]["failure_reason"]
    assert "execution_id" not in found[0]


async def test_throttle_and_dedup_suppress_visibly(api: httpx.AsyncClient) -> None:
    for alert in ("a1", "a2", "a2", "a3", "a4"):
        await api.post("/api/v1/webhooks/storm", json={"host": "db1", "alert_id": alert})
    await api.post("/api/v1/webhooks/storm", json={"host": "db2", "alert_id": "b1"})

    async def all_six() -> list[dict[str, Any]] | None:
        rows = await enforcements(api, rule_ref="testpack.storm")
        return rows if len(rows) == 6 else None

    rows = await eventually(all_six, message="six enforcements")
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["succeeded"] * 3 + ["suppressed"] * 3
    reasons = " ".join(r.get("failure_reason", "") for r in rows)
    assert "duplicate" in reasons and "throttled" in reasons


async def test_unknown_webhook_and_missing_auth(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/webhooks/nope", json={})
    assert resp.status_code == 404
    anon = await api.post("/api/v1/webhooks/alerts", json={}, headers={"X-Auth-Token": ""})
    assert anon.status_code == 401
    bad = await api.post(
        "/api/v1/webhooks/alerts",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and "JSON" in bad.json()["faultstring"]


async def test_github_signature(api: httpx.AsyncClient, runtime: Runtime) -> None:
    await api.put("/api/v1/keys/github_secret", json={"value": "s3cr3t", "secret": True})
    body = orjson.dumps({"action": "opened"})
    sig = "sha256=" + hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    anon = {"X-Auth-Token": "", "Content-Type": "application/json"}
    ok = await api.post(
        "/api/v1/webhooks/github", content=body, headers={**anon, "X-Hub-Signature-256": sig}
    )
    assert ok.status_code == 202, ok.text
    wrong = await api.post(
        "/api/v1/webhooks/github",
        content=body,
        headers={**anon, "X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert wrong.status_code == 401
    count = (
        await api.get("/api/v1/triggerinstances", params={"trigger_type": "core.st2.webhook"})
    ).headers["x-total-count"]

    async def one_instance() -> bool:
        rows = await enforcements(api, rule_ref="testpack.signed")
        return len(rows) == 1

    await eventually(one_instance, message="one enforcement")
    # The bad signature stored nothing: only the good delivery has an instance.
    instances = (await api.get("/api/v1/triggerinstances", params={"limit": 100})).json()
    assert sum(1 for i in instances if i["payload"].get("body") == {"action": "opened"}) == 1
    assert int(count) >= 1


async def test_rule_crud_and_generic_webhook(api: httpx.AsyncClient) -> None:
    rule = {
        "name": "on_kv",
        "pack": "ops",
        "enabled": True,
        "trigger": {"type": "core.st2.key_value_pair.create"},
        "criteria": {"trigger.object.name": {"type": "startswith", "pattern": "deploy."}},
        "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.object.value }}"}},
    }
    created = await api.post("/api/v1/rules", json=rule)
    assert created.status_code == 201, created.text
    assert created.json()["ref"] == "ops.on_kv"
    dup = await api.post("/api/v1/rules", json=rule)
    assert dup.status_code == 409
    await api.put("/api/v1/keys/deploy.version", json={"value": "1.2.3"})
    found = await eventually(lambda: enforcements(api, rule_ref="ops.on_kv"), message="kv rule")
    assert (await execution(api, found[0]["execution_id"]))["result"]["stdout"] == "1.2.3"

    disabled = await api.put("/api/v1/rules/ops.on_kv", json={"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    bad = await api.post(
        "/api/v1/rules",
        json={**rule, "name": "bad", "criteria": {"trigger.x": {"type": "frobnicate"}}},
    )
    assert bad.status_code == 400 and "frobnicate" in bad.json()["faultstring"]
    unknown_action = await api.post(
        "/api/v1/rules", json={**rule, "name": "bad2", "action": {"ref": "nope.nothing"}}
    )
    assert unknown_action.status_code == 400 and "nope.nothing" in unknown_action.text
    assert (await api.delete("/api/v1/rules/ops.on_kv")).status_code == 204
    assert (await api.get("/api/v1/rules/ops.on_kv")).status_code == 404


async def test_rule_test_and_backtest(api: httpx.AsyncClient) -> None:
    for sev in ("critical", "info", "critical"):
        await api.post("/api/v1/webhooks/alerts", json={"severity": sev, "host": "h"})
    rule = {
        "name": "probe",
        "pack": "ops",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "alerts"}},
        "criteria": {"trigger.body.severity": {"type": "eq", "pattern": "critical"}},
        "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.host }}"}},
    }
    test = await api.post(
        "/api/v1/rules/test",
        json={"rule": rule, "payload": {"body": {"severity": "critical", "host": "x"}}},
    )
    assert test.json()["matched"] is True
    assert test.json()["action"]["parameters"] == {"cmd": "echo x"}
    back = (await api.post("/api/v1/rules/backtest", json={"rule": rule, "since": "1h"})).json()
    assert back["scanned"] == 3 and back["matched"] == 2
    assert back["matches"][0]["action"]["parameters"]["cmd"] == "echo h"
    # No side effects: the probe rule was never stored or enforced.
    assert await enforcements(api, rule_ref="ops.probe") == []


async def test_concurrency_policy_delays_per_attribute(api: httpx.AsyncClient) -> None:
    ids = []
    for tag in ("a", "a", "b"):
        resp = await api.post(
            "/api/v1/executions",
            json={"action": "testpack.sleeper", "parameters": {"seconds": 1, "tag": tag}},
        )
        ids.append(resp.json()["id"])
    docs = [await execution(api, i) for i in ids]
    assert all(d["status"] == "succeeded" for d in docs)

    def started(doc: dict[str, Any]) -> str:
        return next(e["timestamp"] for e in doc["log"] if e["status"] == "running")

    def ended(doc: dict[str, Any]) -> str:
        return next(e["timestamp"] for e in doc["log"] if e["status"] == "succeeded")

    # The second "a" waited for the first; "b" ran beside the first "a".
    assert "delayed" in [e["status"] for e in docs[1]["log"]]
    assert started(docs[1]) >= ended(docs[0])
    assert started(docs[2]) < ended(docs[0])


async def test_retry_policy_runs_failed_execution_again(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/executions", json={"action": "testpack.always_fails"})
    first = await execution(api, resp.json()["id"])
    assert first["status"] == "failed"

    async def three() -> list[dict[str, Any]] | None:
        docs = (
            await api.get("/api/v1/executions", params={"action": "testpack.always_fails"})
        ).json()
        done = [d for d in docs if d["status"] == "failed"]
        return docs if len(done) == 3 and len(docs) == 3 else None

    docs = await eventually(three, message="two retries")
    counts = sorted(
        d["context"].get("policies", {}).get("retry", {}).get("retry_count", 0) for d in docs
    )
    assert counts == [0, 1, 2]


async def test_inject_trigger_from_an_action(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/executions",
        json={
            "action": "core.inject_trigger",
            "parameters": {"trigger_name": "testpack.deploy", "payload": {"version": "1.2"}},
        },
    )
    injected = await execution(api, resp.json()["id"])
    assert injected["status"] == "succeeded", injected["result"]
    found = await eventually(
        lambda: enforcements(api, rule_ref="testpack.on_deploy"), message="the deploy rule"
    )
    assert (await execution(api, found[0]["execution_id"]))["result"]["stdout"] == "deployed 1.2"
    bad = await api.post(
        "/api/v1/webhooks/st2", json={"trigger": "testpack.deploy", "payload": {"nope": 1}}
    )
    assert bad.status_code == 400 and "version" in bad.json()["faultstring"]


async def test_standard_webhooks_signature_and_replay(api: httpx.AsyncClient) -> None:
    import base64
    import time as _time

    secret = base64.b64encode(b"standard-secret-bytes").decode()
    await api.put("/api/v1/keys/std_secret", json={"value": f"whsec_{secret}", "secret": True})
    body = orjson.dumps({"event": "invoice.paid"})
    ts = str(int(_time.time()))

    def signed(msg_id: str, stamp: str) -> dict[str, str]:
        sig = base64.b64encode(
            hmac.new(
                b"standard-secret-bytes", f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256
            ).digest()
        ).decode()
        return {
            "X-Auth-Token": "",
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": f"v1,{sig}",
        }

    ok = await api.post("/api/v1/webhooks/stdhook", content=body, headers=signed("msg_1", ts))
    assert ok.status_code == 202, ok.text
    replay = await api.post("/api/v1/webhooks/stdhook", content=body, headers=signed("msg_1", ts))
    assert replay.status_code == 409 and "replay" in replay.json()["faultstring"]
    stale = str(int(_time.time()) - 3600)
    old = await api.post("/api/v1/webhooks/stdhook", content=body, headers=signed("msg_2", stale))
    assert old.status_code == 401 and "minutes" in old.json()["faultstring"]
    rows = await eventually(
        lambda: enforcements(api, rule_ref="testpack.signed_standard"), message="one enforcement"
    )
    assert len(rows) == 1


async def test_slack_signature(api: httpx.AsyncClient) -> None:
    import time as _time

    await api.put("/api/v1/keys/slack_secret", json={"value": "slack-signing"})
    body = b"token=x&command=%2Fdeploy&text=web"
    ts = str(int(_time.time()))
    sig = (
        "v0=" + hmac.new(b"slack-signing", f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    )
    headers = {
        "X-Auth-Token": "",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
    }
    ok = await api.post("/api/v1/webhooks/slack", content=body, headers=headers)
    assert ok.status_code == 202, ok.text
    assert ok.json() == {"token": "x", "command": "/deploy", "text": "web"}
    bad = await api.post(
        "/api/v1/webhooks/slack", content=body, headers={**headers, "X-Slack-Signature": "v0=00"}
    )
    assert bad.status_code == 401


async def test_oversized_webhook_is_413(api: httpx.AsyncClient) -> None:
    big = b'{"x": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    resp = await api.post(
        "/api/v1/webhooks/alerts", content=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413


async def test_action_trigger_and_notify_triggers(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/executions", json={"action": "testpack.always_fails"})
    await execution(api, resp.json()["id"])
    found = await eventually(
        lambda: enforcements(api, rule_ref="testpack.on_failure"), message="the failure rule"
    )
    assert found[0]["status"] == "succeeded"

    resp = await api.post("/api/v1/executions", json={"action": "testpack.notifying"})
    done = await execution(api, resp.json()["id"])

    async def notified() -> list[dict[str, Any]] | None:
        rows = (
            await api.get(
                "/api/v1/triggerinstances",
                params={"trigger_type": "core.st2.generic.notifytrigger", "limit": 10},
            )
        ).json()
        mine = [r for r in rows if r["payload"]["execution_id"] == done["id"]]
        return mine if len(mine) == 2 else None

    rows = await eventually(notified, message="two notify triggers")
    assert sorted(r["payload"]["route"] for r in rows) == ["chat", "ops"]
    assert rows[0]["payload"]["message"] == "testpack.notifying finished: done"


async def test_bad_rules_are_rejected_with_file_line_and_field(runtime: Runtime) -> None:
    from pathlib import Path

    runtime.packs.settings = runtime.settings.__class__(
        **{
            **runtime.settings.__dict__,
            "packs_path": (str(Path(__file__).parent / "bad_fixtures"),),
        }
    )
    (reg,) = await runtime.packs.register_all(["badrules"])
    assert not reg.ok
    text = "\n".join(str(i) for i in reg.issues)
    assert (
        "rules/bad_operator.yaml:8: criteria.trigger.body.a.type" in text and "frobnicate" in text
    )
    assert "rules/unknown_action.yaml:7: action.ref" in text and "nope.nothing" in text
    assert "rules/bad_trigger_params.yaml" in text and "trigger.parameters.unit" in text
    assert "rules/bad_template.yaml" in text and "action.parameters.cmd" in text
    assert reg.counts["rules"] == 1  # the good rule of the same pack is registered
    assert (await runtime.rules.get("badrules.good"))["enabled"] is True
