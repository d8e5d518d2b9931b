"""``/api/v1/policytypes`` and ``/api/v1/policies``: the built-in policy types and the
policies packs register (``policies/*.yaml``).

Policies are pack content: create, change or delete one by editing its pack and registering
it (``POST /api/v1/packs/register``); the API serves them read-only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.engine.policies import POLICY_TYPES
from squall.errors import NotFoundError
from squall.store import content

__all__ = ["router"]

router = APIRouter(tags=["policies"])


def _page(docs: list[dict[str, Any]], limit: int, offset: int) -> Response:
    return json_response(
        docs[offset : offset + limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(limit)},
    )


def _policy_type_doc(ref: str) -> dict[str, Any]:
    spec = POLICY_TYPES[ref]
    resource, _, name = ref.partition(".")
    return {
        "id": ref,
        "uid": f"policy_type:{resource}:{name}",
        "ref": ref,
        "name": name,
        "resource_type": resource,
        "description": spec.get("description", ""),
        "enabled": True,
        "module": "squall.engine.policies",
        "parameters": spec.get("parameters", {}),
    }


@router.get("/api/v1/policytypes")
async def list_policy_types(
    principal: Auth, page: Paging, resource_type: str | None = None
) -> Response:
    docs = [_policy_type_doc(ref) for ref in POLICY_TYPES]
    if resource_type:
        docs = [d for d in docs if d["resource_type"] == resource_type]
    return _page(docs, page.limit, page.offset)


@router.get("/api/v1/policytypes/{ref_or_id}")
async def get_policy_type(ref_or_id: str, principal: Auth) -> Response:
    if ref_or_id not in POLICY_TYPES:
        raise NotFoundError(f"policy type {ref_or_id!r} not found")
    return json_response(_policy_type_doc(ref_or_id))


@router.get("/api/v1/policies")
async def list_policies(
    request: Request,
    principal: Auth,
    page: Paging,
    pack: str | None = None,
    resource_ref: str | None = None,
    policy_type: str | None = None,
    enabled: bool | None = None,
) -> Response:
    docs = await get_runtime(request).db.read(
        lambda conn: content.list_content(conn, "policies", pack=pack)
    )
    if resource_ref:
        docs = [d for d in docs if d.get("resource_ref") == resource_ref]
    if policy_type:
        docs = [d for d in docs if d.get("policy_type") == policy_type]
    if enabled is not None:
        docs = [d for d in docs if bool(d.get("enabled", True)) == enabled]
    return _page(docs, page.limit, page.offset)


@router.get("/api/v1/policies/{ref_or_id}")
async def get_policy(ref_or_id: str, request: Request, principal: Auth) -> Response:
    docs = await get_runtime(request).db.read(lambda conn: content.list_content(conn, "policies"))
    for doc in docs:
        if ref_or_id in (doc.get("ref"), doc.get("id")):
            return json_response(doc)
    raise NotFoundError(f"policy {ref_or_id!r} not found")
