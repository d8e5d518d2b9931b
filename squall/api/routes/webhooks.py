"""``/api/v1/webhooks``: events in. The 202 is sent only after the trigger instance is
committed, so an accepted webhook is never lost."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.authz import Target
from squall.api.deps import Auth, get_runtime, require_principal
from squall.api.list_filters import visible
from squall.api.serialize import json_response
from squall.auth.rbac import require
from squall.auth.service import Principal
from squall.engine.webhooks import parse_body
from squall.errors import AuthError, ValidationError

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


async def _principal_or_none(request: Request) -> Principal | None:
    try:
        return await require_principal(request)
    except AuthError:
        return None


@router.get("")
async def list_webhooks(request: Request, principal: Auth) -> Response:
    hooks = await get_runtime(request).webhooks.hooks()
    urls = visible(request, principal, "webhook", sorted(hooks), lambda u: Target(f"webhook:{u}"))
    return json_response(
        [
            {
                "url": url,
                "type": "core.st2.webhook",
                "parameters": {"url": url},
                "signature_schemes": [scheme for scheme, _ in cfg.signatures],
            }
            for url, cfg in ((u, hooks[u]) for u in urls)
        ]
    )


@router.post("/st2", status_code=202)
async def generic_webhook(request: Request, principal: Auth) -> Response:
    """StackStorm's generic webhook: ``{"trigger": "<trigger ref>", "payload": {...}}``."""
    rt = get_runtime(request)
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("trigger"), str):
        raise ValidationError(
            "body.trigger: required (a trigger type ref)",
            hint='send {"trigger": "pack.trigger_type", "payload": {...}}',
        )
    trace_tag = request.headers.get("st2-trace-tag") or body.get("trace_tag")
    trigger_type, params = await rt.triggers.resolve(body["trigger"])
    await rt.triggers.dispatch(
        trigger_type, body.get("payload", {}), parameters=params, trace_tag=trace_tag
    )
    return json_response(body, 202)


@router.post("/{hook:path}", status_code=202)
async def webhook(hook: str, request: Request) -> Response:
    """A named webhook: ``core.st2.webhook`` with ``{headers, body}`` for rules on its URL.

    Authenticated by a token or API key, or by the signature configured on the webhook's
    rule (``trigger.parameters.signature``). A bad signature stores nothing.
    """
    rt = get_runtime(request)
    cfg = await rt.webhooks.config(hook)
    raw = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    verified = None
    principal = await _principal_or_none(request)
    if principal is not None:
        require(principal, "webhook_send", f"webhook:{hook}")
    else:
        if not cfg.signatures:
            raise AuthError(
                "authentication required",
                hint="send X-Auth-Token or St2-Api-Key, or configure a signature on the webhook",
            )
        verified = await rt.webhooks.verify(cfg, headers, raw)
    body = parse_body(raw, headers.get("content-type", ""))
    await rt.webhooks.receive(hook, headers=headers, body=body, verified=verified)
    return json_response(body, 202)
