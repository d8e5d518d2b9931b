"""``squall execution tail`` and ``squall run --tail`` follow the stream (or poll without it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from squall.api.app import create_app
from squall.cli.main import main
from squall.engine.runtime import Runtime


@pytest.fixture
def cli(base_url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SQUALL_TOKEN", token)
    monkeypatch.delenv("SQUALL_API_KEY", raising=False)

    async def run(*argv: str, url: str = base_url) -> int:
        return await asyncio.to_thread(main, ["--url", url, *argv])

    return run


async def test_tail_prints_output_live_and_exits_with_the_status(
    api: httpx.AsyncClient, cli: Any, helpers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    eid = await helpers.start(api, "streampack.lines", count=4, pause=0.1)
    assert await cli("execution", "tail", eid) == 0
    out, err = capsys.readouterr()
    assert out == "out 1\nout 2\nout 3\nout 4\n"
    assert "err 1\nerr 2\nerr 3\nerr 4\n" in err and "succeeded" in err

    failing = await helpers.start(api, "core.local", cmd="echo bye; exit 3")
    assert await cli("execution", "tail", failing) == 1
    out, err = capsys.readouterr()
    assert out == "bye\n" and "failed" in err


async def test_run_with_tail(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("run", "--tail", "streampack.lines", "count=2") == 0
    out, _ = capsys.readouterr()
    # The output as it came, then the result (printed by the detail view).
    assert out.startswith("out 1\nout 2\n")


async def test_tail_polls_when_the_server_has_no_stream(
    runtime: Runtime,
    api: httpx.AsyncClient,
    cli: Any,
    serve: Any,
    helpers: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(runtime)

    async def without_stream(scope: Any, receive: Any, send: Any) -> None:
        """An older Squall: no /stream/v1."""
        if scope["type"] == "http" and scope["path"].startswith("/stream/"):
            await JSONResponse({"faultstring": "Not Found"}, 404)(scope, receive, send)
            return
        await app(scope, receive, send)

    eid = await helpers.start(api, "streampack.lines", count=3, pause=0.05)
    async with serve(without_stream) as old_server:
        assert await cli("execution", "tail", eid, url=old_server) == 0
    out, err = capsys.readouterr()
    assert out == "out 1\nout 2\nout 3\n" and "succeeded" in err
    assert await cli("execution", "tail", "000000000000000000000000") != 0
