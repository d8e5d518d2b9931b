"""StackStorm's joined views: ``/api/v1/ruleenforcements/views`` (each enforcement with its
trigger instance and execution) and ``GET /api/v1/webhooks/{url}`` (one webhook)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.errors import NotFoundError
from squall.store import events
from squall.store import executions as exrepo
from squall.store.schema import rule_enforcements

__all__ = ["router"]

router = APIRouter(tags=["rules"])


def _joined(conn: Connection, rows: list[events.Enforcement]) -> list[dict[str, Any]]:
    executions = {
        e.id: e for e in exrepo.get_many(conn, [r.execution_id for r in rows if r.execution_id])
    }
    out = []
    for row in rows:
        doc = row.as_api()
        ti = events.get_instance(conn, row.trigger_instance_id)
        if ti is not None:
            doc["trigger_instance"] = ti.as_api()
        ex = executions.get(row.execution_id or "")
        if ex is not None:
            doc["execution"] = {
                "id": ex.id,
                "action": {"ref": ex.action_ref},
                "status": ex.status,
                "start_timestamp": ex.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        out.append(doc)
    return out


@router.get("/api/v1/ruleenforcements/views")
async def list_enforcement_views(
    request: Request,
    principal: Auth,
    page: Paging,
    rule_ref: str | None = None,
    rule: str | None = None,
    trigger_instance: str | None = None,
    execution: str | None = None,
    status: str | None = None,
) -> Response:
    def _read(conn: Connection) -> tuple[list[dict[str, Any]], int]:
        rows, total = events.list_enforcements(
            conn,
            rule_ref=rule_ref or rule,
            trigger_instance_id=trigger_instance,
            execution_id=execution,
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
        return _joined(conn, rows), total

    docs, total = await get_runtime(request).db.read(_read)
    return json_response(docs, headers={"X-Total-Count": str(total), "X-Limit": str(page.limit)})


@router.get("/api/v1/ruleenforcements/views/{enforcement_id}")
async def get_enforcement_view(enforcement_id: str, request: Request, principal: Auth) -> Response:
    def _read(conn: Connection) -> list[dict[str, Any]]:
        row = conn.execute(
            rule_enforcements.select().where(rule_enforcements.c.id == enforcement_id)
        ).first()
        return _joined(conn, [events.Enforcement.from_row(row)]) if row else []

    found = await get_runtime(request).db.read(_read)
    if not found:
        raise NotFoundError(f"rule enforcement {enforcement_id!r} not found")
    return json_response(found[0])


@router.get("/api/v1/webhooks/{url:path}")
async def get_webhook(url: str, request: Request, principal: Auth) -> Response:
    hooks = await get_runtime(request).webhooks.hooks()
    cfg = hooks.get(url)
    if cfg is None:
        raise NotFoundError(f"webhook {url!r} not found (no enabled rule listens on it)")
    return json_response(
        {
            "url": url,
            "type": "core.st2.webhook",
            "parameters": {"url": url},
            "signature_schemes": [scheme for scheme, _ in cfg.signatures],
        }
    )
