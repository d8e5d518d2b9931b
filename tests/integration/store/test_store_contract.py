"""The store contract: every test runs on SQLite and on PostgreSQL (see ``db`` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from squall.errors import StoreError, ValidationError
from squall.model.ids import new_id
from squall.store import content, identity, kv
from squall.store import executions as ex
from squall.store.db import Database
from squall.store.migrate import current_revision, head_revision, upgrade
from squall.store.schema import execution_output

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": new_id(),
        "action_ref": "core.noop",
        "action_snapshot": "s" * 64,
        "runner_type": "noop",
        "parameters": {"a": 1},
        "context": {"user": "admin"},
        "user": "admin",
        "now": NOW,
    }
    base.update(kw)
    return ex.new_row(**base)


async def _insert(db: Database, *rows: dict[str, Any]) -> None:
    await db.write(lambda conn: ex.insert(conn, list(rows)))


# --- the port ---------------------------------------------------------------------------------


async def test_migrations_are_idempotent_and_report_head(db: Database) -> None:
    assert await current_revision(db) == head_revision()
    assert await upgrade(db) == head_revision()


def test_head_revision_constant_matches_alembic() -> None:
    from squall.store.migrate import HEAD_REVISION, alembic_head

    assert alembic_head() == HEAD_REVISION, "update HEAD_REVISION in squall/store/migrate.py"


def test_schema_and_migrations_do_not_drift(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Autogenerate against a migrated database finds nothing to do (SQLite and PostgreSQL
    share one schema module, so the check on SQLite covers the metadata)."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from squall.store.schema import metadata

    async def _diff() -> list[object]:
        db = Database(f"sqlite:///{tmp_path / 'drift.db'}")
        try:
            await upgrade(db)
            return await db.run_sync_ddl(
                lambda conn: compare_metadata(MigrationContext.configure(conn), metadata)
            )
        finally:
            await db.close()

    assert asyncio.run(_diff()) == []


async def test_newer_schema_is_refused(db: Database) -> None:
    await db.write(
        lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num='9999'"))
    )
    with pytest.raises(StoreError, match="newer than this Squall"):
        await upgrade(db)


async def test_write_returns_value_and_is_visible_to_reads(db: Database) -> None:
    row = _row()
    await _insert(db, row)
    got = await db.read(lambda conn: ex.get(conn, row["id"]))
    assert got is not None and got.parameters == {"a": 1} and got.status == "requested"
    assert got.created_at == NOW


async def test_failed_write_rolls_back_only_itself(db: Database) -> None:
    """Concurrent writes are group-committed on SQLite: one failure must not sink the rest."""
    good = [_row() for _ in range(20)]
    dup = _row()
    await _insert(db, dup)

    def failing(conn: sa.Connection) -> None:
        ex.insert(conn, [_row()])  # would be kept if the batch were not rolled back
        ex.insert(conn, [dup])  # primary key conflict

    results = await asyncio.gather(
        *(db.write(lambda conn, r=r: ex.insert(conn, [r])) for r in good[:10]),
        db.write(failing),
        *(db.write(lambda conn, r=r: ex.insert(conn, [r])) for r in good[10:]),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    total = await db.read(lambda conn: ex.count(conn, ex.ExecutionFilter()))
    assert total == 21  # dup + 20 good; nothing of the failing write


async def test_domain_error_in_write_propagates(db: Database) -> None:
    def bad(conn: sa.Connection) -> None:
        raise ValidationError("nope")

    with pytest.raises(ValidationError, match="nope"):
        await db.write(bad)
    assert await db.write(lambda conn: 42) == 42


# --- executions ------------------------------------------------------------------------------


async def test_claims_move_through_the_lifecycle(db: Database) -> None:
    rows = [_row(now=NOW + timedelta(seconds=i)) for i in range(5)]
    await _insert(db, *rows)
    claimed = await db.write(
        lambda c: ex.claim_requested(c, now=NOW + timedelta(minutes=1), limit=3)
    )
    assert [e.id for e in claimed] == [r["id"] for r in rows[:3]]  # oldest first
    assert all(e.status == "scheduled" for e in claimed)
    lease = NOW + timedelta(minutes=2)
    running = await db.write(
        lambda c: ex.claim_scheduled(c, owner="p1", now=NOW, lease_until=lease, limit=10)
    )
    assert {e.id for e in running} == {r["id"] for r in rows[:3]}
    got = await db.read(lambda c: ex.get(c, rows[0]["id"]))
    assert got is not None
    assert got.status == "running" and got.lease_owner == "p1" and got.lease_expires_at == lease
    assert [entry["status"] for entry in got.log] == ["requested", "scheduled", "running"]

    done = await db.write(
        lambda c: ex.finish(
            c, rows[0]["id"], status="succeeded", result={"x": 1}, now=NOW, owner="p1"
        )
    )
    assert done is not None and done.status == "succeeded"
    got = await db.read(lambda c: ex.get(c, rows[0]["id"]))
    assert got is not None and got.result == {"x": 1} and got.lease_owner is None


async def test_finish_requires_the_lease(db: Database) -> None:
    row = _row()
    await _insert(db, row)
    await db.write(lambda c: ex.claim_requested(c, now=NOW, limit=10))
    await db.write(lambda c: ex.claim_scheduled(c, owner="p1", now=NOW, lease_until=NOW, limit=10))
    stolen = await db.write(
        lambda c: ex.finish(c, row["id"], status="succeeded", result=None, now=NOW, owner="p2")
    )
    assert stolen is None
    got = await db.read(lambda c: ex.get(c, row["id"]))
    assert got is not None and got.status == "running"


async def test_expired_leases_are_abandoned_not_left_running(db: Database) -> None:
    row = _row()
    await _insert(db, row)
    await db.write(lambda c: ex.claim_requested(c, now=NOW, limit=10))
    await db.write(
        lambda c: ex.claim_scheduled(
            c, owner="dead", now=NOW, lease_until=NOW + timedelta(seconds=30), limit=10
        )
    )
    assert await db.write(lambda c: ex.expired_leases(c, now=NOW + timedelta(seconds=10))) == []
    expired = await db.write(lambda c: ex.expired_leases(c, now=NOW + timedelta(seconds=31)))
    assert [e.id for e in expired] == [row["id"]]
    done = await db.write(lambda c: ex.abandon(c, row["id"], now=NOW, reason="runner died"))
    assert done is not None and done.status == "abandoned"
    got = await db.read(lambda c: ex.get(c, row["id"]))
    assert got is not None and got.result == {"error": "runner died"}
    # Renewing a lease the runner no longer holds does nothing.
    assert await db.write(lambda c: ex.renew_leases(c, "dead", [row["id"]], NOW)) == 0


async def test_delayed_executions_wait_until_due(db: Database) -> None:
    row = _row(status="delayed", not_before=NOW + timedelta(seconds=5))
    await _insert(db, row)
    assert await db.write(lambda c: ex.claim_requested(c, now=NOW, limit=10)) == []
    due = await db.write(lambda c: ex.claim_requested(c, now=NOW + timedelta(seconds=6), limit=10))
    assert [e.id for e in due] == [row["id"]]


async def test_cancel_before_and_while_running(db: Database) -> None:
    waiting, running = _row(), _row()
    await _insert(db, waiting, running)
    await db.write(lambda c: ex.claim_requested(c, now=NOW, limit=10))
    await db.write(
        lambda c: ex.claim_scheduled(c, owner="p1", now=NOW, lease_until=NOW, limit=1)
    )  # only the oldest (waiting) is running now
    first, changed = await db.write(lambda c: ex.request_cancel(c, waiting["id"], now=NOW))
    assert changed and first is not None and first.status == "canceling"
    second, changed = await db.write(lambda c: ex.request_cancel(c, running["id"], now=NOW))
    assert changed and second is not None and second.status == "canceled"
    owned = await db.read(lambda c: ex.owned_by(c, "p1", statuses=["canceling"]))
    assert owned == [(waiting["id"], "canceling")]
    # A runner finishing a canceling execution reports it canceled.
    done = await db.write(
        lambda c: ex.finish(c, waiting["id"], status="failed", result=None, now=NOW, owner="p1")
    )
    assert done is not None and done.status == "canceled"
    again, changed = await db.write(lambda c: ex.request_cancel(c, waiting["id"], now=NOW))
    assert not changed and again is not None and again.status == "canceled"


async def test_concurrent_claims_never_hand_out_one_execution_twice(db: Database) -> None:
    rows = [_row(now=NOW + timedelta(milliseconds=i)) for i in range(60)]
    await _insert(db, *rows)
    await db.write(lambda c: ex.claim_requested(c, now=NOW + timedelta(seconds=1), limit=100))
    claims = await asyncio.gather(
        *(
            db.write(
                lambda c, o=f"p{i}": ex.claim_scheduled(
                    c, owner=o, now=NOW, lease_until=NOW, limit=7
                )
            )
            for i in range(12)
        )
    )
    ids = [e.id for batch in claims for e in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_large_results_are_compressed_and_round_trip(db: Database) -> None:
    row = _row()
    await _insert(db, row)
    big = {"lines": ["x" * 100] * 50_000}  # ~5 MB of JSON
    await db.write(lambda c: ex.finish(c, row["id"], status="succeeded", result=big, now=NOW))
    got = await db.read(lambda c: ex.get(c, row["id"]))
    assert got is not None and got.result == big
    assert got.result_blob is not None and len(got.result_blob) < got.result_size / 10


async def test_output_chunks_in_order_and_by_stream(db: Database) -> None:
    row = _row()
    await _insert(db, row)
    await db.write(
        lambda c: ex.append_output(
            c,
            [(row["id"], "stdout", "a"), (row["id"], "stderr", "b"), (row["id"], "stdout", "c")],
            now=NOW,
        )
    )
    chunks = await db.read(lambda c: ex.read_output(c, row["id"]))
    assert [(x.stream, x.data) for x in chunks] == [
        ("stdout", "a"),
        ("stderr", "b"),
        ("stdout", "c"),
    ]
    after = await db.read(lambda c: ex.read_output(c, row["id"], after_id=chunks[0].id))
    assert [x.data for x in after] == ["b", "c"]
    only_out = await db.read(lambda c: ex.read_output(c, row["id"], stream="stdout"))
    assert [x.data for x in only_out] == ["a", "c"]
    n = await db.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(execution_output)).scalar()
    )
    assert n == 3


async def test_list_filters_and_pagination(db: Database) -> None:
    rows = [
        _row(action_ref="core.noop" if i % 2 else "core.local", now=NOW + timedelta(seconds=i))
        for i in range(10)
    ]
    await _insert(db, *rows)
    flt = ex.ExecutionFilter(action="core.local")
    assert await db.read(lambda c: ex.count(c, flt)) == 5
    page = await db.read(lambda c: ex.list_executions(c, flt, limit=2, offset=1))
    assert [e.id for e in page] == [rows[6]["id"], rows[4]["id"]]  # newest first
    since = ex.ExecutionFilter(created_after=NOW + timedelta(seconds=8))
    assert await db.read(lambda c: ex.count(c, since)) == 2


# --- datastore --------------------------------------------------------------------------------


async def test_kv_scopes_ttl_and_prefix(db: Database) -> None:
    await db.write(
        lambda c: kv.set_value(
            c, "a.one", "1", scope="system", user=None, secret=False, ttl=None, now=NOW
        )
    )
    await db.write(
        lambda c: kv.set_value(
            c, "a.two", "2", scope="system", user=None, secret=False, ttl=10, now=NOW
        )
    )
    await db.write(
        lambda c: kv.set_value(
            c, "a.one", "mine", scope="user", user="alice", secret=False, ttl=None, now=NOW
        )
    )
    sys_one = await db.read(lambda c: kv.get(c, "a.one", scope="system", user=None, now=NOW))
    alice_one = await db.read(lambda c: kv.get(c, "a.one", scope="user", user="alice", now=NOW))
    bob_one = await db.read(lambda c: kv.get(c, "a.one", scope="user", user="bob", now=NOW))
    assert sys_one is not None and sys_one.value == "1"
    assert alice_one is not None and alice_one.value == "mine"
    assert bob_one is None
    later = NOW + timedelta(seconds=11)
    assert await db.read(lambda c: kv.get(c, "a.two", scope="system", user=None, now=later)) is None
    listed = await db.read(
        lambda c: kv.list_keys(c, scope=None, user="alice", prefix="a.", now=NOW)
    )
    assert [(k.scope, k.name) for k in listed] == [
        ("system", "a.one"),
        ("system", "a.two"),
        ("user", "a.one"),
    ]
    # Prefixes are literal: LIKE wildcards in them do not match other keys.
    assert (
        await db.read(lambda c: kv.list_keys(c, scope="system", user=None, prefix="a%", now=NOW))
        == []
    )
    assert await db.write(lambda c: kv.purge_expired(c, now=later)) == 1
    removed = await db.write(lambda c: kv.delete(c, "a.one", scope="user", user="alice", now=NOW))
    assert removed is not None and removed.value == "mine"
    with pytest.raises(ValidationError):
        await db.write(
            lambda c: kv.set_value(
                c, "x", "1", scope="system", user=None, secret=False, ttl=-5, now=NOW
            )
        )


async def test_kv_update_keeps_created_at(db: Database) -> None:
    await db.write(
        lambda c: kv.set_value(
            c, "k", "1", scope="system", user=None, secret=False, ttl=None, now=NOW
        )
    )
    new, old = await db.write(
        lambda c: kv.set_value(
            c,
            "k",
            "2",
            scope="system",
            user=None,
            secret=True,
            ttl=None,
            now=NOW + timedelta(hours=1),
        )
    )
    assert old is not None and old.value == "1"
    assert new.created_at == NOW and new.updated_at == NOW + timedelta(hours=1) and new.secret


# --- identity ---------------------------------------------------------------------------------


async def test_users_tokens_and_keys(db: Database) -> None:
    await db.write(
        lambda c: identity.create_user(c, "alice", password_hash="h", roles=["admin"], now=NOW)
    )
    with pytest.raises(IntegrityError):
        await db.write(
            lambda c: identity.create_user(c, "alice", password_hash="h", roles=[], now=NOW)
        )
    await db.write(
        lambda c: identity.create_token(
            c, id=new_id(), token_hash="t" * 64, user="alice", expiry=NOW, now=NOW
        )
    )
    tok = await db.read(lambda c: identity.find_token(c, "t" * 64))
    assert tok is not None and tok.user == "alice" and not tok.revoked
    assert await db.write(lambda c: identity.revoke_token(c, "t" * 64))
    tok = await db.read(lambda c: identity.find_token(c, "t" * 64))
    assert tok is not None and tok.revoked
    await db.write(
        lambda c: identity.create_api_key(c, id="k1", key_hash="k" * 64, user="alice", now=NOW)
    )
    assert await db.read(lambda c: identity.find_api_key(c, "k" * 64)) is not None
    assert await db.write(lambda c: identity.delete_user(c, "alice"))
    assert await db.read(lambda c: identity.find_api_key(c, "k" * 64)) is None


# --- content ----------------------------------------------------------------------------------


def _pack(version: str = "1.0.0") -> dict[str, Any]:
    return {"ref": "p", "name": "p", "version": version, "path": "/x", "doc": {"ref": "p"}}


def _action(name: str, **extra: Any) -> dict[str, Any]:
    return {"ref": f"p.{name}", "pack": "p", "name": name, "runner_type": "noop", **extra}


async def test_replace_pack_keeps_ids_and_removes_vanished_content(db: Database) -> None:
    counts = await db.write(
        lambda c: content.replace_pack(
            c, pack=_pack(), content={"actions": [_action("a"), _action("b")]}, config=None, now=NOW
        )
    )
    assert counts["actions"] == 2
    first = await db.read(lambda c: content.get_action(c, "p.a"))
    assert first is not None
    await db.write(
        lambda c: content.replace_pack(
            c,
            pack=_pack("1.1.0"),
            content={"actions": [_action("a", description="changed")]},
            config=({"k": 1}, None, []),
            now=NOW,
        )
    )
    again = await db.read(lambda c: content.get_action(c, "p.a"))
    assert again is not None and again.id == first.id and again.snapshot != first.snapshot
    assert await db.read(lambda c: content.get_action(c, "p.b")) is None
    # Old snapshots stay: executions of the old version still resolve their action.
    assert await db.read(lambda c: content.get_snapshot(c, first.snapshot)) is not None
    assert await db.read(lambda c: content.get_pack_config(c, "p")) == ({"k": 1}, [])
    pack = await db.read(lambda c: content.get_pack(c, "p"))
    assert pack is not None and pack.version == "1.1.0"
    assert await db.write(lambda c: content.remove_pack(c, "p"))
    assert await db.read(lambda c: content.list_actions(c, pack="p")) == ([], 0)


async def test_timer_tick_recorded_once(db: Database) -> None:
    from squall.store import events

    first = await db.write(
        lambda c: events.record_tick(c, trigger_key="t", tick_at=NOW, instance_id="i1", now=NOW)
    )
    again = await db.write(
        lambda c: events.record_tick(c, trigger_key="t", tick_at=NOW, instance_id="i2", now=NOW)
    )
    assert first is True and again is False


async def test_leases_are_exclusive_until_expiry(db: Database) -> None:
    from squall.store import leases

    later = NOW + timedelta(seconds=30)
    assert await db.write(lambda c: leases.acquire(c, "x", owner="a", now=NOW, until=later))
    assert not await db.write(lambda c: leases.acquire(c, "x", owner="b", now=NOW, until=later))
    assert await db.write(lambda c: leases.acquire(c, "x", owner="a", now=NOW, until=later))
    expired = later + timedelta(seconds=1)
    until = expired + timedelta(seconds=30)
    assert await db.write(lambda c: leases.acquire(c, "x", owner="b", now=expired, until=until))
    assert await db.read(lambda c: leases.holder(c, "x", now=expired)) == "b"


async def test_enforcement_unique_per_instance_and_rule(db: Database) -> None:
    from squall.store import events

    row = {
        "id": new_id(),
        "rule_id": "r1",
        "rule_ref": "p.r",
        "rule": {},
        "trigger_instance_id": "ti1",
        "execution_id": None,
        "status": "succeeded",
        "failure_reason": None,
        "enforced_at": NOW,
        "team": None,
    }
    assert await db.write(lambda c: events.insert_enforcements(c, [row])) == {row["id"]}
    dup = {**row, "id": new_id()}
    assert await db.write(lambda c: events.insert_enforcements(c, [dup])) == set()
    with pytest.raises(IntegrityError):
        await db.write(lambda c: c.execute(sa.insert(events.rule_enforcements), [dup]))


def test_hot_polls_never_scan_the_history(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The claim and recovery queries the engine runs in a loop search an index on their
    status: a scan of every processed trigger instance made ingest slow down as the table
    grew (3,200 → 1,300 webhooks/s over 50,000 rows)."""
    from sqlalchemy import event

    from squall.store import events as ev
    from squall.store.schema import metadata

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    metadata.create_all(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_c, _cur, statement, parameters, _ctx, many) -> None:  # type: ignore[no-untyped-def]
        if not many and statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            statements.append((statement, parameters))

    polls = {
        "claim_instances": lambda c: ev.claim_instances(c, owner="o", now=NOW, until=NOW, limit=10),
        "release_claims": lambda c: ev.release_claims(c, owner="o"),
        "release_expired_claims": lambda c: ev.release_expired_claims(c, now=NOW),
        "claim_requested": lambda c: ex.claim_requested(c, now=NOW),
        "claim_scheduled": lambda c: ex.claim_scheduled(
            c, owner="o", now=NOW, lease_until=NOW, limit=10, runner_types=["noop"]
        ),
        "expired_leases": lambda c: ex.expired_leases(c, now=NOW),
    }
    with engine.begin() as conn:
        for name, poll in polls.items():
            statements.clear()
            poll(conn)
            assert statements, name
            for sql, params in statements:
                sql = sql.replace(" FOR UPDATE", "").replace(" SKIP LOCKED", "")
                plan = " ; ".join(
                    row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
                )
                assert "SCAN" not in plan, f"{name}: {plan}"
    engine.dispose()
