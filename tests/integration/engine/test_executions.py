"""Executions end to end inside one process: request → schedule → run → result, on both backends."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from squall.engine.runtime import Runtime
from squall.errors import NotFoundError, ParameterError
from squall.store import executions as exrepo
from squall.store.util import utcnow
from squall.testing import eventually

TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


async def run(api: httpx.AsyncClient, action: str, **params: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/executions", json={"action": action, "parameters": params})
    assert resp.status_code == 201, resp.text
    return await wait(api, resp.json()["id"])


async def wait(api: httpx.AsyncClient, execution_id: str, timeout: float = 20) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in TERMINAL else None

    return await eventually(done, timeout=timeout, message=f"execution {execution_id} to finish")


async def test_noop_runs_through_the_full_lifecycle(api: httpx.AsyncClient) -> None:
    doc = await run(api, "core.noop")
    assert doc["status"] == "succeeded"
    assert doc["result"] == {"failed": False, "succeeded": True, "return_code": 0}
    assert [e["status"] for e in doc["log"]] == ["requested", "scheduled", "running", "succeeded"]
    assert doc["action"]["ref"] == "core.noop" and doc["runner"]["name"] == "noop"
    assert doc["context"]["user"] == "admin"
    assert doc["end_timestamp"] >= doc["start_timestamp"]


async def test_shell_output_is_stored_in_chunks(api: httpx.AsyncClient) -> None:
    doc = await run(api, "core.local", cmd="echo out; echo err >&2; exit 3")
    assert doc["status"] == "failed"
    assert doc["result"]["return_code"] == 3
    assert doc["result"]["stdout"] == "out" and doc["result"]["stderr"] == "err"
    text = (await api.get(f"/api/v1/executions/{doc['id']}/output")).text
    assert "out\n" in text and "err\n" in text
    chunks = (await api.get(f"/api/v1/executions/{doc['id']}/output/chunks")).json()
    assert chunks["done"] and {c["stream"] for c in chunks["chunks"]} == {"stdout", "stderr"}


async def test_output_can_be_tailed_while_running(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/executions",
        json={"action": "core.local", "parameters": {"cmd": "echo first; sleep 30; echo never"}},
    )
    execution_id = resp.json()["id"]

    async def first_line() -> bool:
        page = (await api.get(f"/api/v1/executions/{execution_id}/output/chunks")).json()
        return any("first" in c["data"] for c in page["chunks"]) and not page["done"]

    await eventually(first_line, timeout=10, message="live output before the end")
    await api.delete(f"/api/v1/executions/{execution_id}")
    doc = await wait(api, execution_id)
    assert doc["status"] == "canceled"


async def test_cancel_kills_the_process_group(api: httpx.AsyncClient) -> None:
    marker = f"squall-test-{uuid.uuid4().hex}"
    resp = await api.post(
        "/api/v1/executions",
        json={"action": "core.local", "parameters": {"cmd": f"sleep 60 & sleep 61 # {marker}"}},
    )
    execution_id = resp.json()["id"]

    def alive() -> bool:
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        return marker in out

    await eventually(alive, timeout=10, message="the action to start")
    resp = await api.delete(f"/api/v1/executions/{execution_id}")
    assert resp.status_code == 200
    doc = await wait(api, execution_id)
    assert doc["status"] == "canceled"
    await eventually(lambda: not alive(), timeout=5, message="the process group to die")
    # Canceling again is a conflict, not a crash.
    again = await api.delete(f"/api/v1/executions/{execution_id}")
    assert again.status_code == 409 and "already canceled" in again.json()["faultstring"]


async def test_timeout_gives_status_timeout(api: httpx.AsyncClient) -> None:
    doc = await run(api, "core.local", cmd="sleep 20", timeout=1)
    assert doc["status"] == "timeout"
    assert doc["result"]["return_code"] == -9


async def test_python_action_with_datastore_and_types(api: httpx.AsyncClient) -> None:
    await api.put("/api/v1/keys/testpack_greeting", json={"value": "hi from kv"})
    doc = await run(api, "testpack.types", ratio=0.5, items=["a", 1], opts={"k": "v"})
    assert doc["status"] == "succeeded", doc
    result = doc["result"]["result"]
    assert result["count"] == [2, "int"]
    assert result["doubled"] == [4, "int"]  # default rendered from another parameter
    assert result["ratio"] == [0.5, "float"]
    assert result["items"] == [["a", 1], "list"] and result["opts"] == [{"k": "v"}, "dict"]
    assert result["from_kv"] == ["hi from kv", "str"]

    doc = await run(api, "testpack.kv_roundtrip", value="v1")
    assert doc["status"] == "succeeded", doc
    assert doc["result"]["result"] == {"got": "v1", "listed": ["testpack:probe"]}
    local = (await api.get("/api/v1/keys/testpack:probe")).json()
    assert local["value"] == "v1"
    assert (await api.get("/api/v1/keys/shared")).json()["value"] == "v1"


async def test_bad_parameters_are_rejected_at_request(runtime: Runtime) -> None:
    admin = runtime.system_principal
    with pytest.raises(ParameterError, match="cmd"):
        await runtime.executions.request(admin, "core.local", {})
    with pytest.raises(ParameterError, match="nope"):
        await runtime.executions.request(admin, "core.local", {"cmd": "true", "nope": 1})
    with pytest.raises(ParameterError, match="immutable"):
        await runtime.executions.request(admin, "core.local_sudo", {"cmd": "id", "sudo": False})
    with pytest.raises(ParameterError, match="timeout"):
        await runtime.executions.request(admin, "core.local", {"cmd": "true", "timeout": "abc"})
    with pytest.raises(NotFoundError, match=r"core\.missing"):
        await runtime.executions.request(admin, "core.missing", {})


async def test_api_errors_have_status_and_faultstring(api: httpx.AsyncClient) -> None:
    bad = await api.post("/api/v1/executions", json={"action": "core.local", "parameters": {}})
    assert bad.status_code == 400 and "cmd" in bad.json()["faultstring"]
    body = await api.post("/api/v1/executions", json={"parameters": {}})
    assert body.status_code == 400 and "body.action" in body.json()["faultstring"]
    missing = await api.get("/api/v1/executions/0123456789abcdef01234567")
    assert missing.status_code == 404 and "not found" in missing.json()["faultstring"]
    anon = await api.get("/api/v1/executions", headers={"X-Auth-Token": "bogus"})
    assert anon.status_code == 401
    huge = await api.post(
        "/api/v1/executions",
        content=b'{"action": "core.noop", "parameters": {"x": "'
        + b"a" * (11 * 1024 * 1024)
        + b'"}}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413


async def test_secrets_are_masked(api: httpx.AsyncClient) -> None:
    doc = await run(api, "testpack.secret_echo", visible="shown", token="hunter2")
    assert doc["status"] == "succeeded"
    assert doc["parameters"]["token"] == "********"
    assert doc["liveaction"]["parameters"]["token"] == "********"
    listed = (await api.get("/api/v1/executions", params={"action": "testpack.secret_echo"})).json()
    assert "hunter2" not in str(listed)


async def test_re_run_with_overrides(api: httpx.AsyncClient) -> None:
    first = await run(api, "core.local", cmd="echo one")
    resp = await api.post(f"/api/v1/executions/{first['id']}/re_run", json={"parameters": {}})
    again = await wait(api, resp.json()["id"])
    assert again["result"]["stdout"] == "one" and again["context"]["re-run"]["ref"] == first["id"]
    resp = await api.post(
        f"/api/v1/executions/{first['id']}/re_run", json={"parameters": {"cmd": "echo two"}}
    )
    assert (await wait(api, resp.json()["id"]))["result"]["stdout"] == "two"


async def test_list_filters_pagination_and_attributes(api: httpx.AsyncClient) -> None:
    for i in range(3):
        await run(api, "core.local", cmd=f"echo {i}")
    await run(api, "core.noop")
    resp = await api.get(
        "/api/v1/executions",
        params={"action": "core.local", "limit": 2, "include_attributes": "id,status"},
    )
    assert resp.headers["x-total-count"] == "3" and resp.headers["x-limit"] == "2"
    docs = resp.json()
    assert len(docs) == 2 and set(docs[0]) == {"id", "status"}
    resp = await api.get("/api/v1/executions", params={"status": "succeeded,failed", "offset": 3})
    assert resp.headers["x-total-count"] == "4" and len(resp.json()) == 1


async def test_expired_lease_is_abandoned_by_gc(runtime: Runtime) -> None:
    """A runner that dies stops renewing; its execution must become abandoned."""
    admin = runtime.system_principal
    ex = await runtime.executions.request(admin, "core.noop", {})
    now = utcnow()

    def steal(conn):  # type: ignore[no-untyped-def]
        # Simulate another (now dead) runner process holding the execution.
        exrepo.set_status(
            conn,
            ex.id,
            status="running",
            now=now,
            values={"lease_owner": "dead-runner", "lease_expires_at": now + timedelta(seconds=1)},
        )

    await runtime.db.write(steal)

    async def abandoned() -> bool:
        got = await runtime.executions.get(ex.id)
        return got.status == "abandoned"

    await eventually(abandoned, timeout=10, message="the execution to be abandoned")
    got = await runtime.executions.get(ex.id)
    assert "dead-runner" in got.result["error"]


async def test_restart_abandons_what_was_running(tmp_path, settings_factory) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    settings = settings_factory(home, "sqlite:///unused")
    rt = await Runtime.open(settings)
    await rt.ensure_admin()
    await rt.packs.register_all()
    ex = await rt.executions.request(rt.system_principal, "core.noop", {})
    now = utcnow()
    await rt.db.write(
        lambda c: exrepo.set_status(
            c,
            ex.id,
            status="running",
            now=now,
            values={"lease_owner": "old", "lease_expires_at": now + timedelta(hours=1)},
        )
    )
    await rt.close()  # "crash": nothing was running it
    rt = await Runtime.open(settings)
    try:
        await rt.start_services()
        got = await rt.executions.get(ex.id)
        assert got.status == "abandoned"
        assert "restarted" in got.result["error"]
    finally:
        await rt.close()


def test_no_leftover_processes() -> None:
    """Guard: earlier tests must not leave action processes behind."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "squall-test-" not in out.replace(f"pid {os.getpid()}", "")


async def test_start_up_registration_skips_unchanged_packs(runtime: Runtime) -> None:
    """``squall up`` only walks the pack directories when nothing changed since last time."""
    results = await runtime.packs.register_changed()
    assert results and all(r.unchanged for r in results)
    assert all(not r.counts for r in results)  # nothing was loaded
    pack_dir = next(p for p in runtime.packs.search_paths() if (p / "testpack").is_dir())
    meta = pack_dir / "testpack" / "actions" / "types.yaml"
    meta.touch()
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 1_000_000))
    results = await runtime.packs.register_changed()
    assert any(r.ref == "testpack" and r.counts for r in results)  # loaded again
    results = await runtime.packs.register_changed()
    assert all(r.unchanged and not r.counts for r in results)


async def test_a_burst_beyond_runner_capacity_never_waits_for_the_safety_poll(
    db_url: str, tmp_path, settings_factory, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """More executions than runner slots: each freed slot takes the next one at once. The slow
    poll is only a safety net — with it made an hour long, a lost wake-up stalls this test
    (a claim that filled the free slots while others freed used to park the claim loop; the
    race shows on PostgreSQL, where claims are slower — on SQLite this passes either way)."""
    from squall.engine.runner_host import RunnerHost

    monkeypatch.setattr(RunnerHost, "POLL_SECONDS", 3600.0)
    home = tmp_path / "home"
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{home / 'squall.db'}"
    rt = await Runtime.open(settings_factory(home, db_url, runner_concurrency=3))
    try:
        await rt.ensure_admin()
        await rt.packs.register_all()
        await rt.start_services()
        ids = []
        for _ in range(60):
            ex = await rt.executions.request(rt.system_principal, "core.local", {"cmd": "true"})
            ids.append(ex.id)

        async def all_done() -> bool:
            rows = await rt.db.read(lambda conn: [exrepo.get(conn, i) for i in ids])
            return all(r is not None and r.status == "succeeded" for r in rows)

        await eventually(all_done, timeout=60, message="60 executions on 3 runner slots")
    finally:
        await rt.close()
