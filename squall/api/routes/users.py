"""``/api/v1/users`` (Squall): local users with Argon2 passwords, for ``squall user …``.

Administrators manage users; granting ``system_admin`` needs a system administrator. Any user
may change their own password by giving the current one. Changing a password or disabling a
user revokes the user's tokens.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from squall.api.deps import Auth, get_runtime
from squall.api.serialize import iso, json_response
from squall.auth.service import Principal
from squall.engine.runtime import Runtime
from squall.errors import AuthError, PermissionDenied, ValidationError
from squall.store.identity import User

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    password: str
    roles: list[str] = Field(default_factory=list)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = None
    enabled: bool | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str
    current_password: str | None = None


def _doc(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "enabled": user.enabled,
        "roles": list(user.roles),
        "created_at": iso(user.created_at),
    }


async def _check_roles(rt: Runtime, principal: Principal, roles: list[str]) -> None:
    known = {r.name for r in await rt.auth.rbac.list_roles()}
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationError(
            f"unknown role{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"roles: {', '.join(sorted(known))}",
        )
    if "system_admin" in roles and not principal.is_system_admin:
        raise PermissionDenied(
            f"user '{principal.user}' may not grant the system_admin role",
            hint="only system administrators can",
        )


@router.get("")
async def list_users(request: Request, principal: Auth) -> Response:
    users = await get_runtime(request).auth.list_users()
    return json_response([_doc(u) for u in users], headers={"X-Total-Count": str(len(users))})


@router.post("", status_code=201)
async def add_user(body: NewUser, request: Request, principal: Auth) -> Response:
    rt = get_runtime(request)
    await _check_roles(rt, principal, body.roles)
    await rt.auth.add_user(body.name, body.password, roles=body.roles)
    return json_response(_doc(await rt.auth.get_user(body.name)), 201)


@router.get("/{name}")
async def get_user(name: str, request: Request, principal: Auth) -> Response:
    return json_response(_doc(await get_runtime(request).auth.get_user(name)))


@router.put("/{name}")
async def update_user(name: str, body: UserUpdate, request: Request, principal: Auth) -> Response:
    """Set a user's local roles or enable/disable them (disabling revokes their tokens)."""
    rt = get_runtime(request)
    current = await rt.auth.get_user(name)
    if body.roles is not None:
        await _check_roles(rt, principal, body.roles)
        if "system_admin" in current.roles and not principal.is_system_admin:
            raise PermissionDenied(
                f"user '{principal.user}' may not change the roles of a system administrator"
            )
    if name == principal.user and body.enabled is False:
        raise ValidationError("you cannot disable yourself")
    user = await rt.auth.update_user(name, roles=body.roles, enabled=body.enabled)
    return json_response(_doc(user))


@router.delete("/{name}", status_code=204)
async def delete_user(name: str, request: Request, principal: Auth) -> Response:
    rt = get_runtime(request)
    if name == principal.user:
        raise ValidationError("you cannot delete yourself", hint="ask another administrator")
    current = await rt.auth.get_user(name)
    if "system_admin" in current.roles and not principal.is_system_admin:
        raise PermissionDenied(f"user '{principal.user}' may not delete a system administrator")
    await rt.auth.delete_user(name)
    return Response(status_code=204)


@router.put("/{name}/password", status_code=204)
async def set_password(
    name: str, body: PasswordChange, request: Request, principal: Auth
) -> Response:
    """An admin sets anyone's password; a user changes their own with the current one."""
    auth = get_runtime(request).auth
    if not principal.is_admin:
        if name != principal.user:
            raise PermissionDenied(
                f"user '{principal.user}' may not change the password of user '{name}'"
            )
        if body.current_password is None:
            raise ValidationError("current_password: required to change your own password")
        try:
            await auth.verify_password(name, body.current_password)
        except AuthError:
            raise PermissionDenied("the current password is wrong") from None
    await auth.set_password(name, body.password)
    return Response(status_code=204)
