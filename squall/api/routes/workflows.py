"""``/api/v1/workflows/inspect``: check a workflow definition without running it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from squall.api.deps import Auth, get_runtime
from squall.api.serialize import json_response
from squall.engine.workflows_check import inspect_text
from squall.errors import ValidationError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


@router.post("/inspect")
async def inspect_workflow(request: Request, principal: Auth, kind: str = "orquesta") -> Response:
    """Inspection errors of the definition in the body (YAML text, or a JSON string or
    object), as StackStorm's flat list; ``[]`` when the workflow is valid. Actions that are
    not registered are ``content`` errors. ``?kind=action-chain`` inspects an action chain."""
    if kind not in ("orquesta", "action-chain"):
        raise ValidationError("kind must be orquesta or action-chain")
    raw = await request.body()
    definition: Any = raw.decode("utf-8", errors="replace")
    if "json" in request.headers.get("content-type", ""):
        try:
            definition = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # YAML sent with a JSON content type: inspect the text
    if not isinstance(definition, str | dict):
        raise ValidationError("the body must be a workflow definition (YAML text or an object)")
    cache = get_runtime(request).executions.content
    refs: dict[str, bool] = {}
    inspect_text(definition, kind=kind, action_exists=lambda r: refs.setdefault(r, True))
    for ref in list(refs):
        refs[ref] = await cache.action(ref) is not None
    errors = inspect_text(definition, kind=kind, action_exists=lambda r: refs.get(r, True))
    return json_response(errors)
