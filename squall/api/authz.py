"""Authorization of every API route: one dependency, one table.

:func:`authorize` runs before every route's handler (it is an application-wide dependency).
It finds the route's :class:`Access` in :data:`squall.api.permissions.ROUTES` — StackStorm's
``x-permissions`` idea, with the resource resolved from the path or the body — and answers
403 naming the permission type and the resource when the caller lacks it. A route missing from
the table is open to administrators only, so a new route is never accidentally public.

List routes let the handler filter: :func:`list_scope_of` says whether the caller sees every
resource or only those its grants cover, and :func:`can_see` decides one resource.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from squall.api.deps import get_runtime, require_principal
from squall.auth.rbac import ListScope, deny, has_permission, list_scope, require
from squall.auth.service import Principal
from squall.errors import PermissionDenied

__all__ = [
    "Access",
    "Custom",
    "Resolver",
    "Target",
    "authorize",
    "body_json",
    "can_see",
    "check_target",
    "list_scope_of",
]


@dataclass(frozen=True)
class Target:
    """One resource, as far as permissions are concerned.

    Attributes:
        uid: Its resource uid (``action:core:local``).
        pack: Its pack, when the uid does not say (an execution's action pack).
        owner: The user it belongs to (an execution's or an API-created rule's user):
            owners may always view it, and permission isolation hides it from others.
        also: Other ``(permission type, resource uid)`` pairs that grant the same access
            (viewing an execution is granted by ``action_view`` on its action).
        isolated: Permission isolation applies (executions and rules): non-admins see it
            only when they own it.
    """

    uid: str | None
    pack: str | None = None
    owner: str | None = None
    also: tuple[tuple[str, str | None], ...] = ()
    isolated: bool = False


#: Resolves the resource a route acts on: ``(request, path value, permission type)``.
Resolver = Callable[[Request, str, str], Awaitable[Target | None]]
#: A check that needs more than the path (the body, the resource's own access list).
Custom = Callable[[Request, Principal], Awaitable[None]]


@dataclass(frozen=True)
class Access:
    """What calling one route needs.

    Attributes:
        permission: The permission type (None: any authenticated caller).
        resolve: Resolves the resource from the path; None checks ``permission`` globally.
        public: No authentication at all (health probes, logging in, signed webhooks).
        listing: A list route of this resource type (needs ``<type>_list``, or grants on
            some resources when ``filtered``).
        filtered: The list handler filters resource by resource (:func:`can_see`).
        owner_ok: The resource's owner may call it without a grant.
        custom: Checks done by a function (body-based or resource-specific rules).
        admin: Administrators only.
    """

    permission: str | None = None
    resolve: Resolver | None = None
    public: bool = False
    listing: str | None = None
    filtered: bool = False
    owner_ok: bool = False
    custom: Custom | None = None
    admin: bool = False


def check_target(
    principal: Principal,
    permission: str,
    target: Target,
    *,
    owner_ok: bool = False,
    isolation: bool = False,
) -> bool:
    """Whether ``principal`` holds ``permission`` on ``target`` (see :class:`Target`)."""
    if principal.is_admin:
        return True
    if isolation and target.isolated and target.owner != principal.user:
        return False
    if owner_ok and target.owner is not None and target.owner == principal.user:
        return True
    if has_permission(principal, permission, target.uid, pack=target.pack):
        return True
    return any(has_permission(principal, p, uid) for p, uid in target.also)


def _isolated(request: Request) -> bool:
    return bool(get_runtime(request).settings.rbac_isolation)


async def body_json(request: Request) -> Any:
    """The request body as JSON, or None when it is empty or not JSON (the handler then
    reports the problem with its usual 400)."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _route_key(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return request.method.upper(), path


async def authorize(request: Request) -> None:
    """The application-wide dependency: enforce the route's :class:`Access`."""
    from squall.api.permissions import lookup  # the table imports this module

    method, path = _route_key(request)
    access = lookup(method, path)
    if access is not None and access.public:
        return
    principal = await require_principal(request)
    if principal.is_admin:
        return
    if access is None or access.admin:
        raise PermissionDenied(
            f"user '{principal.user}' may not call {method} {path}: administrators only",
            hint="ask an administrator",
        )
    if access.listing is not None:
        scope = list_scope(principal, access.listing, also=_LIST_ALSO.get(access.listing, ()))
        if scope is None or (not scope.everything and not access.filtered):
            deny(principal, f"{access.listing}_list")
        request.state.list_scope = scope
        return
    if access.custom is not None:
        await access.custom(request, principal)
        return
    if access.permission is None:
        return
    if access.resolve is None:
        require(principal, access.permission)
        return
    value = next(iter(request.path_params.values()), "")
    target = await access.resolve(request, str(value), access.permission)
    if target is None:
        return  # the handler answers 404
    if not check_target(
        principal,
        access.permission,
        target,
        owner_ok=access.owner_ok,
        isolation=_isolated(request),
    ):
        deny(principal, access.permission, target.uid)


#: Grants that make resources of a type visible in lists besides ``<type>_view``/``_list``:
#: executions are visible through ``action_view`` on their action.
_LIST_ALSO: dict[str, tuple[str, ...]] = {"execution": ("action_view",)}


def list_scope_of(request: Request) -> ListScope:
    """How the current list request is answered (everything for admins)."""
    scope: ListScope | None = getattr(request.state, "list_scope", None)
    return scope if scope is not None else ListScope(everything=True)


def can_see(
    request: Request,
    principal: Principal,
    resource_type: str,
    target: Target,
) -> bool:
    """Whether a list shows ``target`` to ``principal`` (``<type>_view`` on it, or ownership;
    with permission isolation, only what the principal owns)."""
    if principal.is_admin:
        return True
    if target.isolated and target.owner != principal.user and _isolated(request):
        return False
    if list_scope_of(request).everything:
        return True
    if target.owner is not None and target.owner == principal.user:
        return True
    view = f"{resource_type}_view"
    return check_target(principal, view, target) or has_permission(
        principal, f"{resource_type}_list", target.uid, pack=target.pack
    )
