"""``/api/v1/packs``: list, get and register packs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from squall.api.authz import Target
from squall.api.deps import Auth, get_runtime
from squall.api.list_filters import visible
from squall.api.serialize import json_response
from squall.errors import NotFoundError
from squall.store import content

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packs: list[str] | None = Field(default=None, description="pack refs; all when omitted")
    types: list[str] | None = None
    fail_on_failure: bool = True


def _pack_doc(record: content.PackRecord) -> dict[str, object]:
    return {**record.doc, "id": record.ref}


@router.get("")
async def list_packs(request: Request, principal: Auth) -> Response:
    records = await get_runtime(request).db.read(lambda conn: content.list_packs(conn))
    records = visible(request, principal, "pack", records, lambda r: Target(f"pack:{r.ref}"))
    return json_response(
        [_pack_doc(r) for r in records], headers={"X-Total-Count": str(len(records))}
    )


@router.get("/{ref}")
async def get_pack(ref: str, request: Request, principal: Auth) -> Response:
    record = await get_runtime(request).db.read(lambda conn: content.get_pack(conn, ref))
    if record is None:
        raise NotFoundError(f"pack {ref!r} not found")
    return json_response(_pack_doc(record))


@router.post("/register")
async def register_packs(body: RegisterRequest, request: Request, principal: Auth) -> Response:
    """Register packs from the pack search path; reports every problem per pack."""
    rt = get_runtime(request)
    results = await rt.packs.register_all(body.packs or None)
    ok = all(r.ok for r in results)
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.counts.items():
            totals[kind] = totals.get(kind, 0) + n
    payload = {**totals, "packs": [r.as_dict() for r in results], "ok": ok}
    status = 400 if (not ok and body.fail_on_failure) else 200
    if status == 400:
        failures = "; ".join(
            f"{r.ref}: {r.error or ', '.join(str(i) for i in r.issues[:3])}"
            for r in results
            if not r.ok
        )
        payload["faultstring"] = f"some packs failed to register: {failures}"
    return json_response(payload, status)


class UninstallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packs: list[str] = Field(description="pack refs to remove")


@router.post("/uninstall")
async def uninstall_packs(body: UninstallRequest, request: Request, principal: Auth) -> Response:
    """Unregister packs (and delete them if they were installed into $SQUALL_HOME/packs)."""
    rt = get_runtime(request)
    return json_response({"removed": [await rt.packs.remove(ref) for ref in body.packs]})


@router.delete("/{ref}")
async def delete_pack(ref: str, request: Request, principal: Auth) -> Response:
    return json_response(await get_runtime(request).packs.remove(ref))
