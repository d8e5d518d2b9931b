"""Two runtimes ("processes") on one PostgreSQL database: registry, singletons, hand-backs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from squall.api.app import create_app
from squall.auth.service import SYSTEM_USER, Principal
from squall.engine.gc import GarbageCollector
from squall.engine.runtime import Runtime
from squall.errors import StoreError
from squall.store import events, leases, processes
from squall.store.db import Database
from squall.store.migrate import upgrade
from squall.store.schema import executions, trigger_instances
from squall.store.util import utcnow
from squall.testing import eventually

pytestmark = pytest.mark.postgres

ADMIN = Principal(SYSTEM_USER, ("system_admin",), "internal")


async def test_status_shows_both_processes_and_forgets_a_stopped_one(
    open_runtime: Callable[..., Any],
) -> None:
    api_rt: Runtime = await open_runtime(("api", "rules", "timers", "gc"))
    runner_rt: Runtime = await open_runtime(("runner", "scheduler"))
    app = create_app(api_rt)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://squall"
    ) as client:
        token = (await client.post("/auth/v1/tokens", auth=("admin", "test-password-1"))).json()
        client.headers["X-Auth-Token"] = token["token"]
        groups = (await client.get("/api/v1/service_registry/groups")).json()
        assert groups == {"groups": ["api", "gc", "rules", "runner", "scheduler", "timers"]}
        members = (await client.get("/api/v1/service_registry/groups/runner/members")).json()
        (member,) = members["members"]
        assert member["group_id"] == "runner"
        assert member["member_id"] == runner_rt.process_id
        caps = member["capabilities"]
        assert caps["pid"] > 0 and caps["hostname"] and caps["type"] == "active"
        assert caps["in_flight"] == {"executions": 0}
        missing = await client.get("/api/v1/service_registry/groups/sensors/members")
        assert missing.status_code == 404
        assert "not found" in missing.json()["faultstring"]

        docs = (await client.get("/api/v1/service_registry/processes")).json()
        assert {d["id"] for d in docs} == {api_rt.process_id, runner_rt.process_id}
        assert all(d["status"] == "alive" for d in docs)

        await runner_rt.close()
        docs = (await client.get("/api/v1/service_registry/processes")).json()
        assert [d["id"] for d in docs] == [api_rt.process_id]

        # A process that died keeps its row, shown as lost, until gc purges it.
        old = utcnow() - timedelta(minutes=1)
        await api_rt.db.write(
            lambda conn: processes.register(
                conn, id="ghost:1:x", roles=["runner"], host="ghost", pid=1, info={}, now=old
            )
        )
        docs = {d["id"]: d for d in (await client.get("/api/v1/service_registry/processes")).json()}
        assert docs["ghost:1:x"]["status"] == "lost"
        groups = (await client.get("/api/v1/service_registry/groups")).json()
        assert "runner" not in groups["groups"]
        gone = await api_rt.db.write(
            lambda conn: processes.purge(conn, before=utcnow() - timedelta(seconds=30))
        )
        assert gone == 1


async def test_one_gc_leader_and_takeover_when_it_stops(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        first = GarbageCollector(db, owner="p1", lease_seconds=30)
        second = GarbageCollector(db, owner="p2", lease_seconds=30)
        assert await first.hold_lease()
        assert not await second.hold_lease()
        assert await first.hold_lease()  # renewal
        await first.stop()  # releases: no need to wait for the lease to lapse
        assert await second.hold_lease()
        holder = await db.read(lambda conn: leases.holder(conn, "gc", now=utcnow()))
        assert holder == "p2"
    finally:
        await db.close()


async def test_a_stopping_rules_engine_hands_its_claims_back(
    open_runtime: Callable[..., Any],
) -> None:
    rt: Runtime = await open_runtime(("rules",))
    assert rt.rules_engine is not None
    now = utcnow()
    row = events.new_instance(
        id="a" * 24,
        trigger="core.st2.webhook",
        trigger_type="core.st2.webhook",
        payload={},
        now=now,
    )

    def _claimed(conn: sa.Connection) -> None:
        events.insert_instances(conn, [row])
        conn.execute(
            trigger_instances.update()
            .where(trigger_instances.c.id == row["id"])
            .values(status="processing", claimed_by=rt.process_id, claim_expires_at=now)
        )

    await rt.db.write(_claimed)
    await rt.rules_engine.stop()
    status = await rt.db.read(
        lambda conn: conn.execute(
            sa.select(trigger_instances.c.status, trigger_instances.c.claimed_by).where(
                trigger_instances.c.id == row["id"]
            )
        ).one()
    )
    assert tuple(status) == ("pending", None)


async def test_an_abandoned_execution_is_retried_when_the_policy_says_so(
    open_runtime: Callable[..., Any],
) -> None:
    rt: Runtime = await open_runtime(("api", "gc", "scheduler"), lease_seconds=1.0)
    await rt.db.write(
        lambda conn: conn.execute(
            sa.text(
                "INSERT INTO policies (id, ref, pack, name, resource_ref, policy_type, enabled, "
                "doc, created_at, updated_at) VALUES ('p0000000000000000000000a', "
                "'testpack.retry_abandoned', 'testpack', 'retry_abandoned', 'core.noop', "
                "'action.retry', true, CAST(:doc AS jsonb), now(), now())"
            ),
            {
                "doc": '{"ref": "testpack.retry_abandoned", "name": "retry_abandoned", '
                '"resource_ref": "core.noop", "policy_type": "action.retry", "enabled": true, '
                '"parameters": {"retry_on": "abandoned", "max_retry_count": 1}}'
            },
        )
    )
    await rt.db.write(lambda conn: events.bump_version(conn, "packs"))
    rt.policies.invalidate()
    ex = await rt.executions.request(ADMIN, "core.noop", {})
    # A runner claimed it and died: running, with a lease that has expired.
    await rt.db.write(
        lambda conn: conn.execute(
            executions.update()
            .where(executions.c.id == ex.id)
            .values(
                status="running",
                lease_owner="dead:1:runner",
                lease_expires_at=utcnow() - timedelta(seconds=5),
            )
        )
    )

    async def retried() -> list[Any]:
        rows = await rt.db.read(
            lambda conn: conn.execute(
                sa.select(executions.c.id, executions.c.status, executions.c.attempt)
            ).all()
        )
        return [r for r in rows if r.attempt == 1]

    (retry,) = await eventually(retried, timeout=10, message="a retry of the abandoned execution")
    original = await rt.executions.get(ex.id)
    assert original.status == "abandoned"
    assert retry.id != ex.id


async def test_serve_refuses_an_older_or_newer_schema(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        await db.write(
            lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        )
        with pytest.raises(StoreError) as older:
            await upgrade(db, apply=False)
        assert "squall db upgrade" in str(older.value)
        await db.write(
            lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        )
        with pytest.raises(StoreError) as newer:
            await upgrade(db, apply=False)
        assert "newer than this Squall" in str(newer.value)
    finally:
        await db.close()


async def test_an_unreachable_database_is_waited_for_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(StoreError, match="unreachable"):
            await db.wait_reachable(attempts=2)
    finally:
        await db.close()
    lines = [r for r in caplog.records if "cannot reach the database" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None  # one line, no traceback
    assert "retrying in" in lines[0].getMessage()
