"""A real HTTP server (uvicorn on 127.0.0.1:0) over an in-process runtime, and an SSE reader.

Server-sent events need a real server: httpx's ASGI transport buffers whole responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from squall.api.app import create_app
from squall.config import load_settings
from squall.engine.runtime import Runtime
from squall.testing import eventually

FIXTURE_PACKS = Path(__file__).parent / "fixtures"
ADMIN_PASSWORD = "test-password-1"
TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


@pytest.fixture
async def runtime(db_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    home = tmp_path / "home"
    settings = load_settings(
        environ={},
        home=home,
        database_url="" if db_url.startswith("sqlite") else db_url,
        packs_path=(str(FIXTURE_PACKS),),
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
    rt.stream.poll_interval = 0.02
    try:
        yield rt
    finally:
        await rt.close()


async def _serve(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # leave the test runner's signal handlers alone

    server = _Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=10, message="uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def base_url(runtime: Runtime) -> AsyncIterator[str]:
    async for url in _serve(create_app(runtime)):
        yield url


@pytest.fixture
def serve() -> Callable[[Any], contextlib.AbstractAsyncContextManager[str]]:
    """Serve another ASGI app for the length of an ``async with`` (yields its URL)."""
    return contextlib.asynccontextmanager(_serve)


@pytest.fixture
async def token(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        resp = await client.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
        assert resp.status_code == 201, resp.text
        return str(resp.json()["token"])


@pytest.fixture
async def api(base_url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"X-Auth-Token": token}, timeout=30
    ) as client:
        yield client


@dataclass
class Event:
    id: str | None
    event: str
    raw: str

    @property
    def data(self) -> Any:
        return json.loads(self.raw)


@dataclass
class SSE:
    """Reads frames of one streaming response."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    _lines: Any = None

    async def next(self, timeout: float = 10) -> Event | None:
        """The next event (``None`` when the server closed the stream)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        data: list[str] = []
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), timeout)
            except StopAsyncIteration:
                return None
            if line == "":
                if data:
                    return Event(fields.get("id"), fields.get("event", "message"), "\n".join(data))
                fields.clear()
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    async def collect(self, until: Callable[[Event], bool], timeout: float = 20) -> list[Event]:
        """Events up to and including the first one ``until`` accepts."""
        out: list[Event] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            assert remaining > 0, f"timed out; got {[(e.event, e.id) for e in out]}"
            ev = await self.next(remaining)
            assert ev is not None, f"stream closed early; got {[(e.event, e.id) for e in out]}"
            out.append(ev)
            if until(ev):
                return out

    async def rest(self, timeout: float = 20) -> list[Event]:
        """Every event until the server closes the stream."""
        out: list[Event] = []
        while (ev := await self.next(timeout)) is not None:
            out.append(ev)
        return out


@pytest.fixture
def sse(api: httpx.AsyncClient) -> Callable[..., contextlib.AbstractAsyncContextManager[SSE]]:
    @contextlib.asynccontextmanager
    async def _open(
        path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> AsyncIterator[SSE]:
        async with api.stream("GET", path, params=params, headers=headers or {}) as resp:
            assert resp.status_code == 200, (await resp.aread()).decode()
            assert resp.headers["content-type"].startswith("text/event-stream")
            yield SSE(resp)

    return _open


async def start(api: httpx.AsyncClient, action: str, **params: Any) -> str:
    resp = await api.post("/api/v1/executions", json={"action": action, "parameters": params})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def wait(api: httpx.AsyncClient, execution_id: str, timeout: float = 20) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in TERMINAL else None

    return await eventually(done, timeout=timeout, message=f"execution {execution_id} to finish")


@pytest.fixture
def helpers() -> Any:
    """``start``/``wait`` for test modules (conftest modules are not importable by name)."""

    class _H:
        start = staticmethod(start)
        wait = staticmethod(wait)
        terminal = TERMINAL

    return _H
