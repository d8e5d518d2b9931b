"""The HTTP application: one port for ``/api/v1``, ``/auth/v1``, health probes and the UI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from squall import __version__
from squall.api.authz import authorize
from squall.api.cors import add_cors
from squall.api.deps import Auth, LoginGuard, get_runtime
from squall.api.routes import (
    action_files,
    actions,
    aliases,
    apikeys,
    auth,
    configs,
    executions,
    inquiries,
    keys,
    pack_views,
    packs,
    policies,
    rbac,
    rules,
    sensors,
    service_registry,
    stream,
    timers,
    traces,
    users,
    views,
    webhooks,
    workflows,
)
from squall.api.serialize import json_response
from squall.auth.login_guard import LoginThrottle, ProxyTrust
from squall.engine.metrics import CONTENT_TYPE
from squall.engine.runtime import Runtime
from squall.errors import SquallError

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _fault(status: int, message: str) -> Response:
    return json_response({"faultstring": message}, status)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return f"{where}.{'.'.join(rest)}" if rest else where
    return ".".join(parts)


class BodyLimit:
    """Rejects request bodies over ``limit`` bytes with 413 before reading them all."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _fault(413, self._message())(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _fault(413, self._message())(scope, receive, send)

    def _message(self) -> str:
        return f"request body too large (limit {self.limit} bytes)"


class _TooLarge(Exception):
    pass


class TrailingSlash:
    """Serves ``/api/v1/keys/`` as ``/api/v1/keys`` (the st2 CLI adds trailing slashes).

    Rewriting the path in place avoids a redirect round trip per CLI call; ``/api/v1/`` itself
    is the API root and stays as it is.
    """

    PREFIXES = ("/api/v1/", "/auth/v1/", "/stream/v1/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and len(path) > 1
            and path.endswith("/")
            and path.startswith(self.PREFIXES)
            and path not in self.PREFIXES
        ):
            scope = dict(scope, path=path.rstrip("/"))
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)


class WebhookFastPath:
    """Serves ``POST /api/v1/webhooks/<hook>`` without the router and dependency machinery.

    Webhooks are the hottest path (alert storms); the handler is the same function the
    documented route uses, so behaviour and errors are identical.
    """

    PREFIX = "/api/v1/webhooks/"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not path.startswith(self.PREFIX)
            or path == self.PREFIX + "st2"
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        metrics = scope["app"].state.runtime.metrics
        try:
            response = await webhooks.webhook(path[len(self.PREFIX) :], request)
            metrics.webhooks.labels("accepted").inc()
        except SquallError as exc:
            if exc.http_status >= 500:
                log.error("webhook failed: %s", exc)
            metrics.webhooks.labels(str(exc.http_status)).inc()
            response = _fault(exc.http_status, str(exc))
        await response(scope, receive, send)


def create_app(runtime: Runtime) -> FastAPI:
    """Build the ASGI application serving ``runtime``."""
    app = FastAPI(
        title="Squall API",
        version=__version__,
        description="StackStorm-compatible automation API (api/v1, auth/v1) plus Squall's own.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        # Every route's permissions (squall/api/permissions.py); unknown routes: admins only.
        dependencies=[Depends(authorize)],
    )
    app.state.runtime = runtime
    settings = runtime.settings
    app.state.login_guard = LoginGuard(
        throttle=LoginThrottle(settings.login_max_failures, settings.login_failure_window),
        proxy=ProxyTrust(settings.auth_proxy_header, settings.auth_proxy_addresses),
    )

    @app.exception_handler(SquallError)
    async def _squall_error(_request: Request, exc: SquallError) -> Response:
        if exc.http_status >= 500:
            log.error("request failed: %s", exc)
        return _fault(exc.http_status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problems = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _fault(400, "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _fault(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return _fault(500, f"internal error: {type(exc).__name__}")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> Response:
        try:
            await get_runtime(request).db.ping()
        except SquallError as exc:
            return json_response({"status": "unavailable", "reason": str(exc)}, 503)
        return json_response({"status": "ok"})

    @app.get("/metrics", tags=["health"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this process (no authentication, like the health probes)."""
        return Response(get_runtime(request).metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/api/v1", tags=["meta"])
    @app.get("/api/v1/", tags=["meta"], include_in_schema=False)
    async def root(_principal: Auth) -> Response:
        return json_response({"version": __version__, "docs_url": "/api/v1/docs"})

    # Before packs and rules: their GET /packs/{ref} and /ruleenforcements/{id} would
    # otherwise take GET /packs/index and /ruleenforcements/views.
    app.include_router(pack_views.router)
    app.include_router(views.router)
    for module in (auth, actions, executions, keys, packs, rules, webhooks, workflows, inquiries):
        app.include_router(module.router)
    for module in (action_files, aliases, configs, policies, sensors, timers, traces):
        app.include_router(module.router)
    app.include_router(service_registry.router)
    app.include_router(stream.router)
    for module in (apikeys, rbac, users):
        app.include_router(module.router)

    app.add_middleware(WebhookFastPath)
    app.add_middleware(TrailingSlash)
    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    add_cors(app, settings.cors_origins)
    return app
