"""``/api/v1/keys``: the datastore (StackStorm's KeyValuePair API; no POST, PUT creates)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import json_response
from squall.errors import ValidationError

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyRequest(BaseModel):
    """Body of ``PUT /api/v1/keys/{name}`` (StackStorm's KeyValuePairRequest); unknown fields
    are refused, the read-only fields of a key read back (``id``, ``uid``,
    ``expire_timestamp``) are accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    value: Any = Field(description="the value (a string)")
    secret: bool = False
    encrypted: bool = False
    scope: str | None = None
    user: str | None = None
    ttl: int | None = Field(default=None, gt=0)
    id: str | None = Field(default=None, description="ignored (read-only)")
    uid: str | None = Field(default=None, description="ignored (read-only)")
    expire_timestamp: str | None = Field(default=None, description="ignored (read-only)")


@router.get("")
async def list_keys(
    request: Request,
    principal: Auth,
    page: Paging,
    prefix: str | None = None,
    scope: str | None = None,
    user: str | None = None,
    decrypt: bool = False,
) -> Response:
    rt = get_runtime(request)
    views = await rt.datastore.list(
        principal,
        scope=scope,
        user=user,
        prefix=prefix,
        decrypt=decrypt,
        limit=page.limit,
        offset=page.offset,
    )
    headers = {"X-Limit": str(page.limit), "X-Total-Count": str(page.offset + len(views))}
    return json_response([v.as_api() for v in views], headers=headers)


@router.get("/{name:path}")
async def get_key(
    name: str,
    request: Request,
    principal: Auth,
    scope: str | None = None,
    user: str | None = None,
    decrypt: bool = False,
) -> Response:
    view = await get_runtime(request).datastore.get(
        principal, name, scope=scope, user=user, decrypt=decrypt
    )
    return json_response(view.as_api())


@router.put("/{name:path}")
async def put_key(name: str, body: KeyRequest, request: Request, principal: Auth) -> Response:
    if body.name is not None and body.name != name:
        raise ValidationError(
            f"the body names key {body.name!r} but the URL names {name!r}",
            hint="leave 'name' out of the body or make them equal",
        )
    if not isinstance(body.value, str):
        raise ValidationError(
            f"value: must be a string, got {type(body.value).__name__}",
            hint="serialize structured values as JSON first",
        )
    view = await get_runtime(request).datastore.set(
        principal,
        name,
        body.value,
        scope=body.scope,
        user=body.user,
        secret=body.secret,
        ttl=body.ttl,
        preencrypted=body.encrypted,
    )
    return json_response(view.as_api())


@router.delete("/{name:path}", status_code=204)
async def delete_key(
    name: str,
    request: Request,
    principal: Auth,
    scope: str | None = None,
    user: str | None = None,
) -> Response:
    await get_runtime(request).datastore.delete(principal, name, scope=scope, user=user)
    return Response(status_code=204)
