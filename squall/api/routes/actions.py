"""``/api/v1/actions`` and ``/api/v1/runnertypes``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import PlainTextResponse, Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.list_filters import packed_target, visibility_limited, visible
from squall.api.serialize import json_response
from squall.errors import NotFoundError, PackError
from squall.runners.catalog import RUNNER_TYPES
from squall.store import content

router = APIRouter(tags=["actions"])


@router.get("/api/v1/actions")
async def list_actions(
    request: Request,
    principal: Auth,
    page: Paging,
    pack: str | None = None,
    name: str | None = None,
) -> Response:
    rt = get_runtime(request)
    limited = visibility_limited(request, principal)

    def _read(conn: Connection) -> Any:
        if limited:  # filter by permission first, then page
            records, _ = content.list_actions(conn, pack=pack, name=name, limit=1_000_000)
            records = visible(
                request,
                principal,
                "action",
                records,
                lambda r: packed_target("action", r.pack, r.name),
            )
            return records[page.offset : page.offset + page.limit], len(records)
        records, total = content.list_actions(
            conn, pack=pack, name=name, limit=page.limit, offset=page.offset
        )
        return records, total

    records, total = await rt.db.read(_read)
    docs = [{**r.doc, "id": r.id} for r in records]
    return json_response(docs, headers={"X-Total-Count": str(total), "X-Limit": str(page.limit)})


async def _action(request: Request, ref_or_id: str) -> content.ActionRecord:
    record = await get_runtime(request).db.read(lambda conn: content.get_action(conn, ref_or_id))
    if record is None:
        raise NotFoundError(f"action {ref_or_id!r} not found")
    return record


@router.get("/api/v1/actions/{ref_or_id}")
async def get_action(ref_or_id: str, request: Request, principal: Auth) -> Response:
    record = await _action(request, ref_or_id)
    return json_response({**record.doc, "id": record.id})


@router.get("/api/v1/actions/views/parameters/{ref_or_id}")
async def action_parameters(ref_or_id: str, request: Request, principal: Auth) -> Response:
    """The action's parameters merged with its runner's (what a caller may pass)."""
    record = await _action(request, ref_or_id)
    bundle = get_runtime(request).executions.bundle_from_doc(record.snapshot, record.doc)
    return json_response({"parameters": bundle.specs})


@router.get("/api/v1/actions/views/overview")
async def actions_overview(
    request: Request, principal: Auth, page: Paging, pack: str | None = None
) -> Response:
    return await list_actions(request, principal, page, pack=pack)


@router.get("/api/v1/actions/views/overview/{ref_or_id}")
async def action_overview(ref_or_id: str, request: Request, principal: Auth) -> Response:
    return await get_action(ref_or_id, request, principal)


@router.get("/api/v1/actions/views/entry_point/{ref_or_id}")
async def action_entry_point(ref_or_id: str, request: Request, principal: Auth) -> Response:
    """The source of the action's entry point file."""
    rt = get_runtime(request)
    record = await _action(request, ref_or_id)
    entry = record.doc.get("entry_point") or ""
    if not entry:
        raise NotFoundError(f"action {record.ref} has no entry point")

    pack = await rt.db.read(lambda conn: content.get_pack(conn, record.pack))
    if pack is None:
        raise NotFoundError(f"pack {record.pack!r} not found")
    from pathlib import Path

    base = (Path(pack.path) / "actions").resolve()
    path = (base / entry).resolve()
    if not path.is_relative_to(Path(pack.path).resolve()):
        raise PackError(f"entry point {entry!r} escapes the pack directory")
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise NotFoundError(f"cannot read entry point {entry!r}: {exc.strerror}") from None
    return PlainTextResponse(text)


def _runner_doc(name: str) -> dict[str, Any]:
    # Runner types are built in: the name is their id (the st2 CLI reads ``id``).
    return {"id": name, "uid": f"runner_type:{name}", **RUNNER_TYPES[name].as_api()}


@router.get("/api/v1/runnertypes")
async def list_runner_types(
    principal: Auth, page: Paging, name: str | None = None, enabled: bool | None = None
) -> Response:
    docs = [_runner_doc(n) for n in RUNNER_TYPES if name in (None, n)]
    if enabled is not None:
        docs = [d for d in docs if d["enabled"] == enabled]
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


@router.get("/api/v1/runnertypes/{name}")
async def get_runner_type(name: str, principal: Auth) -> Response:
    if name not in RUNNER_TYPES:
        raise NotFoundError(f"runner type {name!r} not found")
    return json_response(_runner_doc(name))
