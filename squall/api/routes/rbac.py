"""``/api/v1/rbac``: roles, permission types and role assignments (StackStorm's RBAC API),
plus Squall's ``POST /api/v1/rbac/load`` (re-read the definition files)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.deps import Auth, get_runtime
from squall.api.serialize import json_response
from squall.auth.rbac import PERMISSION_TYPES
from squall.errors import NotFoundError, PermissionDenied

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/rbac", tags=["rbac"])


def _types(resource_type: str) -> list[str]:
    return [f"{resource_type}_{suffix}" for suffix in PERMISSION_TYPES[resource_type]]


@router.get("/permission_types")
async def permission_types(principal: Auth) -> Response:
    """Permission types by resource type."""
    return json_response({rt: _types(rt) for rt in PERMISSION_TYPES})


@router.get("/permission_types/{resource_type}")
async def permission_types_of(resource_type: str, principal: Auth) -> Response:
    if resource_type not in PERMISSION_TYPES:
        raise NotFoundError(
            f"unknown resource type {resource_type!r}",
            hint=f"resource types: {', '.join(PERMISSION_TYPES)}",
        )
    return json_response(_types(resource_type))


@router.get("/roles")
async def list_roles(request: Request, principal: Auth, system: bool | None = None) -> Response:
    roles = await get_runtime(request).auth.rbac.list_roles(system=system)
    return json_response([r.as_api() for r in roles])


@router.get("/roles/{name_or_id}")
async def get_role(name_or_id: str, request: Request, principal: Auth) -> Response:
    return json_response((await get_runtime(request).auth.rbac.get_role(name_or_id)).as_api())


@router.get("/role_assignments")
async def list_role_assignments(
    request: Request,
    principal: Auth,
    user: str | None = None,
    role: str | None = None,
    source: str | None = None,
    remote: bool | None = None,
) -> Response:
    """Every assignment for admins; a user sees their own."""
    if not principal.is_admin:
        if user not in (None, principal.user):
            raise PermissionDenied(
                f"user '{principal.user}' may not see the role assignments of user '{user}'"
            )
        user = principal.user
    found = await get_runtime(request).auth.rbac.list_assignments(
        user=user, role=role, source=source, remote=remote
    )
    return json_response([a.as_api() for a in found])


@router.get("/role_assignments/{assignment_id:path}")
async def get_role_assignment(assignment_id: str, request: Request, principal: Auth) -> Response:
    user = assignment_id.split(":", 1)[0]
    if not principal.is_admin and user != principal.user:
        raise NotFoundError(f"role assignment {assignment_id!r} not found")
    for assignment in await get_runtime(request).auth.rbac.list_assignments(user=user):
        if assignment.id == assignment_id:
            return json_response(assignment.as_api())
    raise NotFoundError(f"role assignment {assignment_id!r} not found")


@router.post("/load")
async def load_definitions(request: Request, principal: Auth) -> Response:
    """Squall: re-read ``$SQUALL_HOME/rbac`` (roles and assignments) into the database."""
    rt = get_runtime(request)
    summary = await rt.auth.rbac.load()
    rt.auth.forget()
    return json_response(summary)
