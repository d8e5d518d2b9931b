"""``/api/v1/sensortypes``: the sensors packs register (``sensors/*.yaml``), read-only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.errors import NotFoundError
from squall.store import content

__all__ = ["router"]

router = APIRouter(tags=["sensors"])


@router.get("/api/v1/sensortypes")
async def list_sensor_types(
    request: Request,
    principal: Auth,
    page: Paging,
    pack: str | None = None,
    name: str | None = None,
    enabled: bool | None = None,
    trigger: str | None = None,
) -> Response:
    docs = await get_runtime(request).db.read(
        lambda conn: content.list_content(conn, "sensors", pack=pack)
    )
    if name:
        docs = [d for d in docs if d.get("name") == name]
    if enabled is not None:
        docs = [d for d in docs if bool(d.get("enabled", True)) == enabled]
    if trigger:
        docs = [
            d
            for d in docs
            if any(
                trigger in (t.get("ref"), t.get("name"))
                for t in d.get("trigger_types") or []
                if isinstance(t, dict)
            )
            or trigger in (d.get("trigger_types") or [])
        ]
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


@router.get("/api/v1/sensortypes/{ref_or_id}")
async def get_sensor_type(ref_or_id: str, request: Request, principal: Auth) -> Response:
    docs = await get_runtime(request).db.read(lambda conn: content.list_content(conn, "sensors"))
    for doc in docs:
        if ref_or_id in (doc.get("ref"), doc.get("id")):
            return json_response(doc)
    raise NotFoundError(f"sensor type {ref_or_id!r} not found")
