"""``/stream/v1/executions/{id}/output``: live output of one execution, on both backends."""

from __future__ import annotations

from typing import Any

import httpx

OUTPUT = "st2.execution.output__create"


def _text(events: list[Any], stream: str | None = None) -> str:
    return "".join(
        e.data["data"]
        for e in events
        if e.event == OUTPUT and (stream is None or e.data["output_type"] == stream)
    )


async def test_live_output_ends_with_eof_when_finished(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    eid = await helpers.start(api, "streampack.lines", count=5, pause=0.1)
    async with sse(f"/stream/v1/executions/{eid}/output") as stream:
        events = await stream.rest()
    assert events[-1].event == "EOF"
    assert all(e.event == OUTPUT for e in events[:-1])
    assert _text(events, "stdout") == "".join(f"out {i}\n" for i in range(1, 6))
    assert _text(events, "stderr") == "".join(f"err {i}\n" for i in range(1, 6))
    assert {e.data["execution_id"] for e in events[:-1]} == {eid}
    doc = await helpers.wait(api, eid)
    assert doc["status"] == "succeeded"
    # Same text as the plain endpoint, in the same order.
    assert _text(events) == (await api.get(f"/api/v1/executions/{eid}/output")).text


async def test_finished_execution_sends_everything_then_eof(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    eid = await helpers.start(api, "streampack.lines", count=3)
    await helpers.wait(api, eid)
    async with sse(f"/stream/v1/executions/{eid}/output", output_type="stderr") as stream:
        events = await stream.rest(timeout=5)
    assert [e.event for e in events] == [OUTPUT] * (len(events) - 1) + ["EOF"]
    assert _text(events) == "err 1\nerr 2\nerr 3\n"
    # ``last`` is the newest execution.
    async with sse("/stream/v1/executions/last/output") as stream:
        events = await stream.rest(timeout=5)
    assert "out 3\n" in _text(events) and events[-1].event == "EOF"


async def test_output_stream_resumes_from_last_event_id(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    eid = await helpers.start(api, "streampack.lines", count=6, pause=0.1)
    path = f"/stream/v1/executions/{eid}/output"
    async with sse(path, output_type="stdout") as stream:
        first = await stream.collect(lambda e: "out 2\n" in _text([e]))
    async with sse(path, headers={"Last-Event-ID": first[-1].id}, output_type="stdout") as stream:
        rest = await stream.rest()
    assert rest[-1].event == "EOF"
    assert _text(first) + _text(rest) == "".join(f"out {i}\n" for i in range(1, 7))


async def test_output_stream_errors(api: httpx.AsyncClient) -> None:
    resp = await api.get("/stream/v1/executions/000000000000000000000000/output")
    assert resp.status_code == 404
    assert "faultstring" in resp.json()
    resp = await api.get("/stream/v1/executions/last/output", params={"output_type": "both"})
    assert resp.status_code == 400
