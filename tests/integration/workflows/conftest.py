"""A runtime with the workflow test pack (plus generated workflows) on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.api.app import create_app
from squall.config import Settings, load_settings
from squall.engine.runtime import Runtime
from squall.testing import eventually

FIXTURE_PACKS = Path(__file__).parent / "fixtures"
ADMIN_PASSWORD = "test-password-1"
TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


def parallel_workflow(branches: int) -> str:
    """``start`` fans out to ``branches`` tasks that all join into ``join``."""
    lines = ["version: 1.0", "tasks:", "  start:", "    action: core.noop", "    next:"]
    lines.append("      - do: " + ", ".join(f"b{i}" for i in range(branches)))
    for i in range(branches):
        lines += [
            f"  b{i}:",
            "    action: core.noop",
            "    next:",
            "      - when: <% succeeded() %>",
            f"        publish: v{i}=<% result().return_code + {i} %>",
            "        do: join",
        ]
    lines += ["  join:", "    join: all", "    action: core.noop", "output:"]
    lines.append("  - total: <% " + " + ".join(f"ctx(v{i})" for i in range(branches)) + " %>")
    return "\n".join(lines) + "\n"


def _generated_pack(root: Path) -> Path:
    pack = root / "wfgen"
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "ref: wfgen\nname: wfgen\ndescription: generated\nversion: 0.1.0\n"
        "author: Squall\nemail: squall@example.com\n"
    )
    (pack / "actions" / "parallel200.yaml").write_text(
        "name: parallel200\nrunner_type: orquesta\nentry_point: workflows/parallel200.yaml\n"
    )
    (pack / "actions" / "workflows" / "parallel200.yaml").write_text(parallel_workflow(200))
    return root


def make_settings(home: Path, db_url: str, packs: tuple[str, ...], **overrides: Any) -> Settings:
    return load_settings(
        environ={},
        home=home,
        database_url="" if db_url.startswith("sqlite") else db_url,
        packs_path=packs,
        admin_password=ADMIN_PASSWORD,
        lease_seconds=overrides.pop("lease_seconds", 3.0),
        output_flush_interval=0.02,
        python_workers=2,
        **overrides,
    )


@pytest.fixture
def open_runtime(db_url: str, tmp_path: Path) -> Callable[..., Any]:
    """Open (and register packs in) a runtime on this test's database; reopenable."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'squall.db'}" if db_url.startswith("sqlite") else db_url
    generated = _generated_pack(tmp_path / "generated")
    packs = (str(FIXTURE_PACKS), str(generated))

    async def _open(
        *, register: bool = True, extra_packs: tuple[str, ...] = (), **overrides: Any
    ) -> Runtime:
        rt = await Runtime.open(make_settings(home, url, (*packs, *extra_packs), **overrides))
        await rt.ensure_admin()
        if register:
            results = await rt.packs.register_all()
            assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
        await rt.start_services()
        return rt

    return _open


@pytest.fixture
async def runtime(open_runtime: Callable[..., Any]) -> AsyncIterator[Runtime]:
    rt = await open_runtime()
    try:
        yield rt
    finally:
        await rt.close()


async def client_for(rt: Runtime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(rt))
    client = httpx.AsyncClient(transport=transport, base_url="http://squall")
    resp = await client.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
    assert resp.status_code == 201, resp.text
    client.headers["X-Auth-Token"] = resp.json()["token"]
    return client


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    client = await client_for(runtime)
    try:
        yield client
    finally:
        await client.aclose()


class Client:
    """The API as the tests use it: start, wait for, inspect executions."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api

    async def start(self, action: str, **params: Any) -> str:
        resp = await self.api.post(
            "/api/v1/executions", json={"action": action, "parameters": params}
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async def get(self, execution_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/api/v1/executions/{execution_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def wait(
        self,
        execution_id: str,
        *,
        timeout: float = 30,
        statuses: frozenset[str] | set[str] = frozenset(TERMINAL),
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            doc = await self.get(execution_id)
            return doc if doc["status"] in statuses else None

        return await eventually(
            reached, timeout=timeout, message=f"execution {execution_id} to reach {statuses}"
        )

    async def run(self, action: str, **params: Any) -> dict[str, Any]:
        return await self.wait(await self.start(action, **params))

    async def children(self, execution_id: str) -> list[dict[str, Any]]:
        resp = await self.api.get(
            f"/api/v1/executions/{execution_id}/children", params={"limit": 1000}
        )
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    async def child(self, execution_id: str, task: str) -> dict[str, Any]:
        """The latest child execution of ``task``, waiting for it to exist."""

        async def found() -> dict[str, Any] | None:
            mine = [
                c
                for c in await self.children(execution_id)
                if (c["context"].get("orquesta") or {}).get("task_name") == task
                or (c["context"].get("chain") or {}).get("name") == task
            ]
            return mine[-1] if mine else None

        return await eventually(found, message=f"a child execution of task {task}")


@pytest.fixture
def wf(api: httpx.AsyncClient) -> Client:
    return Client(api)
