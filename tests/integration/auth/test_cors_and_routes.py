"""CORS from the allow-list only (CVE-2019-9580, st2#6390), and every route's permissions."""

from __future__ import annotations

import httpx
import pytest

from squall.api.app import create_app
from squall.api.permissions import ROUTES, lookup, normalize_path
from squall.config import Settings
from squall.engine.runtime import Runtime
from squall.errors import ValidationError
from tests.integration.auth.conftest import ClientFactory, client_for

ALLOWED = "https://ui.example.com"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-auth-token",
    }


@pytest.mark.settings(cors_origins=(ALLOWED,))
async def test_cors_allows_only_listed_origins(runtime: Runtime, api: httpx.AsyncClient) -> None:
    ok = await api.options("/api/v1/actions", headers=_preflight(ALLOWED))
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "x-auth-token" in ok.headers["access-control-allow-headers"].lower()
    simple = await api.get("/api/v1/actions", headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    assert "X-Total-Count" in simple.headers["access-control-expose-headers"]
    for origin in ("https://evil.example.com", "null", "https://ui.example.com.evil.net"):
        pre = await api.options("/api/v1/actions", headers=_preflight(origin))
        assert pre.status_code == 400, origin
        assert "access-control-allow-origin" not in pre.headers, origin
        got = await api.get("/api/v1/actions", headers={"Origin": origin})
        assert "access-control-allow-origin" not in got.headers, origin
        assert got.headers.get("access-control-allow-origin") != "*"


async def test_no_cors_headers_without_configured_origins(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    for origin in (ALLOWED, "null"):
        got = await api.get("/api/v1/actions", headers={"Origin": origin})
        assert "access-control-allow-origin" not in got.headers
        assert "access-control-allow-credentials" not in got.headers


@pytest.mark.parametrize("bad", ["*", "null", "ui.example.com", "https://x.com/path"])
def test_unsafe_cors_origins_are_refused_at_start(bad: str) -> None:
    class _Runtime:
        settings = Settings(cors_origins=(bad,))

    with pytest.raises(ValidationError, match="SQUALL_CORS_ORIGINS"):
        create_app(_Runtime())  # type: ignore[arg-type]


# --- every route -----------------------------------------------------------------------------

#: Routes any authenticated user may call (their handlers decide what the user sees).
SELF_SERVICE = {
    ("GET", "/api/v1"),
    ("GET", "/api/v1/user"),
    ("DELETE", "/auth/v1/tokens"),
    ("DELETE", "/auth/v1/tokens/{}"),
    ("GET", "/api/v1/apikeys"),
    ("POST", "/api/v1/apikeys"),
    ("GET", "/api/v1/apikeys/{}"),
    ("PUT", "/api/v1/apikeys/{}"),
    ("DELETE", "/api/v1/apikeys/{}"),
    ("GET", "/api/v1/rbac/roles"),
    ("GET", "/api/v1/rbac/roles/{}"),
    ("GET", "/api/v1/rbac/permission_types"),
    ("GET", "/api/v1/rbac/permission_types/{}"),
    ("GET", "/api/v1/rbac/role_assignments"),
    ("GET", "/api/v1/rbac/role_assignments/{}"),
    ("PUT", "/api/v1/users/{}/password"),
    ("GET", "/api/v1/keys"),
    ("GET", "/api/v1/keys/{}"),
    ("PUT", "/api/v1/keys/{}"),
    ("DELETE", "/api/v1/keys/{}"),
    ("GET", "/api/v1/ruletypes"),
    ("GET", "/api/v1/ruletypes/{}"),
    ("POST", "/api/v1/workflows/inspect"),
    ("POST", "/api/v1/executions"),
}


def _app_routes(runtime: Runtime) -> list[tuple[str, str]]:
    schema = create_app(runtime).openapi()
    return sorted(
        (method.upper(), normalize_path(path))
        for path, ops in schema["paths"].items()
        for method in ops
    )


async def test_every_route_has_a_permission_rule(runtime: Runtime) -> None:
    missing = [r for r in _app_routes(runtime) if lookup(*r) is None]
    assert not missing, f"add these routes to squall/api/permissions.py: {missing}"
    assert all(key == (key[0], normalize_path(key[1])) for key in ROUTES)


async def test_a_user_without_roles_is_refused_everywhere(
    runtime: Runtime, api: httpx.AsyncClient, client_as: ClientFactory
) -> None:
    """Every route that is neither public nor self-service answers 403 to a user without
    roles — with real resources in the path, so no check hides behind a 404."""
    ex = (await api.post("/api/v1/executions", json={"action": "beta.say"})).json()["id"]
    await api.put("/api/v1/keys/k1", json={"value": "v"})
    rule = {
        "name": "r",
        "pack": "beta",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "r"}},
        "action": {"ref": "beta.say"},
    }
    await api.post("/api/v1/rules", json=rule)
    hook = await api.post("/api/v1/webhooks/r", json={})
    assert hook.status_code == 202
    instances = (await api.get("/api/v1/triggerinstances")).json()
    values = {
        "/api/v1/actions": "beta.say",
        "/api/v1/executions": ex,
        "/api/v1/packs": "beta",
        "/api/v1/rules": "beta.r",
        "/api/v1/runnertypes": "noop",
        "/api/v1/triggertypes": "core.st2.webhook",
        "/api/v1/triggers": "core.st2.webhook",
        "/api/v1/triggerinstances": instances[0]["id"],
        "/api/v1/users": "admin",
        "/api/v1/webhooks": "r",
    }
    nobody = await client_as("nobody")
    checked = 0
    for method, path in _app_routes(runtime):
        access = lookup(method, path)
        assert access is not None
        if access.public or (method, path) in SELF_SERVICE:
            continue
        prefix = next((p for p in sorted(values, key=len, reverse=True) if path.startswith(p)), "")
        url = path.replace("{}", values.get(prefix, "x"))
        resp = await nobody.request(method, url, json={})
        if resp.status_code == 404 and "{}" in path and prefix not in values:
            continue  # nothing to name in the path (e.g. inquiries): checked elsewhere
        assert resp.status_code == 403, (method, url, resp.status_code, resp.text)
        assert "nobody" in resp.json()["faultstring"]
        checked += 1
    assert checked >= 30


async def test_unknown_routes_default_to_administrators(runtime: Runtime) -> None:
    """A route nobody put in the permission table is served to admins only."""
    from fastapi import APIRouter

    from tests.integration.auth.conftest import ADMIN_PASSWORD, USER_PASSWORD, login

    app = create_app(runtime)
    router = APIRouter()

    @router.get("/api/v1/brand-new")
    async def brand_new() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(router)
    await runtime.auth.add_user("nina", USER_PASSWORD, roles=["observer"])
    async with client_for(runtime, app=app) as admin, client_for(runtime, app=app) as nina:
        await login(admin, "admin", ADMIN_PASSWORD)
        await login(nina, "nina", USER_PASSWORD)
        assert (await admin.get("/api/v1/brand-new")).json() == {"ok": True}
        denied = await nina.get("/api/v1/brand-new")
        assert denied.status_code == 403
        assert "administrators only" in denied.json()["faultstring"]
