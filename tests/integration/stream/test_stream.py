"""``/stream/v1/stream`` end to end over HTTP, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from squall.engine.runtime import Runtime

ALL = "st2.execution__create,st2.execution__update,st2.execution.output__create"
OUTPUT = "st2.execution.output__create"


def _is_end(execution_id: str) -> Any:
    def check(e: Any) -> bool:
        return (
            e.event == "st2.execution__update"
            and e.data["id"] == execution_id
            and e.data["status"] in ("succeeded", "failed")
        )

    return check


def _output(events: list[Any], execution_id: str, stream: str) -> str:
    return "".join(
        e.data["data"]
        for e in events
        if e.event == OUTPUT
        and e.data["execution_id"] == execution_id
        and e.data["output_type"] == stream
    )


async def test_create_output_and_updates_arrive_in_order(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    async with sse("/stream/v1/stream", events=ALL) as stream:
        eid = await helpers.start(api, "streampack.lines", count=3, pause=0.05)
        events = await stream.collect(_is_end(eid))
    mine = [e for e in events if (e.data.get("execution_id") or e.data.get("id")) == eid]
    assert mine[0].event == "st2.execution__create"
    assert mine[0].data["action"]["ref"] == "streampack.lines"
    assert _output(mine, eid, "stdout") == "out 1\nout 2\nout 3\n"
    assert _output(mine, eid, "stderr") == "err 1\nerr 2\nerr 3\n"
    out = [e for e in mine if e.event == OUTPUT]
    assert out[0].data["action_ref"] == "streampack.lines"
    assert out[0].data["runner_ref"] == "local-shell-cmd"
    assert out[0].data["timestamp"].endswith("Z")
    # Every event has an id; ids never go back; the final state is the API's document.
    ids = [int(e.id) for e in events]
    assert ids == sorted(ids)
    final = mine[-1].data
    assert final == (await api.get(f"/api/v1/executions/{eid}")).json()
    assert final["result"]["stdout"] == "out 1\nout 2\nout 3"


async def test_filters_by_event_action_and_execution(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    async with (
        sse("/stream/v1/stream", events=ALL, action_refs="streampack.lines") as by_action,
        sse("/stream/v1/stream", events="st2.execution.output__*") as only_output,
        sse("/stream/v1/stream") as default,
    ):
        noop = await helpers.start(api, "core.noop")
        eid = await helpers.start(api, "streampack.lines", count=1)
        async with sse("/stream/v1/stream", events=ALL, execution_ids=f"{noop},{eid}") as by_id:
            got = await by_action.collect(_is_end(eid))
            assert {e.data.get("execution_id") or e.data["id"] for e in got} == {eid}
            outs = await only_output.collect(lambda e: e.data["data"] == "err 1\n")
            assert {e.event for e in outs} == {OUTPUT}
            # Without events=, StackStorm's default set: executions and liveactions, no output.
            seen = await default.collect(_is_end(eid))
            names = {e.event for e in seen}
            assert OUTPUT not in names
            assert {"st2.liveaction__update", "st2.execution__update"} <= names
            live = [e for e in seen if e.event.startswith("st2.liveaction")]
            assert all(e.data["id"] in (noop, eid) and "status" in e.data for e in live)
            # Subscribed after both started: only what changed since.
            late = await helpers.wait(api, eid)
            assert late["status"] == "succeeded"
            await helpers.wait(api, noop)
            other = await helpers.start(api, "core.noop")
            await helpers.wait(api, other)
            tail = await by_id.collect(lambda e: e.data.get("id") == noop, timeout=5)
            assert all((e.data.get("execution_id") or e.data["id"]) in (noop, eid) for e in tail)


async def test_end_event_closes_the_stream(api: httpx.AsyncClient, sse: Any, helpers: Any) -> None:
    eid = await helpers.start(api, "streampack.lines", count=2, pause=0.1)
    params = {"events": ALL, "end_event": "st2.execution__update", "end_execution_id": eid}
    async with sse("/stream/v1/stream", **params) as stream:
        other = await helpers.start(api, "core.noop")
        events = await stream.rest()
    assert events and _is_end(eid)(events[-1])
    assert sum(1 for e in events if _is_end(eid)(e)) == 1
    await helpers.wait(api, other)

    # Already finished when the client connects: its final state, then the end.
    async with sse("/stream/v1/stream", **params) as stream:
        events = await stream.rest(timeout=5)
    assert [(e.event, e.data["id"], e.data["status"]) for e in events] == [
        ("st2.execution__update", eid, "succeeded")
    ]


async def test_reconnecting_with_last_event_id_misses_nothing(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    async with sse("/stream/v1/stream", events=ALL) as stream:
        first = await helpers.start(api, "streampack.lines", count=1)
        before = await stream.collect(_is_end(first))
    cursor = before[-1].id
    assert cursor is not None

    # While nobody listens: more executions, with output.
    missed = [await helpers.start(api, "streampack.lines", count=4) for _ in range(3)]
    for eid in missed:
        await helpers.wait(api, eid)

    for how in ("header", "query"):
        headers = {"Last-Event-ID": cursor} if how == "header" else {}
        query = {"last_event_id": cursor} if how == "query" else {}
        async with sse("/stream/v1/stream", headers=headers, events=ALL, **query) as stream:
            pending = set(missed)
            got: list[Any] = []

            def done(e: Any, pending: set[str] = pending) -> bool:
                if e.event == "st2.execution__update" and e.data["status"] == "succeeded":
                    pending.discard(e.data["id"])
                return not pending

            got = await stream.collect(done)
        assert first not in {e.data.get("execution_id") or e.data["id"] for e in got}
        for eid in missed:
            names = [e.event for e in got if e.data.get("id") == eid]
            assert names[0] == "st2.execution__create"
            # Every chunk exactly once, in order.
            expected = "".join(f"out {i}\n" for i in range(1, 5))
            assert _output(got, eid, "stdout") == expected
            assert _output(got, eid, "stderr") == expected.replace("out", "err")


async def test_a_slow_client_catches_up_from_the_database(
    runtime: Runtime, api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    runtime.stream.max_queued_batches = 1  # any backlog makes the subscriber replay
    async with sse("/stream/v1/stream", events=OUTPUT) as stream:
        ids = [await helpers.start(api, "streampack.lines", count=5) for _ in range(5)]
        for eid in ids:
            await helpers.wait(api, eid)
        pending = {(eid, n) for eid in ids for n in range(1, 6)}
        got: list[Any] = []

        def done(e: Any) -> bool:
            got.append(e)
            for line in e.data["data"].splitlines():
                if line.startswith("out "):
                    pending.discard((e.data["execution_id"], int(line[4:])))
            return not pending

        await stream.collect(done)
    for eid in ids:
        assert _output(got, eid, "stdout") == "".join(f"out {i}\n" for i in range(1, 6))


async def test_invalid_cursor_is_rejected(api: httpx.AsyncClient) -> None:
    resp = await api.get("/stream/v1/stream", headers={"Last-Event-ID": "yesterday"})
    assert resp.status_code == 400
    assert "Last-Event-ID" in resp.json()["faultstring"]


async def test_heartbeats_while_idle(runtime: Runtime, sse: Any) -> None:
    runtime.stream.heartbeat = 0.1
    async with sse("/stream/v1/stream") as stream:
        lines = stream.response.aiter_lines()
        comments = 0
        while comments < 4:
            line = await anext(lines)
            assert not line.startswith(("data:", "event:")), line
            comments += line.startswith(":")


async def test_secrets_are_masked_in_stream_data(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    events = ",".join([ALL, "st2.liveaction__create", "st2.liveaction__update"])
    async with sse("/stream/v1/stream", events=events) as stream:
        eid = await helpers.start(api, "streampack.secret_echo", visible="shown", token="hunter2")
        got = await stream.collect(_is_end(eid))
    raw = "".join(e.raw for e in got)
    assert "hunter2" not in raw
    docs = [e.data for e in got if e.event != OUTPUT]
    assert docs and all(d["parameters"]["token"] == "********" for d in docs)
    assert "shown" in _output(got, eid, "stdout")


async def test_stream_requires_authentication(base_url: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as anon:
        for path in ("/stream/v1/stream", "/stream/v1/executions/last/output"):
            resp = await anon.get(path)
            assert resp.status_code == 401, path
            assert "faultstring" in resp.json()
        # st2client passes the token as a query parameter.
        async with anon.stream("GET", "/stream/v1/stream", params={"x-auth-token": token}) as r:
            assert r.status_code == 200
            assert (await anext(r.aiter_lines())).startswith(":")


async def test_core_announcement_is_published_on_its_route(
    api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    async with sse("/stream/v1/stream", events="st2.announcement__*") as stream:
        eid = await helpers.start(
            api, "core.announcement", message={"text": "deploy done"}, route="chatops"
        )
        default_route = await helpers.start(api, "core.announcement", message={"n": 2})
        seen: dict[str, Any] = {}

        def both(e: Any) -> bool:
            seen[e.event] = e.data
            return len(seen) == 2

        await stream.collect(both)
    assert seen == {
        "st2.announcement__chatops": {"message": {"text": "deploy done"}},
        "st2.announcement__general": {"message": {"n": 2}},
    }
    assert (await helpers.wait(api, eid))["status"] == "succeeded"
    assert (await helpers.wait(api, default_route))["result"] == {"message": {"n": 2}}


async def test_closing_the_service_ends_open_streams(
    runtime: Runtime, api: httpx.AsyncClient, sse: Any, helpers: Any
) -> None:
    """On shutdown the server must not wait for clients that never hang up."""
    eid = await helpers.start(api, "core.local", cmd="sleep 5")
    async with (
        sse("/stream/v1/stream") as stream,
        sse(f"/stream/v1/executions/{eid}/output") as output,
    ):
        await runtime.stream.close()
        # Both responses end (what was already on its way may still arrive first).
        await asyncio.wait_for(stream.rest(), 5)
        assert [e.event for e in await asyncio.wait_for(output.rest(), 5)] == []
    await api.delete(f"/api/v1/executions/{eid}")
