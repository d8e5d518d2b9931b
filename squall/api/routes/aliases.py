"""``/api/v1/actionalias`` and ``/api/v1/aliasexecution``: ChatOps aliases from packs'
``aliases/`` directories — list, match a command, help strings, and run the aliased action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import execution_doc, json_response
from squall.auth.service import Principal
from squall.engine.aliases import AliasMatch, format_strings, match_command
from squall.engine.runtime import Runtime
from squall.errors import NotFoundError, SquallError, ValidationError
from squall.store import content

__all__ = ["router"]

router = APIRouter(tags=["aliases"])


class MatchRequest(BaseModel):
    """Body of ``POST /api/v1/actionalias/match``."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1, description="the chat command, e.g. 'hello Ada'")


class AliasExecutionRequest(BaseModel):
    """Body of ``POST /api/v1/aliasexecution`` (StackStorm's AliasExecution)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="alias name (or ref)")
    format: str = Field(min_length=1, description="the format (representation) matched")
    command: str = Field(min_length=1)
    user: str | None = Field(default=None, description="the chat user (recorded, not trusted)")
    source_channel: str | None = None
    source_context: dict[str, Any] | None = None
    notification_channel: str | None = None
    notification_route: str | None = None


class MatchAndExecuteRequest(BaseModel):
    """Body of ``POST /api/v1/aliasexecution/match_and_execute``."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1)
    user: str = Field(description="the chat user (recorded, not trusted)")
    source_channel: str
    source_context: dict[str, Any] | None = None
    notification_channel: str | None = None
    notification_route: str | None = None


async def _aliases(rt: Runtime, pack: str | None = None) -> list[dict[str, Any]]:
    return await rt.db.read(lambda conn: content.list_content(conn, "aliases", pack=pack))


async def _alias(rt: Runtime, ref_or_id: str) -> dict[str, Any]:
    for doc in await _aliases(rt):
        if ref_or_id in (doc.get("ref"), doc.get("id"), doc.get("name")):
            return doc
    raise NotFoundError(f"action alias {ref_or_id!r} not found")


@router.get("/api/v1/actionalias")
async def list_aliases(
    request: Request,
    principal: Auth,
    page: Paging,
    pack: str | None = None,
    name: str | None = None,
) -> Response:
    docs = await _aliases(get_runtime(request), pack)
    if name:
        docs = [d for d in docs if d.get("name") == name]
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


@router.get("/api/v1/actionalias/help")
async def alias_help(
    request: Request,
    principal: Auth,
    filter: str | None = None,
    pack: str | None = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Help strings of enabled aliases: ``{available, helpstrings: [{pack, display,
    description}]}`` (``filter`` is a case-insensitive substring of the display or description)."""
    strings: list[dict[str, str]] = []
    for doc in await _aliases(get_runtime(request), pack):
        if not doc.get("enabled", True):
            continue
        seen: set[str] = set()
        for display, _rep in format_strings(doc):
            if display in seen:
                continue
            seen.add(display)
            item = {
                "pack": str(doc.get("pack", "")),
                "display": display,
                "description": str(doc.get("description", "")),
            }
            needle = (filter or "").lower()
            if (
                needle
                and needle not in display.lower()
                and needle not in item["description"].lower()
            ):
                continue
            strings.append(item)
    return json_response(
        {"available": len(strings), "helpstrings": strings[offset : offset + limit]}
    )


@router.post("/api/v1/actionalias/match")
async def match_alias(body: MatchRequest, request: Request, principal: Auth) -> Response:
    """The one alias matching ``command``: 400 when none or several do."""
    found = await _match_one(get_runtime(request), body.command)
    return json_response(
        {
            "actionalias": found.alias,
            "display": found.display,
            "representation": found.representation,
        }
    )


@router.get("/api/v1/actionalias/{ref_or_id}")
async def get_alias(ref_or_id: str, request: Request, principal: Auth) -> Response:
    return json_response(await _alias(get_runtime(request), ref_or_id))


async def _match_one(rt: Runtime, command: str) -> AliasMatch:
    matches = match_command(await _aliases(rt), command)
    if not matches:
        raise ValidationError(f"command {command!r} matched no action alias")
    if len({m.alias.get("ref") for m in matches}) > 1:
        names = ", ".join(sorted({str(m.alias.get("ref")) for m in matches}))
        raise ValidationError(f"command {command!r} matched more than one action alias: {names}")
    return matches[0]


async def _execute(
    rt: Runtime,
    principal: Principal,
    found: AliasMatch,
    *,
    command: str,
    chat_user: str | None,
    source_channel: str | None,
    source_context: dict[str, Any] | None,
    notification_route: str | None,
) -> dict[str, Any]:
    alias = found.alias
    params = {**found.parameters, **dict(alias.get("immutable_parameters") or {})}
    context: dict[str, Any] = {
        "action_alias_ref": alias.get("ref"),
        "api_user": chat_user or principal.user,
        "user": principal.user,
        "source_channel": source_channel,
        "source_context": source_context or {},
        "command": command,
    }
    result_cfg = alias.get("result") or {}
    notify = None
    if notification_route and result_cfg.get("enabled", True):
        notify = {
            "on-complete": {
                "routes": [notification_route],
                "message": result_cfg.get("format") or "",
                "data": {"source_channel": source_channel, "user": chat_user},
            }
        }
    ex = await rt.executions.request(
        principal,
        str(alias["action_ref"]),
        params,
        context=context,
        notify=notify,
    )
    bundle = await rt.executions.bundle(ex.action_snapshot)
    doc = execution_doc(ex, bundle, api_url=rt.settings.api_url)
    message = ""
    ack = alias.get("ack") or {}
    if ack.get("enabled", True):
        message = f"Action {alias['action_ref']} executed (execution {ex.id})."
        if ack.get("format"):
            from squall.expr.jinja import render_template

            try:
                message = render_template(
                    str(ack["format"]), {"execution": doc, "actionalias": alias}
                )
            except SquallError as exc:
                message = f"{message} (ack format failed: {exc})"
    return {"execution": doc, "actionalias": alias, "message": message}


@router.post("/api/v1/aliasexecution", status_code=201)
async def alias_execution(
    body: AliasExecutionRequest, request: Request, principal: Auth
) -> Response:
    """Run the action of alias ``name`` with the parameters parsed from ``command``."""
    rt = get_runtime(request)
    alias = await _alias(rt, body.name)
    matches = match_command([alias], body.command, representation=body.format)
    if not matches:
        raise ValidationError(
            f"command {body.command!r} does not match format {body.format!r} of alias "
            f"{alias.get('ref')}"
        )
    doc = await _execute(
        rt,
        principal,
        matches[0],
        command=body.command,
        chat_user=body.user,
        source_channel=body.source_channel,
        source_context=body.source_context,
        notification_route=body.notification_route,
    )
    return json_response(doc, 201)


@router.post("/api/v1/aliasexecution/match_and_execute", status_code=201)
async def match_and_execute(
    body: MatchAndExecuteRequest, request: Request, principal: Auth
) -> Response:
    rt = get_runtime(request)
    found = await _match_one(rt, body.command)
    doc = await _execute(
        rt,
        principal,
        found,
        command=body.command,
        chat_user=body.user,
        source_channel=body.source_channel,
        source_context=body.source_context,
        notification_route=body.notification_route,
    )
    return json_response({"results": [doc]}, 201)
