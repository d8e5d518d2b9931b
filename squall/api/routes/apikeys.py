"""``/api/v1/apikeys``: API keys (StackStorm's ApiKey API).

The key itself is returned once, by ``POST``; only its SHA-256 is stored, and neither the key
nor its hash is ever returned again (``show_secrets`` is accepted and has nothing to show).
Users manage their own keys; creating one needs ``api_key_create``, and only admins create
keys for other users. Others' keys need ``api_key_list``/``_view``/``_modify``/``_delete``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import iso, json_response
from squall.auth.rbac import has_permission, require
from squall.auth.service import SYSTEM_USER, Principal
from squall.errors import NotFoundError, PermissionDenied, ValidationError
from squall.store.identity import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/apikeys", tags=["apikeys"])


class ApiKeyRequest(BaseModel):
    """Body of ``POST`` and ``PUT`` (StackStorm's ApiKey; ``key_hash`` is ignored)."""

    model_config = ConfigDict(extra="allow")

    user: str | None = None
    metadata: dict[str, Any] | None = None
    enabled: bool | None = Field(default=None, description="false disables the key")


def _doc(record: ApiKey) -> dict[str, Any]:
    return {
        "id": record.id,
        "uid": f"api_key:{record.id}",
        "user": record.user,
        "metadata": record.doc.get("metadata") or {},
        "created_at": iso(record.created_at),
        "enabled": record.enabled,
    }


def _may(principal: Principal, permission: str, record: ApiKey) -> bool:
    return record.user == principal.user or has_permission(
        principal, permission, f"api_key:{record.id}"
    )


async def _visible(
    request: Request, principal: Principal, id_or_key: str, permission: str
) -> ApiKey:
    record = await get_runtime(request).auth.get_api_key(id_or_key)
    if not _may(principal, permission, record):
        if not _may(principal, "api_key_view", record):
            raise NotFoundError("API key not found")  # do not reveal others' keys exist
        require(principal, permission, f"api_key:{record.id}")
    return record


@router.get("")
async def list_api_keys(
    request: Request, principal: Auth, page: Paging, show_secrets: bool = False
) -> Response:
    """Your keys; every user's with ``api_key_list``."""
    everyone = has_permission(principal, "api_key_list")
    records = await get_runtime(request).auth.list_api_keys(
        user=None if everyone else principal.user
    )
    docs = [_doc(r) for r in records[page.offset : page.offset + page.limit]]
    return json_response(
        docs, headers={"X-Total-Count": str(len(records)), "X-Limit": str(page.limit)}
    )


@router.post("", status_code=201)
async def create_api_key(body: ApiKeyRequest, request: Request, principal: Auth) -> Response:
    """Create a key; the response is the only time the key is shown."""
    owner = body.user or principal.user
    if owner != principal.user and not principal.is_admin:
        raise PermissionDenied(
            f"user '{principal.user}' may not create API keys for user '{owner}'",
            hint="only admins create keys for other users",
        )
    if owner == SYSTEM_USER:
        raise ValidationError(f"{SYSTEM_USER!r} is the system user and cannot have API keys")
    require(principal, "api_key_create")
    auth = get_runtime(request).auth
    key, record = await auth.create_api_key(
        owner, metadata={str(k): v for k, v in (body.metadata or {}).items()}
    )
    if body.enabled is False:
        record = await auth.set_api_key_enabled(record.id, False)
    return json_response({**_doc(record), "key": key}, 201)


@router.get("/{api_key_id_or_key}")
async def get_api_key(
    api_key_id_or_key: str, request: Request, principal: Auth, show_secrets: bool = False
) -> Response:
    record = await _visible(request, principal, api_key_id_or_key, "api_key_view")
    return json_response(_doc(record))


@router.put("/{api_key_id_or_key}")
async def update_api_key(
    api_key_id_or_key: str, body: ApiKeyRequest, request: Request, principal: Auth
) -> Response:
    """Enable or disable a key (the only change a key supports)."""
    record = await _visible(request, principal, api_key_id_or_key, "api_key_modify")
    if body.user is not None and body.user != record.user:
        raise ValidationError("an API key cannot change owner", hint="create a new key instead")
    if body.enabled is not None and body.enabled != record.enabled:
        record = await get_runtime(request).auth.set_api_key_enabled(record.id, body.enabled)
    return json_response(_doc(record))


@router.delete("/{api_key_id_or_key}", status_code=204)
async def delete_api_key(api_key_id_or_key: str, request: Request, principal: Auth) -> Response:
    record = await _visible(request, principal, api_key_id_or_key, "api_key_delete")
    await get_runtime(request).auth.delete_api_key(record.id)
    return Response(status_code=204)
