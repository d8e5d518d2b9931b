"""RBAC: system roles, custom roles from files, pack inheritance, list filtering, 403
messages, role and assignment APIs, permission isolation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from squall.engine.runtime import Runtime
from squall.testing import eventually
from tests.integration.auth.conftest import ClientFactory

RbacFiles = Callable[..., Awaitable[None]]

ALPHA_RUNNER = """\
name: alpha_runner
description: Runs and watches pack alpha.
permission_grants:
  - resource_uid: pack:alpha
    permission_types: [action_view, action_execute, rule_view, pack_view]
"""

BETA_SAY_VIEWER = """\
name: beta_say_viewer
permission_grants:
  - resource_uid: action:beta:say
    permission_types: [action_view]
"""


async def _run(client: httpx.AsyncClient, action: str, **params: Any) -> httpx.Response:
    return await client.post("/api/v1/executions", json={"action": action, "parameters": params})


async def _done(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in ("succeeded", "failed", "canceled") else None

    return await eventually(finished, timeout=20, message=f"execution {execution_id} finished")


def _refs(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return sorted(d["ref"] for d in resp.json())


async def test_user_without_roles_gets_403_naming_the_permission(
    runtime: Runtime, client_as: ClientFactory
) -> None:
    nobody = await client_as("nobody")
    listing = await nobody.get("/api/v1/actions")
    assert listing.status_code == 403
    assert listing.json()["faultstring"].startswith("user 'nobody' lacks permission 'action_list'")
    run = await _run(nobody, "core.local", cmd="id")
    assert run.status_code == 403
    assert run.json()["faultstring"].startswith(
        "user 'nobody' lacks permission 'action_execute' on 'action:core:local'"
    )
    one = await nobody.get("/api/v1/actions/core.local")
    assert one.status_code == 403
    assert "'action_view' on 'action:core:local'" in one.json()["faultstring"]
    # Whoami and the RBAC vocabulary stay readable.
    assert (await nobody.get("/api/v1/user")).json()["rbac"]["roles"] == []
    assert (await nobody.get("/api/v1/rbac/permission_types")).status_code == 200


async def test_observer_reads_everything_and_changes_nothing(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    ran = await _run(api, "beta.say")
    await _done(api, ran.json()["id"])
    await api.put("/api/v1/keys/shared", json={"value": "v"})
    await api.put("/api/v1/keys/vault", json={"value": "s3cret", "secret": True})
    obs = await client_as("olive", roles=["observer"])
    assert "core.local" in _refs(await obs.get("/api/v1/actions"))
    assert (await obs.get("/api/v1/packs")).status_code == 200
    assert (await obs.get("/api/v1/rules")).status_code == 200
    execs = await obs.get("/api/v1/executions")
    assert [e["id"] for e in execs.json()] == [ran.json()["id"]]
    assert (await obs.get(f"/api/v1/executions/{ran.json()['id']}")).status_code == 200
    keys = {k["name"]: k for k in (await obs.get("/api/v1/keys")).json()}
    assert keys["shared"]["value"] == "v"
    assert keys["vault"]["value"] != "s3cret" and keys["vault"]["encrypted"] is True
    assert (await obs.get("/api/v1/keys/vault", params={"decrypt": "true"})).status_code == 403
    denied = {
        "run": await _run(obs, "beta.say"),
        "cancel": await obs.delete(f"/api/v1/executions/{ran.json()['id']}"),
        "key": await obs.put("/api/v1/keys/shared", json={"value": "x"}),
        "rule": await obs.post(
            "/api/v1/rules",
            json={
                "name": "r",
                "pack": "beta",
                "trigger": {"type": "core.st2.webhook", "parameters": {"url": "x"}},
                "action": {"ref": "beta.say"},
            },
        ),
        "register": await obs.post("/api/v1/packs/register", json={"packs": ["beta"]}),
    }
    for what, resp in denied.items():
        assert resp.status_code == 403, (what, resp.text)
    assert "'key_value_pair_set' on 'key_value_pair:system:shared'" in denied["key"].text
    assert "'pack_register' on 'pack:beta'" in denied["register"].text


async def test_pack_grant_is_inherited_and_filters_lists(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"alpha_runner": ALPHA_RUNNER},
        assignments={"alice": "username: alice\nroles: [alpha_runner]\n"},
    )
    alice = await client_as("alice")
    assert (await alice.get("/api/v1/user")).json()["rbac"]["roles"] == ["alpha_runner"]
    assert _refs(await alice.get("/api/v1/actions")) == [
        "alpha.echo",
        "alpha.say",
        "alpha.with_secret_default",
    ]
    total = (await alice.get("/api/v1/actions")).headers["X-Total-Count"]
    assert total == "3"
    assert [p["ref"] for p in (await alice.get("/api/v1/packs")).json()] == ["alpha"]
    assert _refs(await alice.get("/api/v1/rules")) == ["alpha.hook"]
    assert (await alice.get("/api/v1/actions/beta.say")).status_code == 403
    assert (await alice.get("/api/v1/rules/alpha.hook")).status_code == 200
    mine = await _run(alice, "alpha.say", message="hi")
    assert mine.status_code == 201, mine.text
    assert mine.json()["context"]["user"] == "alice"
    other = await _run(alice, "beta.say")
    assert other.status_code == 403
    assert "'action_execute' on 'action:beta:say'" in other.json()["faultstring"]
    # Executions: alpha's (inherited action_view) and her own; not beta's.
    admin_alpha = (await _run(api, "alpha.say")).json()["id"]
    admin_beta = (await _run(api, "beta.say")).json()["id"]
    await _done(api, admin_beta)
    listed = await alice.get("/api/v1/executions")
    ids = {e["id"] for e in listed.json()}
    assert ids == {mine.json()["id"], admin_alpha}
    assert listed.headers["X-Total-Count"] == "2"
    assert (await alice.get(f"/api/v1/executions/{admin_beta}")).status_code == 403
    assert (await alice.get(f"/api/v1/executions/{admin_alpha}")).status_code == 200


async def test_resource_grant_on_one_action(
    runtime: Runtime, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"beta_say_viewer": BETA_SAY_VIEWER},
        assignments={"bob": "username: bob\nroles: [beta_say_viewer]\n"},
    )
    bob = await client_as("bob")
    assert _refs(await bob.get("/api/v1/actions")) == ["beta.say"]
    assert (await bob.get("/api/v1/actions/views/parameters/beta.say")).status_code == 200
    assert (await bob.get("/api/v1/actions/alpha.say")).status_code == 403
    assert (await _run(bob, "beta.say")).status_code == 403  # view is not execute
    packs = await bob.get("/api/v1/packs")
    assert packs.status_code == 403  # no pack grant at all


async def test_control_of_other_users_executions(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"alpha_runner": ALPHA_RUNNER},
        assignments={
            "alice": "username: alice\nroles: [alpha_runner]\n",
            "carl": "username: carl\nroles: [observer]\n",
        },
    )
    alice = await client_as("alice")
    carl = await client_as("carl")
    ex = (await _run(alice, "alpha.echo", message="x")).json()
    stop = await carl.delete(f"/api/v1/executions/{ex['id']}")
    assert stop.status_code == 403
    assert f"lacks permission 'execution_stop' on 'execution:{ex['id']}'" in stop.text
    rerun = await carl.post(f"/api/v1/executions/{ex['id']}/re_run", json={})
    assert rerun.status_code == 403
    assert "execution_re_run" in rerun.text
    await _done(api, ex["id"])
    again = await alice.post(f"/api/v1/executions/{ex['id']}/re_run", json={})
    assert again.status_code == 201, again.text


async def test_role_and_assignment_apis(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: RbacFiles
) -> None:
    await rbac_files(
        roles={"alpha_runner": ALPHA_RUNNER},
        assignments={"alice": "username: alice\nroles: [alpha_runner, observer]\n"},
    )
    roles = (await api.get("/api/v1/rbac/roles")).json()
    assert [r["name"] for r in roles] == ["system_admin", "admin", "observer", "alpha_runner"]
    custom = (await api.get("/api/v1/rbac/roles/alpha_runner")).json()
    assert custom["system"] is False
    assert custom["permission_grants"] == [
        {
            "permission_types": ["action_execute", "action_view", "pack_view", "rule_view"],
            "resource_uid": "pack:alpha",
        }
    ]
    system = (await api.get("/api/v1/rbac/roles", params={"system": "true"})).json()
    assert {r["name"] for r in system} == {"system_admin", "admin", "observer"}
    types = (await api.get("/api/v1/rbac/permission_types")).json()
    assert "action_execute" in types["action"] and "execution_re_run" in types["execution"]
    assert (await api.get("/api/v1/rbac/permission_types/stream")).json() == ["stream_view"]
    assignments = (await api.get("/api/v1/rbac/role_assignments")).json()
    pairs = {(a["user"], a["role"], a["source"]) for a in assignments}
    assert ("admin", "system_admin", "local") in pairs
    assert ("alice", "alpha_runner", "assignments/alice.yaml") in pairs
    alice = await client_as("alice")
    own = (await alice.get("/api/v1/rbac/role_assignments")).json()
    assert {a["user"] for a in own} == {"alice"}
    assert (
        await alice.get("/api/v1/rbac/role_assignments", params={"user": "admin"})
    ).status_code == 403
    one = await api.get(f"/api/v1/rbac/role_assignments/{own[0]['id']}")
    assert one.json() == own[0]


async def test_invalid_role_files_are_reported_with_file_and_line(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    roles = runtime.settings.rbac_dir / "roles"
    roles.mkdir(parents=True)
    (roles / "bad.yaml").write_text(
        "name: bad\npermission_grants:\n  - resource_uid: pack:x\n"
        "    permission_types: [action_fly]\n"
    )
    (runtime.settings.rbac_dir / "assignments").mkdir()
    (runtime.settings.rbac_dir / "assignments" / "zed.yaml").write_text(
        "username: zed\nroles: [nope]\n"
    )
    resp = await api.post("/api/v1/rbac/load")
    assert resp.status_code == 400
    fault = resp.json()["faultstring"]
    assert "roles/bad.yaml:4: permission_grants[0].permission_types[0]" in fault
    assert "unknown permission type 'action_fly'" in fault
    assert "assignments/zed.yaml:2: roles[0]: unknown role 'nope'" in fault


@pytest.mark.settings(rbac_isolation=True)
async def test_permission_isolation(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    olive = await client_as("olive", roles=["observer"])
    await runtime.auth.update_user("olive", roles=["observer", "admin"])
    runtime.auth.forget()
    own = (await _run(olive, "beta.say")).json()["id"]  # run while an admin
    await runtime.auth.update_user("olive", roles=["observer"])
    runtime.auth.forget()
    theirs = (await _run(api, "beta.say")).json()["id"]
    listed = (await olive.get("/api/v1/executions")).json()
    assert [e["id"] for e in listed] == [own]
    assert (await olive.get(f"/api/v1/executions/{theirs}")).status_code == 403
    assert (await olive.get(f"/api/v1/executions/{own}")).status_code == 200
    # Rules: only those the user created (pack rules have no owner).
    rule = {
        "name": "mine",
        "pack": "beta",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "mine"}},
        "action": {"ref": "beta.say"},
    }
    created = await api.post("/api/v1/rules", json=rule)
    assert created.status_code == 201, created.text
    assert created.json()["context"]["user"] == "admin"
    assert (await olive.get("/api/v1/rules")).json() == []
    assert (await olive.get("/api/v1/rules/alpha.hook")).status_code == 403
    # Actions are not isolated.
    assert "beta.say" in _refs(await olive.get("/api/v1/actions"))
    # Admins see everything.
    assert len((await api.get("/api/v1/executions")).json()) == 2
