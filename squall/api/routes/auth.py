"""``/auth/v1``: tokens (StackStorm's auth API), proxy authentication, login throttling, token
revocation (a Squall addition), and ``/api/v1/user``."""

from __future__ import annotations

import base64
import binascii
import logging

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from squall.api.deps import Auth, credentials, get_runtime, login_guard, proxy_user
from squall.api.serialize import iso, json_response
from squall.errors import AuthError, ValidationError

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["auth"])


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthError(
            "basic authentication required", hint="send Authorization: Basic base64(user:pass)"
        )
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed basic authentication header") from None
    if not sep:
        raise AuthError("malformed basic authentication header")
    return user, password


async def _ttl(request: Request) -> int | None:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError('the body must be JSON, e.g. {"ttl": 3600}') from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    ttl = body.get("ttl")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise ValidationError("ttl: must be an integer number of seconds")
    return ttl


def _too_many(wait: int) -> Response:
    return json_response(
        {"faultstring": f"too many failed logins; try again in {wait} seconds"},
        429,
        headers={"Retry-After": str(wait)},
    )


@router.post("/auth/v1/tokens", status_code=201)
async def create_token(request: Request) -> Response:
    """A token for Basic credentials, or for the user a trusted proxy names (proxy mode).

    Failed logins are throttled per user name and per client address (429 with
    ``Retry-After``); while throttled even a right password is refused.
    """
    rt = get_runtime(request)
    guard = login_guard(request)
    peer = request.client.host if request.client else None
    ttl = await _ttl(request)
    proxied = proxy_user(request)
    if proxied is not None:
        principal = await rt.auth.principal_for(proxied, method="proxy")
        user = principal.user
        metadata = {"authenticated_by": "proxy"}
    else:
        client = guard.proxy.client_address(request.headers, peer)
        try:
            name, password = _basic(request)
        except AuthError:
            guard.throttle.failed([f"addr:{client}"])
            raise
        keys = [f"user:{name}", f"addr:{client}"]
        wait = guard.throttle.retry_after(keys)
        if wait is not None:
            log.warning("login throttled for user %r from %s", name, client)
            return _too_many(wait)
        try:
            record = await rt.auth.verify_password(name, password)
        except AuthError:
            guard.throttle.failed(keys)
            log.warning("failed login for user %r from %s", name, client)
            raise
        user = record.name
        metadata = {}
    token, record_token = await rt.auth.issue_token(user, ttl=ttl, metadata=metadata)
    return json_response(
        {
            "id": record_token.id,
            "user": record_token.user,
            "token": token,
            "expiry": iso(record_token.expiry),
            "metadata": record_token.doc,
        },
        201,
    )


@router.post("/auth/v1/tokens/validate")
async def validate_token(body: ValidateRequest, request: Request) -> Response:
    rt = get_runtime(request)
    try:
        await rt.auth.check_token(body.token)
    except AuthError:
        return json_response({"valid": False})
    return json_response({"valid": True})


@router.delete("/auth/v1/tokens", status_code=204)
async def revoke_current_token(request: Request, principal: Auth) -> Response:
    """Squall: log out — revoke the token this request was made with."""
    token, _key = credentials(request)
    if not token or principal.method != "token":
        raise ValidationError(
            "this request carries no token to revoke",
            hint="send the token in X-Auth-Token; API keys are deleted with DELETE /api/v1/apikeys",
        )
    await get_runtime(request).auth.revoke_token(token)
    return Response(status_code=204)


@router.delete("/auth/v1/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: str, request: Request, principal: Auth) -> Response:
    """Squall: revoke a token by its id (its owner or an admin)."""
    await get_runtime(request).auth.revoke_token_id(principal, token_id)
    return Response(status_code=204)


@router.get("/api/v1/user")
async def whoami(principal: Auth) -> Response:
    return json_response(
        {
            "username": principal.user,
            "authentication": {"method": principal.method, "location": "header"},
            "rbac": {
                "enabled": True,
                "roles": list(principal.roles),
                "is_admin": principal.is_admin,
            },
        }
    )
