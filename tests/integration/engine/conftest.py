"""An in-process Squall runtime (services started) and an API client, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from squall.api.app import create_app
from squall.config import load_settings
from squall.engine.runtime import Runtime

FIXTURE_PACKS = Path(__file__).parent / "fixtures"
ADMIN_PASSWORD = "test-password-1"


def make_settings(home: Path, db_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    database_url = "" if db_url.startswith("sqlite") else db_url
    return load_settings(
        environ={},
        home=home,
        database_url=database_url,
        packs_path=(str(FIXTURE_PACKS),),
        admin_password=ADMIN_PASSWORD,
        lease_seconds=overrides.pop("lease_seconds", 3.0),
        output_flush_interval=0.02,
        python_workers=2,
        **overrides,
    )


@pytest.fixture
def settings_factory():  # type: ignore[no-untyped-def]
    return make_settings


@pytest.fixture
async def runtime(db_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    home = tmp_path / "home"
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{home / 'squall.db'}"
    rt = await Runtime.open(make_settings(home, db_url))
    await rt.ensure_admin()
    results = await rt.packs.register_all()
    assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
    await rt.start_services()
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://squall") as client:
        resp = await client.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
        assert resp.status_code == 201, resp.text
        client.headers["X-Auth-Token"] = resp.json()["token"]
        yield client
