"""``/auth/v1``: tokens (StackStorm's auth API) and API keys."""

from __future__ import annotations

import base64
import binascii

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from squall.api.deps import Auth, get_runtime
from squall.api.serialize import iso, json_response
from squall.errors import AuthError, ValidationError

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
        user, sep, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed basic authentication header") from None
    if not sep:
        raise AuthError("malformed basic authentication header")
    return user, password


@router.post("/auth/v1/tokens", status_code=201)
async def create_token(request: Request) -> Response:
    rt = get_runtime(request)
    user, password = _basic(request)
    raw = await request.body()
    ttl = None
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValidationError('the body must be JSON, e.g. {"ttl": 3600}') from None
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
            raise ValidationError("ttl: must be an integer number of seconds")
    record_user = await rt.auth.verify_password(user, password)
    token, record = await rt.auth.issue_token(record_user.name, ttl=ttl)
    return json_response(
        {
            "id": record.id,
            "user": record.user,
            "token": token,
            "expiry": iso(record.expiry),
            "metadata": record.doc,
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
