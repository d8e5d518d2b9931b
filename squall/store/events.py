"""Triggers, trigger instances, rule enforcements and the counters of alert-storm protection.

Trigger instances are the rules engine's queue: ``pending`` → (claimed, ``processing``) →
``processed`` | ``processing_failed``. A claim carries a lease; an instance whose claimer died
returns to ``pending`` when the lease expires. Enforcements are unique per (trigger instance,
rule) — the database guarantees exactly-once enforcement, not only the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from squall.store.schema import (
    TRIGGER_INSTANCES_OPEN,
    rule_enforcements,
    storm_counters,
    system_state,
    timer_ticks,
    trigger_instances,
    triggers,
    webhook_deliveries,
)

#: Lets the open-instances partial index serve the claim queries (see TRIGGER_INSTANCES_OPEN).
_OPEN = sa.text(TRIGGER_INSTANCES_OPEN)

__all__ = [
    "Enforcement",
    "TriggerInstance",
    "bump_version",
    "claim_instances",
    "count_instances",
    "dedup_last",
    "enforced_pairs",
    "finish_instances",
    "get_instance",
    "get_trigger",
    "insert_enforcements",
    "insert_instances",
    "list_enforcements",
    "list_instances",
    "list_triggers",
    "new_instance",
    "read_version",
    "record_dedup",
    "record_delivery",
    "record_throttle",
    "record_tick",
    "release_claims",
    "release_expired_claims",
    "throttle_count",
    "upsert_triggers",
]


@dataclass
class TriggerInstance:
    id: str
    trigger: str
    trigger_type: str
    trigger_key: str | None
    payload: Any
    status: str
    trace_tag: str | None
    occurrence_time: datetime
    processed_at: datetime | None
    error: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> TriggerInstance:
        m = row._mapping
        return cls(
            m["id"],
            m["trigger"],
            m["trigger_type"],
            m["trigger_key"],
            m["payload"],
            m["status"],
            m["trace_tag"],
            m["occurrence_time"],
            m["processed_at"],
            m["error"],
        )

    def as_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "trigger": self.trigger,
            "trigger_type": self.trigger_type,
            "payload": self.payload,
            "occurrence_time": _iso(self.occurrence_time),
            "status": self.status,
        }
        if self.trace_tag:
            doc["trace_tag"] = self.trace_tag
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass
class Enforcement:
    id: str
    rule_id: str
    rule_ref: str
    rule: dict[str, Any]
    trigger_instance_id: str
    execution_id: str | None
    status: str
    failure_reason: str | None
    enforced_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Enforcement:
        m = row._mapping
        return cls(
            m["id"],
            m["rule_id"],
            m["rule_ref"],
            m["rule"],
            m["trigger_instance_id"],
            m["execution_id"],
            m["status"],
            m["failure_reason"],
            m["enforced_at"],
        )

    def as_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "rule": self.rule,
            "trigger_instance_id": self.trigger_instance_id,
            "enforced_at": _iso(self.enforced_at),
            "status": self.status,
        }
        if self.execution_id:
            doc["execution_id"] = self.execution_id
        if self.failure_reason:
            doc["failure_reason"] = self.failure_reason
        return doc


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _insert(conn: Connection, table: sa.Table) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


# --- triggers ---------------------------------------------------------------------------------


def upsert_triggers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create triggers (type + parameters) that do not exist yet; keys are unique."""
    if rows:
        stmt = _insert(conn, triggers).on_conflict_do_nothing(index_elements=["key"])
        conn.execute(stmt, [dict(r) for r in rows])


def list_triggers(conn: Connection, *, type: str | None = None) -> list[dict[str, Any]]:
    stmt = sa.select(triggers.c.doc, triggers.c.id).order_by(triggers.c.ref)
    if type:
        stmt = stmt.where(triggers.c.type == type)
    return [{**r.doc, "id": r.id} for r in conn.execute(stmt).all()]


def get_trigger(conn: Connection, ref_or_key: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(triggers.c.doc, triggers.c.id).where(
            sa.or_(
                triggers.c.ref == ref_or_key,
                triggers.c.key == ref_or_key,
                triggers.c.id == ref_or_key,
            )
        )
    ).first()
    return {**row.doc, "id": row.id} if row else None


# --- trigger instances ------------------------------------------------------------------------


def new_instance(
    *,
    id: str,
    trigger: str,
    trigger_type: str,
    payload: Any,
    now: datetime,
    trigger_key: str | None = None,
    trace_tag: str | None = None,
    status: str = "pending",
) -> dict[str, Any]:
    return {
        "id": id,
        "trigger": trigger,
        "trigger_type": trigger_type,
        "trigger_key": trigger_key,
        "payload": payload,
        "status": status,
        "trace_tag": trace_tag,
        "occurrence_time": now,
        "processed_at": None,
        "claimed_by": None,
        "claim_expires_at": None,
        "error": None,
        "team": None,
    }


def insert_instances(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(trigger_instances.insert(), [dict(r) for r in rows])


def get_instance(conn: Connection, instance_id: str) -> TriggerInstance | None:
    row = conn.execute(
        sa.select(trigger_instances).where(trigger_instances.c.id == instance_id)
    ).first()
    return TriggerInstance.from_row(row) if row else None


def claim_instances(
    conn: Connection, *, owner: str, now: datetime, until: datetime, limit: int
) -> list[TriggerInstance]:
    """Take pending instances (oldest first) for processing, under a lease."""
    c = trigger_instances.c
    rows = conn.execute(
        sa.select(trigger_instances)
        .where(_OPEN, c.status == "pending")
        .order_by(c.occurrence_time, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    conn.execute(
        trigger_instances.update()
        .where(c.id.in_(ids))
        .values(status="processing", claimed_by=owner, claim_expires_at=until)
    )
    return [TriggerInstance.from_row(r) for r in rows]


def finish_instances(
    conn: Connection,
    results: Sequence[tuple[str, str, str | None]],
    *,
    owner: str,
    now: datetime,
) -> list[str]:
    """Mark claimed instances ``(id, status, error)`` done; returns the ids still held.

    Only instances this ``owner`` still holds are updated (a claim that expired and was
    taken over by another process is not touched).
    """
    if not results:
        return []
    c = trigger_instances.c
    held = {
        r.id
        for r in conn.execute(
            sa.select(c.id)
            .where(
                c.id.in_([r[0] for r in results]),
                c.claimed_by == owner,
                c.status == "processing",
            )
            .with_for_update()
        ).all()
    }
    todo = [r for r in results if r[0] in held]
    if todo:
        conn.execute(
            trigger_instances.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                error=sa.bindparam("b_error"),
                processed_at=now,
                claimed_by=None,
                claim_expires_at=None,
            ),
            [{"b_id": i, "b_status": s, "b_error": e} for i, s, e in todo],
        )
    return [r[0] for r in todo]


def release_claims(conn: Connection, *, owner: str) -> int:
    """Return every instance ``owner`` holds to ``pending`` (it stops, or its batch failed)."""
    c = trigger_instances.c
    res = conn.execute(
        trigger_instances.update()
        .where(_OPEN, c.status == "processing", c.claimed_by == owner)
        .values(status="pending", claimed_by=None, claim_expires_at=None)
    )
    return int(res.rowcount or 0)


def release_expired_claims(conn: Connection, *, now: datetime) -> int:
    """Return instances whose claimer stopped (lease expired) to ``pending``."""
    c = trigger_instances.c
    res = conn.execute(
        trigger_instances.update()
        .where(_OPEN, c.status == "processing", c.claim_expires_at < now)
        .values(status="pending", claimed_by=None, claim_expires_at=None)
    )
    return int(res.rowcount or 0)


def _instance_filter(
    *,
    trigger: str | None = None,
    trigger_type: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[sa.ColumnElement[bool]]:
    c = trigger_instances.c
    out: list[sa.ColumnElement[bool]] = []
    if trigger:
        out.append(c.trigger == trigger)
    if trigger_type:
        out.append(c.trigger_type == trigger_type)
    if status:
        out.append(c.status == status)
    if since:
        out.append(c.occurrence_time >= since)
    if until:
        out.append(c.occurrence_time <= until)
    return out


def list_instances(
    conn: Connection,
    *,
    limit: int = 50,
    offset: int = 0,
    ascending: bool = False,
    **filters: Any,
) -> list[TriggerInstance]:
    c = trigger_instances.c
    order = (
        (c.occurrence_time.asc(), c.id.asc())
        if ascending
        else (
            c.occurrence_time.desc(),
            c.id.desc(),
        )
    )
    stmt = (
        sa.select(trigger_instances)
        .where(*_instance_filter(**filters))
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return [TriggerInstance.from_row(r) for r in conn.execute(stmt).all()]


def count_instances(conn: Connection, **filters: Any) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(trigger_instances)
        .where(*_instance_filter(**filters))
    )
    return int(conn.execute(stmt).scalar_one())


# --- enforcements -----------------------------------------------------------------------------


def insert_enforcements(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert enforcements, skipping (instance, rule) pairs already enforced.

    Returns the ids of the rows actually inserted.
    """
    if not rows:
        return set()
    existing = {
        (r.trigger_instance_id, r.rule_id)
        for r in conn.execute(
            sa.select(rule_enforcements.c.trigger_instance_id, rule_enforcements.c.rule_id).where(
                rule_enforcements.c.trigger_instance_id.in_(
                    list({r["trigger_instance_id"] for r in rows})
                )
            )
        ).all()
    }
    fresh = [r for r in rows if (r["trigger_instance_id"], r["rule_id"]) not in existing]
    if fresh:
        # The unique constraint is the real guarantee; ON CONFLICT keeps a race harmless.
        stmt = _insert(conn, rule_enforcements).on_conflict_do_nothing(
            index_elements=["trigger_instance_id", "rule_id"]
        )
        conn.execute(stmt, [dict(r) for r in fresh])
    return {r["id"] for r in fresh}


def list_enforcements(
    conn: Connection,
    *,
    rule_ref: str | None = None,
    trigger_instance_id: str | None = None,
    execution_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Enforcement], int]:
    c = rule_enforcements.c
    where: list[sa.ColumnElement[bool]] = []
    if rule_ref:
        where.append(c.rule_ref == rule_ref)
    if trigger_instance_id:
        where.append(c.trigger_instance_id == trigger_instance_id)
    if execution_id:
        where.append(c.execution_id == execution_id)
    if status:
        where.append(c.status == status)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(rule_enforcements).where(*where)
    ).scalar_one()
    rows = conn.execute(
        sa.select(rule_enforcements)
        .where(*where)
        .order_by(c.enforced_at.desc(), c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [Enforcement.from_row(r) for r in rows], int(total)


def enforced_pairs(conn: Connection, instance_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(trigger instance id, rule id) pairs already enforced among ``instance_ids``."""
    if not instance_ids:
        return set()
    c = rule_enforcements.c
    rows = conn.execute(
        sa.select(c.trigger_instance_id, c.rule_id).where(
            c.trigger_instance_id.in_(list(instance_ids))
        )
    ).all()
    return {(r.trigger_instance_id, r.rule_id) for r in rows}


# --- alert-storm counters ---------------------------------------------------------------------


def throttle_count(conn: Connection, *, key: str, window_start: datetime) -> int:
    """Enforcements admitted so far in a fixed window (row locked for the caller)."""
    c = storm_counters.c
    count = conn.execute(
        sa.select(c.count).where(c.key == key, c.window_start == window_start).with_for_update()
    ).scalar()
    return int(count or 0)


def record_throttle(
    conn: Connection, *, key: str, window_start: datetime, window_end: datetime
) -> None:
    """Count one more enforcement in a fixed window."""
    c = storm_counters.c
    res = conn.execute(
        storm_counters.update()
        .where(c.key == key, c.window_start == window_start)
        .values(count=c.count + 1)
    )
    if not res.rowcount:
        conn.execute(
            storm_counters.insert().values(
                key=key, window_start=window_start, count=1, expires_at=window_end
            )
        )


_DEDUP_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dedup_last(conn: Connection, *, key: str) -> datetime | None:
    """When an enforcement with this dedup key was last admitted (row locked)."""
    c = storm_counters.c
    value: datetime | None = conn.execute(
        sa.select(c.expires_at)
        .where(c.key == key, c.window_start == _DEDUP_EPOCH)
        .with_for_update()
    ).scalar()
    return value


def record_dedup(conn: Connection, *, key: str, now: datetime) -> None:
    """Remember that an enforcement with this dedup key was admitted ``now``."""
    c = storm_counters.c
    res = conn.execute(
        storm_counters.update()
        .where(c.key == key, c.window_start == _DEDUP_EPOCH)
        .values(count=c.count + 1, expires_at=now)
    )
    if not res.rowcount:
        conn.execute(
            storm_counters.insert().values(
                key=key, window_start=_DEDUP_EPOCH, count=1, expires_at=now
            )
        )


# --- timers -----------------------------------------------------------------------------------


def record_tick(
    conn: Connection,
    *,
    trigger_key: str,
    tick_at: datetime,
    instance_id: str | None,
    now: datetime,
) -> bool:
    """Record a timer tick (fired, or skipped with no instance); False when already recorded."""
    exists = conn.execute(
        sa.select(timer_ticks.c.tick_at).where(
            timer_ticks.c.trigger_key == trigger_key, timer_ticks.c.tick_at == tick_at
        )
    ).first()
    if exists is not None:
        return False
    stmt = _insert(conn, timer_ticks).on_conflict_do_nothing(
        index_elements=["trigger_key", "tick_at"]
    )
    res = conn.execute(
        stmt,
        {
            "trigger_key": trigger_key,
            "tick_at": tick_at,
            "trigger_instance_id": instance_id,
            "fired_at": now,
        },
    )
    return bool(res.rowcount)


def last_tick(conn: Connection, trigger_key: str) -> datetime | None:
    value: datetime | None = conn.execute(
        sa.select(sa.func.max(timer_ticks.c.tick_at)).where(
            timer_ticks.c.trigger_key == trigger_key
        )
    ).scalar()
    return value


# --- webhooks ---------------------------------------------------------------------------------


def record_delivery(conn: Connection, *, delivery_id: str, hook: str, now: datetime) -> bool:
    """Remember a signed delivery id; False when it was seen before (a replay)."""
    stmt = _insert(conn, webhook_deliveries).on_conflict_do_nothing(index_elements=["id"])
    res = conn.execute(stmt, {"id": delivery_id, "hook": hook, "received_at": now})
    return bool(res.rowcount)


# --- change counters --------------------------------------------------------------------------


def bump_version(conn: Connection, key: str) -> None:
    """Increment a change counter (e.g. ``rules``) in the caller's transaction."""
    res = conn.execute(
        system_state.update()
        .where(system_state.c.key == key)
        .values(value=system_state.c.value + 1)
    )
    if not res.rowcount:
        stmt = _insert(conn, system_state).on_conflict_do_update(
            index_elements=["key"], set_={"value": system_state.c.value + 1}
        )
        conn.execute(stmt, {"key": key, "value": 1})


def read_version(conn: Connection, key: str) -> int:
    value = conn.execute(sa.select(system_state.c.value).where(system_state.c.key == key)).scalar()
    return int(value or 0)
