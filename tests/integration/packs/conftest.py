"""An in-process runtime whose pack search path is an empty directory (where installs go),
an admin API client, and local git repositories holding packs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from squall.api.app import create_app
from squall.config import load_settings
from squall.engine.runtime import Runtime
from tests.gitpacks import PackRepo

ADMIN_PASSWORD = "test-password-1"


@pytest.fixture
async def runtime(db_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    home = tmp_path / "home"
    settings = load_settings(
        environ={},
        home=home,
        database_url="" if db_url.startswith("sqlite") else db_url,
        packs_path=(str(tmp_path / "packs"),),
        admin_password=ADMIN_PASSWORD,
        lease_seconds=3.0,
        output_flush_interval=0.02,
        python_workers=1,
    )
    rt = await Runtime.open(settings)
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
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://squall", timeout=60
    ) as client:
        resp = await client.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
        assert resp.status_code == 201, resp.text
        client.headers["X-Auth-Token"] = resp.json()["token"]
        yield client


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    """Where installed packs go (the first directory of the pack search path)."""
    return tmp_path / "packs"


@pytest.fixture
def hello_repo(tmp_path: Path) -> PackRepo:
    """Pack ``hello`` in git: tag v1.0.0 (action ``greet``), then on main 2.0.0 (``greet``
    and ``extra``), and branch ``dev`` with 2.1.0-dev (``greet`` only)."""
    repo = PackRepo(tmp_path / "repos" / "hello", "hello")
    repo.version("1.0.0", {"greet": "v1"}, tag="v1.0.0")
    repo.version("2.0.0", {"greet": "v2", "extra": "extra"})
    repo.branch("dev")
    repo.version("2.1.0-dev", {"greet": "dev"})
    repo.switch("main")
    return repo
