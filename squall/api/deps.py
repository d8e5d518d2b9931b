"""Request-scoped helpers: the runtime, the caller's identity, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from squall.auth.login_guard import LoginThrottle, ProxyTrust
from squall.auth.service import SYSTEM_USER, Principal
from squall.engine.runtime import Runtime
from squall.errors import AuthError, PermissionDenied, ValidationError

__all__ = [
    "Admin",
    "Auth",
    "LoginGuard",
    "Page",
    "Paging",
    "credentials",
    "get_runtime",
    "login_guard",
    "proxy_user",
    "require_admin",
    "require_principal",
]


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@dataclass(frozen=True)
class LoginGuard:
    """The app's login throttle and proxy trust (``app.state.login_guard``)."""

    throttle: LoginThrottle
    proxy: ProxyTrust


def login_guard(request: Request) -> LoginGuard:
    guard: LoginGuard = request.app.state.login_guard
    return guard


def credentials(request: Request) -> tuple[str | None, str | None]:
    """(token, api key) from headers, query parameters or the ``auth-token`` cookie."""
    headers = request.headers
    token = headers.get("x-auth-token")
    key = headers.get("st2-api-key")
    if token is None and key is None:
        query = request.query_params
        token = query.get("x-auth-token")
        key = query.get("st2-api-key")
        if token is None and key is None:
            token = request.cookies.get("auth-token")
    return token, key


async def require_principal(request: Request) -> Principal:
    """The authenticated caller; 401 without valid credentials."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token, key = credentials(request)
    auth = get_runtime(request).auth
    if token:
        principal = await auth.check_token(token)
    elif key:
        principal = await auth.check_api_key(key)
    elif (proxied := proxy_user(request)) is not None:
        principal = await auth.principal_for(proxied, method="proxy")
    else:
        raise AuthError(
            "authentication required",
            hint="send X-Auth-Token (from POST /auth/v1/tokens) or St2-Api-Key",
        )
    request.state.principal = principal
    return principal


def proxy_user(request: Request) -> str | None:
    """The user a trusted authenticating proxy names (proxy mode), if any."""
    guard: LoginGuard | None = getattr(request.app.state, "login_guard", None)
    if guard is None:
        return None
    user = guard.proxy.user(request.headers, request.client.host if request.client else None)
    if user == SYSTEM_USER:
        raise AuthError(f"{SYSTEM_USER!r} is the system user and cannot log in")
    return user


async def require_admin(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied(f"user {principal.user!r} is not an administrator")
    return principal


Auth = Annotated[Principal, Depends(require_principal)]
Admin = Annotated[Principal, Depends(require_admin)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


MAX_PAGE = 1000
#: Offsets past this are refused (400) rather than overflowing the database's integers.
MAX_OFFSET = 2**31 - 1


def _paging(
    limit: Annotated[int | None, Query(description="page size (-1 = server maximum)")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    if limit is None:
        limit = 50
    if limit == -1:
        limit = MAX_PAGE
    if limit < 1:
        raise ValidationError(f"invalid limit {limit}", hint="use 1 to 1000, or -1 for the maximum")
    return Page(limit=min(limit, MAX_PAGE), offset=offset)


Paging = Annotated[Page, Depends(_paging)]
