"""``/api/v1/service_registry``: the Squall processes that are running, by role.

StackStorm's shape: ``GET /groups`` → ``{"groups": [...]}`` and ``GET /groups/{group}/members``
→ ``{"members": [{"group_id", "member_id", "capabilities": {...}}]}``. A group is a role
(``api``, ``rules``, ``runner`` …); its members are the live processes running that role.
Squall adds ``GET /processes``: every registered process with its heartbeat and work in
flight, including recently lost ones (what ``squall status`` shows). Administrators only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.deps import Admin, get_runtime
from squall.api.serialize import json_response
from squall.engine.registry import describe
from squall.errors import NotFoundError
from squall.store import processes
from squall.store.util import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/service_registry", tags=["service_registry"])


async def _processes(request: Request) -> list[dict[str, Any]]:
    rows = await get_runtime(request).db.read(processes.list_processes)
    now = utcnow()
    return [describe(row, now) for row in rows]


@router.get("/groups")
async def groups(request: Request, principal: Admin) -> Response:
    """Roles that at least one live process runs."""
    live = [p for p in await _processes(request) if p["status"] == "alive"]
    return json_response({"groups": sorted({r for p in live for r in p["roles"]})})


@router.get("/groups/{group_id}/members")
async def members(group_id: str, request: Request, principal: Admin) -> Response:
    """The live processes running role ``group_id``."""
    live = [
        p for p in await _processes(request) if p["status"] == "alive" and group_id in p["roles"]
    ]
    if not live:
        raise NotFoundError(f'Group with ID "{group_id}" not found.')
    return json_response(
        {
            "members": [
                {
                    "group_id": group_id,
                    "member_id": p["id"],
                    "capabilities": {
                        "hostname": p["host"],
                        "pid": p["pid"],
                        "name": group_id,
                        "type": "active",
                        "roles": p["roles"],
                        "started_at": p["started_at"],
                        "heartbeat_at": p["heartbeat_at"],
                        "in_flight": p["in_flight"],
                        "leases": p["leases"],
                    },
                }
                for p in live
            ]
        }
    )


@router.get("/processes")
async def list_all(request: Request, principal: Admin) -> Response:
    """Every registered process, live or lost (Squall's addition)."""
    return json_response(await _processes(request))
