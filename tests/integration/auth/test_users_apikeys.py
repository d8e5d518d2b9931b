"""Users (Squall's /api/v1/users) and API keys (shown once, stored hashed, disable/delete)."""

from __future__ import annotations

import httpx

from squall.auth.service import hash_secret
from squall.engine.runtime import Runtime
from squall.store.schema import api_keys
from tests.integration.auth.conftest import USER_PASSWORD, ClientFactory, client_for, login


async def test_admin_manages_users(runtime: Runtime, api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/users", json={"name": "frank", "password": "frank-pass-1", "roles": ["observer"]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == ["observer"]
    assert "password" not in str(created.json())
    dup = await api.post("/api/v1/users", json={"name": "frank", "password": "frank-pass-1"})
    assert dup.status_code == 409
    short = await api.post("/api/v1/users", json={"name": "gina", "password": "short"})
    assert short.status_code == 400 and "too short" in short.json()["faultstring"]
    unknown = await api.post(
        "/api/v1/users", json={"name": "gina", "password": "gina-pass-1", "roles": ["wizard"]}
    )
    assert unknown.status_code == 400 and "unknown role: wizard" in unknown.json()["faultstring"]
    names = [u["name"] for u in (await api.get("/api/v1/users")).json()]
    assert names == ["admin", "frank"]
    updated = await api.put("/api/v1/users/frank", json={"roles": ["admin"]})
    assert updated.json()["roles"] == ["admin"]
    assert (await api.delete("/api/v1/users/admin")).status_code == 400  # not yourself
    assert (await api.delete("/api/v1/users/frank")).status_code == 204
    assert (await api.get("/api/v1/users/frank")).status_code == 404


async def test_only_system_admins_grant_system_admin(
    runtime: Runtime, client_as: ClientFactory
) -> None:
    helen = await client_as("helen", roles=["admin"])
    denied = await helen.post(
        "/api/v1/users",
        json={"name": "ivan", "password": "ivan-pass-1", "roles": ["system_admin"]},
    )
    assert denied.status_code == 403
    assert "system_admin" in denied.json()["faultstring"]
    ok = await helen.post(
        "/api/v1/users", json={"name": "ivan", "password": "ivan-pass-1", "roles": ["observer"]}
    )
    assert ok.status_code == 201
    assert (await helen.delete("/api/v1/users/admin")).status_code == 403


async def test_users_api_is_for_admins_and_own_password(
    runtime: Runtime, client_as: ClientFactory
) -> None:
    jane = await client_as("jane", roles=["observer"])
    resp = await jane.get("/api/v1/users")
    assert resp.status_code == 403
    assert "administrators only" in resp.json()["faultstring"]
    other = await jane.put("/api/v1/users/admin/password", json={"password": "hijacked-1"})
    assert other.status_code == 403
    wrong = await jane.put(
        "/api/v1/users/jane/password",
        json={"password": "jane-new-pass", "current_password": "not-it-1"},
    )
    assert wrong.status_code == 403
    ok = await jane.put(
        "/api/v1/users/jane/password",
        json={"password": "jane-new-pass", "current_password": USER_PASSWORD},
    )
    assert ok.status_code == 204
    async with client_for(runtime) as fresh:
        await login(fresh, "jane", "jane-new-pass")


async def test_api_key_is_shown_once_and_stored_hashed(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    created = await api.post("/api/v1/apikeys", json={"metadata": {"purpose": "ci"}})
    assert created.status_code == 201, created.text
    doc = created.json()
    key = doc["key"]
    assert doc["user"] == "admin" and doc["enabled"] is True
    assert doc["metadata"] == {"purpose": "ci"}
    rows = await runtime.db.read(lambda conn: conn.execute(api_keys.select()).all())
    assert [r.key_hash for r in rows] == [hash_secret(key)]
    assert all(key not in str(tuple(r)) for r in rows)
    listed = (await api.get("/api/v1/apikeys", params={"show_secrets": "true"})).json()
    assert len(listed) == 1
    assert "key" not in listed[0] and "key_hash" not in listed[0]
    assert key not in str(listed) and hash_secret(key) not in str(listed)
    one = (await api.get(f"/api/v1/apikeys/{doc['id']}")).json()
    assert "key" not in one and "key_hash" not in one
    async with client_for(runtime) as keyed:
        who = await keyed.get("/api/v1/user", headers={"St2-Api-Key": key})
        assert who.json()["username"] == "admin"
        assert who.json()["authentication"]["method"] == "api_key"
        by_query = await keyed.get("/api/v1/user", params={"st2-api-key": key})
        assert by_query.status_code == 200


async def test_disabled_and_deleted_keys_are_refused(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    doc = (await api.post("/api/v1/apikeys", json={})).json()
    headers = {"St2-Api-Key": doc["key"]}
    async with client_for(runtime) as keyed:
        assert (await keyed.get("/api/v1/user", headers=headers)).status_code == 200
        disabled = await api.put(f"/api/v1/apikeys/{doc['id']}", json={"enabled": False})
        assert disabled.json()["enabled"] is False
        refused = await keyed.get("/api/v1/user", headers=headers)
        assert refused.status_code == 401
        assert "disabled" in refused.json()["faultstring"]
        await api.put(f"/api/v1/apikeys/{doc['id']}", json={"enabled": True})
        assert (await keyed.get("/api/v1/user", headers=headers)).status_code == 200
        assert (await api.delete(f"/api/v1/apikeys/{doc['id']}")).status_code == 204
        assert (await keyed.get("/api/v1/user", headers=headers)).status_code == 401


async def test_api_keys_of_other_users(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory, rbac_files: object
) -> None:
    kim = await client_as("kim")
    # Creating a key needs api_key_create.
    denied = await kim.post("/api/v1/apikeys", json={})
    assert denied.status_code == 403
    assert "lacks permission 'api_key_create'" in denied.json()["faultstring"]
    # An admin creates Kim a key; Kim sees and manages it, Lou does not see it.
    for_kim = (await api.post("/api/v1/apikeys", json={"user": "kim"})).json()
    assert for_kim["user"] == "kim"
    assert [k["id"] for k in (await kim.get("/api/v1/apikeys")).json()] == [for_kim["id"]]
    lou = await client_as("lou", roles=["observer"])
    assert (await lou.get(f"/api/v1/apikeys/{for_kim['id']}")).status_code == 200  # observer
    assert (await lou.delete(f"/api/v1/apikeys/{for_kim['id']}")).status_code == 403
    mine = await kim.put(f"/api/v1/apikeys/{for_kim['id']}", json={"enabled": False})
    assert mine.status_code == 200
    stranger = await client_as("moe")
    assert (await stranger.get(f"/api/v1/apikeys/{for_kim['id']}")).status_code == 404
    assert (await stranger.get("/api/v1/apikeys")).json() == []
    # Nobody but an admin mints keys for someone else, even with api_key_create.
    await rbac_files(
        roles={
            "keymaker": "name: keymaker\npermission_grants:\n"
            "  - permission_types: [api_key_create]\n"
        },
        assignments={"kim": "username: kim\nroles: [keymaker]\n"},
    )
    own = await kim.post("/api/v1/apikeys", json={})
    assert own.status_code == 201
    forged = await kim.post("/api/v1/apikeys", json={"user": "admin"})
    assert forged.status_code == 403
    assert "may not create API keys for user 'admin'" in forged.json()["faultstring"]
