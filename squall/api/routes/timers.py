"""``/api/v1/timers``: the timer triggers rules use (interval, date and cron timers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.errors import NotFoundError, ValidationError
from squall.store import events

__all__ = ["router"]

router = APIRouter(tags=["timers"])

TIMER_TYPES = {
    "interval": "core.st2.IntervalTimer",
    "date": "core.st2.DateTimer",
    "cron": "core.st2.CronTimer",
}


async def _timers(request: Request, timer_type: str | None) -> list[dict[str, Any]]:
    if timer_type and timer_type not in TIMER_TYPES:
        raise ValidationError(
            f"timer_type: {timer_type!r} is not a timer type", hint="use interval, date or cron"
        )
    types = [TIMER_TYPES[timer_type]] if timer_type else list(TIMER_TYPES.values())
    db = get_runtime(request).db

    def _read(conn: Connection) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ttype in types:
            out.extend(events.list_triggers(conn, type=ttype))
        return out

    return await db.read(_read)


@router.get("/api/v1/timers")
async def list_timers(
    request: Request, principal: Auth, page: Paging, timer_type: str | None = None
) -> Response:
    docs = await _timers(request, timer_type)
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


@router.get("/api/v1/timers/{ref_or_id}")
async def get_timer(ref_or_id: str, request: Request, principal: Auth) -> Response:
    for doc in await _timers(request, None):
        if ref_or_id in (doc.get("ref"), doc.get("id"), doc.get("uid")):
            return json_response(doc)
    raise NotFoundError(f"timer {ref_or_id!r} not found")
