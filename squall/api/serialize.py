"""JSON shapes of the API (StackStorm's), built from store records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

from squall.engine.executions import ActionBundle
from squall.model.formatting import MASK, iso, mask_parameters
from squall.store.executions import Execution

__all__ = [
    "MASK",
    "JSONResponse",
    "execution_doc",
    "iso",
    "json_response",
    "mask_parameters",
    "project",
]


class JSONResponse(Response):
    """A fast JSON response (orjson)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=dict(headers or {}))


def execution_doc(
    ex: Execution, bundle: ActionBundle | None, *, api_url: str, with_result: bool = True
) -> dict[str, Any]:
    """An execution in StackStorm's ``ActionExecutionAPI`` shape (falsy fields omitted)."""
    secret_names = bundle.secret_names if bundle else frozenset()
    params = mask_parameters(ex.parameters, secret_names, action_ref=ex.action_ref)
    doc: dict[str, Any] = {
        "id": ex.id,
        "action": bundle.doc if bundle else {"ref": ex.action_ref},
        "runner": bundle.runner.as_api() if bundle else {"name": ex.runner_type},
        "liveaction": {
            "id": ex.id,
            "action": ex.action_ref,
            "action_is_workflow": ex.runner_type in ("orquesta", "action-chain"),
            "status": ex.status,
            "parameters": params,
            "context": ex.context,
            "callback": {},
            "runner_info": {},
        },
        "status": ex.status,
        "start_timestamp": iso(ex.created_at),
        "parameters": params,
        "context": ex.context,
        "log": ex.log,
        "web_url": f"{api_url}/#/history/{ex.id}/general",
    }
    if ex.ended_at is not None:
        doc["end_timestamp"] = iso(ex.ended_at)
        doc["elapsed_seconds"] = round((ex.ended_at - ex.created_at).total_seconds(), 6)
        doc["liveaction"]["end_timestamp"] = doc["end_timestamp"]
    doc["liveaction"]["start_timestamp"] = doc["start_timestamp"]
    if ex.parent_id:
        doc["parent"] = ex.parent_id
    if ex.notify:
        doc["notify"] = ex.notify
    if ex.trace_tag:
        doc["trace_tag"] = ex.trace_tag
    # Rule-triggered executions name their rule and trigger instance (StackStorm's fields).
    for key in ("rule", "trigger_instance"):
        value = ex.context.get(key) if isinstance(ex.context, dict) else None
        if isinstance(value, dict) and value:
            doc[key] = value
    if with_result and ex.result_blob is not None:
        doc["result"] = ex.result
        doc["liveaction"]["result"] = doc["result"]
    return doc


def project(
    doc: dict[str, Any], include: Iterable[str] | None, exclude: Iterable[str] | None
) -> dict[str, Any]:
    """Apply ``include_attributes`` / ``exclude_attributes`` (dotted paths allowed)."""
    inc = [p for p in (include or []) if p]
    exc = [p for p in (exclude or []) if p]
    out = doc
    if inc:
        out = {}
        for path in inc:
            parts = path.split(".")
            src: Any = doc
            for part in parts:
                if not isinstance(src, dict) or part not in src:
                    src = _MISSING
                    break
                src = src[part]
            if src is _MISSING:
                continue
            dst = out
            for part in parts[:-1]:
                dst = dst.setdefault(part, {})
            dst[parts[-1]] = src
        out.setdefault("id", doc.get("id"))
    if exc:
        out = dict(out)
        for path in exc:
            parts = path.split(".")
            node: Any = out
            for part in parts[:-1]:
                nxt = node.get(part) if isinstance(node, dict) else None
                if not isinstance(nxt, dict):
                    node = None
                    break
                node[part] = nxt = dict(nxt)
                node = nxt
            if isinstance(node, dict):
                node.pop(parts[-1], None)
    return out


_MISSING = object()
