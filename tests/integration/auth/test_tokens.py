"""Tokens: issue, ttl cap, expiry, revocation, validation; disabled users; login throttling;
proxy authentication from trusted addresses only."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from squall.api.app import create_app
from squall.engine.runtime import Runtime
from squall.store.schema import tokens
from squall.store.util import utcnow
from tests.integration.auth.conftest import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    ClientFactory,
    client_for,
)


async def test_token_ttl_is_capped_by_the_maximum(runtime: Runtime, api: httpx.AsyncClient) -> None:
    max_ttl = runtime.settings.token_max_ttl
    too_long = await api.post(
        "/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD), json={"ttl": max_ttl + 1}
    )
    assert too_long.status_code == 400
    assert f"exceeds the maximum {max_ttl}" in too_long.json()["faultstring"]
    short = await api.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD), json={"ttl": 60})
    assert short.status_code == 201
    doc = short.json()
    assert set(doc) == {"id", "user", "token", "expiry", "metadata"}
    assert doc["user"] == "admin"
    bad = await api.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD), json={"ttl": "x"})
    assert bad.status_code == 400


async def test_tokens_are_stored_hashed(runtime: Runtime, api: httpx.AsyncClient) -> None:
    token = api.headers["X-Auth-Token"]
    rows = await runtime.db.read(lambda conn: conn.execute(tokens.select()).all())
    assert rows and all(token not in str(tuple(r)) for r in rows)


async def test_expired_token_is_refused(runtime: Runtime, api: httpx.AsyncClient) -> None:
    token = api.headers["X-Auth-Token"]
    assert (await api.get("/api/v1/user")).status_code == 200
    past = utcnow() - timedelta(seconds=1)
    await runtime.db.write(lambda conn: conn.execute(tokens.update().values(expiry=past)))
    runtime.auth.forget()
    resp = await api.get("/api/v1/user")
    assert resp.status_code == 401
    assert "expired" in resp.json()["faultstring"]
    valid = await api.post("/auth/v1/tokens/validate", json={"token": token})
    assert valid.json() == {"valid": False}


async def test_logout_revokes_the_token(runtime: Runtime, api: httpx.AsyncClient) -> None:
    token = api.headers["X-Auth-Token"]
    assert (await api.post("/auth/v1/tokens/validate", json={"token": token})).json()["valid"]
    assert (await api.delete("/auth/v1/tokens")).status_code == 204
    resp = await api.get("/api/v1/user")
    assert resp.status_code == 401
    assert "revoked" in resp.json()["faultstring"]
    assert (await api.post("/auth/v1/tokens/validate", json={"token": token})).json() == {
        "valid": False
    }


async def test_revoke_by_id_owner_or_admin_only(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    alice = await client_as("alice")
    bob = await client_as("bob")
    issued = await alice.post("/auth/v1/tokens", auth=("alice", USER_PASSWORD))
    token_id, token = issued.json()["id"], issued.json()["token"]
    # Bob cannot revoke Alice's token; he is told it does not exist.
    assert (await bob.delete(f"/auth/v1/tokens/{token_id}")).status_code == 404
    assert (await api.post("/auth/v1/tokens/validate", json={"token": token})).json()["valid"]
    assert (await alice.delete(f"/auth/v1/tokens/{token_id}")).status_code == 204
    assert not (await api.post("/auth/v1/tokens/validate", json={"token": token})).json()["valid"]


async def test_password_change_and_disabling_revoke_tokens(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    alice = await client_as("alice")
    assert (await alice.get("/api/v1/user")).json()["username"] == "alice"
    resp = await api.put("/api/v1/users/alice/password", json={"password": "new-password-9"})
    assert resp.status_code == 204
    assert (await alice.get("/api/v1/user")).status_code == 401
    again = await alice.post("/auth/v1/tokens", auth=("alice", "new-password-9"))
    assert again.status_code == 201
    alice.headers["X-Auth-Token"] = again.json()["token"]
    assert (await api.put("/api/v1/users/alice", json={"enabled": False})).status_code == 200
    assert (await alice.get("/api/v1/user")).status_code == 401
    refused = await alice.post("/auth/v1/tokens", auth=("alice", "new-password-9"))
    assert refused.status_code == 401


async def test_missing_and_wrong_credentials(runtime: Runtime) -> None:
    async with client_for(runtime) as anon:
        resp = await anon.get("/api/v1/actions")
        assert resp.status_code == 401
        assert "authentication required" in resp.json()["faultstring"]
        assert (await anon.post("/auth/v1/tokens")).status_code == 401
        wrong = await anon.post("/auth/v1/tokens", auth=("admin", "nope-nope"))
        assert wrong.status_code == 401
        assert wrong.json()["faultstring"] == "invalid username or password"
        ghost = await anon.post("/auth/v1/tokens", auth=("ghost", "nope-nope"))
        assert ghost.json()["faultstring"] == "invalid username or password"
        stanley = await anon.post("/auth/v1/tokens", auth=("stanley", "whatever-1"))
        assert stanley.status_code == 401
        bogus = await anon.get("/api/v1/user", headers={"X-Auth-Token": "0" * 32})
        assert bogus.status_code == 401


@pytest.mark.settings(login_max_failures=3, login_failure_window=300.0)
async def test_failed_logins_are_throttled_per_user(runtime: Runtime) -> None:
    app = create_app(runtime)  # one process: one throttle
    async with client_for(runtime, address="192.0.2.10", app=app) as one:
        for _ in range(3):
            resp = await one.post("/auth/v1/tokens", auth=("admin", "wrong-password"))
            assert resp.status_code == 401
        locked = await one.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
        assert locked.status_code == 429
        assert "too many failed logins" in locked.json()["faultstring"]
        assert 1 <= int(locked.headers["Retry-After"]) <= 300
    # The user is throttled from any address; other users are not.
    async with client_for(runtime, address="192.0.2.99", app=app) as other:
        again = await other.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
        assert again.status_code == 429
        await runtime.auth.add_user("carol", USER_PASSWORD)
        ok = await other.post("/auth/v1/tokens", auth=("carol", USER_PASSWORD))
        assert ok.status_code == 201


@pytest.mark.settings(login_max_failures=3)
async def test_failed_logins_are_throttled_per_address(runtime: Runtime) -> None:
    await runtime.auth.add_user("dave", USER_PASSWORD)
    app = create_app(runtime)
    async with client_for(runtime, address="192.0.2.20", app=app) as spray:
        for user in ("u1", "u2", "u3"):  # password spraying across user names
            assert (await spray.post("/auth/v1/tokens", auth=(user, "x-x-x-x"))).status_code == 401
        blocked = await spray.post("/auth/v1/tokens", auth=("dave", USER_PASSWORD))
        assert blocked.status_code == 429
    async with client_for(runtime, address="192.0.2.21", app=app) as elsewhere:
        ok = await elsewhere.post("/auth/v1/tokens", auth=("dave", USER_PASSWORD))
        assert ok.status_code == 201


@pytest.mark.settings(auth_proxy_header="X-Forwarded-User", auth_proxy_addresses=("10.1.2.0/24",))
async def test_proxy_header_trusted_only_from_proxy_addresses(
    runtime: Runtime, rbac_files: object
) -> None:
    headers = {"X-Forwarded-User": "sso-erin"}
    async with client_for(runtime, address="10.1.2.7") as proxy:
        resp = await proxy.post("/auth/v1/tokens", headers=headers)
        assert resp.status_code == 201, resp.text
        assert resp.json()["user"] == "sso-erin"
        assert resp.json()["metadata"] == {"authenticated_by": "proxy"}
        # The trusted proxy may also authenticate each API request with the header.
        who = await proxy.get("/api/v1/user", headers=headers)
        assert who.status_code == 200
        assert who.json()["username"] == "sso-erin"
        assert who.json()["authentication"]["method"] == "proxy"
        # Never the system user.
        system = await proxy.post("/auth/v1/tokens", headers={"X-Forwarded-User": "stanley"})
        assert system.status_code == 401
    async with client_for(runtime, address="10.9.9.9") as outsider:
        spoofed = await outsider.post("/auth/v1/tokens", headers=headers)
        assert spoofed.status_code == 401
        assert (await outsider.get("/api/v1/user", headers=headers)).status_code == 401
        # X-Forwarded-For does not make an untrusted peer a proxy.
        forwarded = {**headers, "X-Forwarded-For": "10.1.2.7"}
        assert (await outsider.post("/auth/v1/tokens", headers=forwarded)).status_code == 401


@pytest.mark.settings(auth_proxy_addresses=())
async def test_proxy_mode_is_off_without_addresses(runtime: Runtime) -> None:
    async with client_for(runtime, address="127.0.0.1") as local:
        resp = await local.get("/api/v1/user", headers={"X-Forwarded-User": "admin"})
        assert resp.status_code == 401
