"""``/api/v1/traces``: what one event caused, grouped by its trace tag.

A trace tag comes from a sensor's ``trace_tag``, the ``St2-Trace-Tag`` webhook header or an
execution's ``trace_tag``; rule-triggered executions inherit their trigger instance's. Squall
derives traces from those tags (no separate trace documents): a trace's ``id`` is its tag.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import iso, json_response
from squall.errors import NotFoundError
from squall.store.schema import executions, rule_enforcements, trigger_instances

__all__ = ["router"]

router = APIRouter(tags=["traces"])


def _trace(conn: Connection, tag: str) -> dict[str, Any] | None:
    ti = trigger_instances.c
    ex = executions.c
    re_ = rule_enforcements.c
    instances = conn.execute(
        sa.select(ti.id, ti.trigger, ti.occurrence_time)
        .where(ti.trace_tag == tag)
        .order_by(ti.occurrence_time)
    ).all()
    runs = conn.execute(
        sa.select(ex.id, ex.action_ref, ex.created_at, ex.parent_id)
        .where(ex.trace_tag == tag)
        .order_by(ex.created_at)
    ).all()
    if not instances and not runs:
        return None
    enforcements: list[Any] = []
    if instances:
        enforcements = list(
            conn.execute(
                sa.select(re_.id, re_.rule_ref, re_.enforced_at, re_.trigger_instance_id)
                .where(re_.trigger_instance_id.in_([r.id for r in instances]))
                .order_by(re_.enforced_at)
            ).all()
        )
    times = [r.occurrence_time for r in instances] + [r.created_at for r in runs]
    return {
        "id": tag,
        "uid": f"trace:{tag}",
        "trace_tag": tag,
        "start_timestamp": iso(min(times)),
        "trigger_instances": [
            {"object_id": r.id, "ref": r.trigger, "updated_at": iso(r.occurrence_time)}
            for r in instances
        ],
        "rules": [
            {
                "object_id": r.id,
                "ref": r.rule_ref,
                "updated_at": iso(r.enforced_at),
                "caused_by": {"type": "trigger_instance", "id": r.trigger_instance_id},
            }
            for r in enforcements
        ],
        "action_executions": [
            {
                "object_id": r.id,
                "ref": r.action_ref,
                "updated_at": iso(r.created_at),
                **(
                    {"caused_by": {"type": "action_execution", "id": r.parent_id}}
                    if r.parent_id
                    else {}
                ),
            }
            for r in runs
        ],
    }


@router.get("/api/v1/traces")
async def list_traces(
    request: Request,
    principal: Auth,
    page: Paging,
    trace_tag: str | None = None,
    execution: str | None = None,
    rule: str | None = None,
    trigger_instance: str | None = None,
    sort_asc: bool = False,
) -> Response:
    def _read(conn: Connection) -> tuple[list[dict[str, Any]], int]:
        ti = trigger_instances.c
        ex = executions.c
        tags: list[str]
        if trace_tag:
            tags = [trace_tag]
        elif execution:
            tags = [
                t
                for t in conn.execute(sa.select(ex.trace_tag).where(ex.id == execution)).scalars()
                if t
            ]
        elif trigger_instance:
            tags = [
                t
                for t in conn.execute(
                    sa.select(ti.trace_tag).where(ti.id == trigger_instance)
                ).scalars()
                if t
            ]
        else:
            both = sa.union_all(
                sa.select(ti.trace_tag.label("tag"), ti.occurrence_time.label("at")).where(
                    ti.trace_tag.is_not(None)
                ),
                sa.select(ex.trace_tag.label("tag"), ex.created_at.label("at")).where(
                    ex.trace_tag.is_not(None)
                ),
            ).subquery()
            first = sa.func.min(both.c.at)
            stmt = sa.select(both.c.tag).group_by(both.c.tag)
            stmt = stmt.order_by(first.asc() if sort_asc else first.desc())
            tags = list(conn.execute(stmt).scalars())
        docs = [d for d in (_trace(conn, t) for t in tags) if d is not None]
        if rule:
            docs = [d for d in docs if any(rule in (r["ref"], r["object_id"]) for r in d["rules"])]
        return docs[page.offset : page.offset + page.limit], len(docs)

    docs, total = await get_runtime(request).db.read(_read)
    return json_response(docs, headers={"X-Total-Count": str(total), "X-Limit": str(page.limit)})


@router.get("/api/v1/traces/{trace_id}")
async def get_trace(trace_id: str, request: Request, principal: Auth) -> Response:
    doc = await get_runtime(request).db.read(lambda conn: _trace(conn, trace_id))
    if doc is None:
        raise NotFoundError(f"trace {trace_id!r} not found")
    return json_response(doc)
