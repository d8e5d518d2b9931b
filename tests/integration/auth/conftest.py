"""Authentication and RBAC tests: an in-process runtime with two test packs, an admin client,
and clients for users with given roles, on both backends.

``@pytest.mark.settings(key=value, ...)`` overrides settings for one test's runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.api.app import create_app
from squall.config import load_settings
from squall.engine.runtime import Runtime

FIXTURE_PACKS = Path(__file__).parent / "fixtures" / "packs"
ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**values): settings for the test's runtime")


def make_settings(home: Path, db_url: str, **overrides: Any) -> Any:
    return load_settings(
        environ={},
        home=home,
        database_url="" if db_url.startswith("sqlite") else db_url,
        packs_path=(str(FIXTURE_PACKS),),
        admin_password=ADMIN_PASSWORD,
        lease_seconds=3.0,
        output_flush_interval=0.02,
        python_workers=1,
        **overrides,
    )


@pytest.fixture
async def runtime(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Runtime]:
    home = tmp_path / "home"
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{home / 'squall.db'}"
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    rt = await Runtime.open(make_settings(home, db_url, **overrides))
    await rt.ensure_admin()
    results = await rt.packs.register_all()
    assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
    await rt.start_services()
    try:
        yield rt
    finally:
        await rt.close()


def client_for(
    runtime: Runtime, *, address: str = "127.0.0.1", app: Any = None
) -> httpx.AsyncClient:
    """An HTTP client for the app, connecting from ``address``."""
    transport = httpx.ASGITransport(app=app or create_app(runtime), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://squall")


async def login(client: httpx.AsyncClient, user: str, password: str) -> httpx.AsyncClient:
    resp = await client.post("/auth/v1/tokens", auth=(user, password))
    assert resp.status_code == 201, resp.text
    client.headers["X-Auth-Token"] = resp.json()["token"]
    return client


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as the admin (``system_admin``)."""
    async with client_for(runtime) as client:
        yield await login(client, "admin", ADMIN_PASSWORD)


@pytest.fixture
async def client_as(runtime: Runtime) -> AsyncIterator[ClientFactory]:
    """``await client_as("alice", roles=["observer"])``: create the user, return a client
    logged in as them."""
    clients: list[httpx.AsyncClient] = []

    async def make(user: str, *, roles: list[str] | None = None) -> httpx.AsyncClient:
        await runtime.auth.add_user(user, USER_PASSWORD, roles=roles or [])
        client = client_for(runtime)
        clients.append(client)
        return await login(client, user, USER_PASSWORD)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def rbac_files(runtime: Runtime) -> Callable[..., Awaitable[None]]:
    """``await rbac_files(roles={"name": yaml}, assignments={"user": yaml})``: write the
    definition files and load them."""

    async def write(
        *, roles: dict[str, str] | None = None, assignments: dict[str, str] | None = None
    ) -> None:
        base = runtime.settings.rbac_dir
        for kind, files in (("roles", roles or {}), ("assignments", assignments or {})):
            folder = base / kind
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (folder / f"{name}.yaml").write_text(text)
        await runtime.auth.rbac.load()
        runtime.auth.forget()

    return write
