"""``/api/v1/rules``, ``ruletypes``, ``ruleenforcements``, ``triggertypes``, ``triggers``,
``triggerinstances`` — plus Squall's ``rules/test`` and ``rules/backtest``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from starlette.responses import Response

from squall.api.authz import Target
from squall.api.deps import Auth, Paging, get_runtime
from squall.api.list_filters import visibility_limited, visible
from squall.api.permission_checks import rule_target
from squall.api.serialize import json_response
from squall.auth.rbac import pack_of_uid, uid_for_ref
from squall.errors import NotFoundError, ValidationError
from squall.rules.rule import parse_trigger_key
from squall.store import content, events

router = APIRouter(tags=["rules"])

_RULE_TYPES = [
    {
        "id": "standard",
        "name": "standard",
        "description": "A rule that fires on every trigger instance it matches.",
        "enabled": True,
        "parameters": {},
    },
    {
        "id": "backstop",
        "name": "backstop",
        "description": "A rule that fires only when no standard rule matched.",
        "enabled": True,
        "parameters": {},
    },
]


def _page(docs: list[dict[str, Any]], total: int, limit: int) -> Response:
    return json_response(docs, headers={"X-Total-Count": str(total), "X-Limit": str(limit)})


# --- rules ------------------------------------------------------------------------------------


@router.get("/api/v1/rules")
async def list_rules(
    request: Request,
    principal: Auth,
    page: Paging,
    pack: str | None = None,
    enabled: bool | None = None,
    trigger: str | None = None,
    action: str | None = None,
) -> Response:
    docs = await get_runtime(request).db.read(lambda conn: content.list_content(conn, "rules"))
    if pack:
        docs = [d for d in docs if d.get("pack") == pack]
    if enabled is not None:
        docs = [d for d in docs if bool(d.get("enabled")) == enabled]
    if trigger:
        docs = [d for d in docs if trigger in (d["trigger"].get("type"), d["trigger"].get("ref"))]
    if action:
        docs = [d for d in docs if d.get("action", {}).get("ref") == action]
    docs = visible(request, principal, "rule", docs, rule_target)
    return _page(docs[page.offset : page.offset + page.limit], len(docs), page.limit)


@router.get("/api/v1/rules/views")
async def list_rule_views(request: Request, principal: Auth, page: Paging) -> Response:
    return await list_rules(request, principal, page)


@router.get("/api/v1/rules/{ref_or_id}")
async def get_rule(ref_or_id: str, request: Request, principal: Auth) -> Response:
    return json_response(await get_runtime(request).rules.get(ref_or_id))


@router.get("/api/v1/rules/views/{ref_or_id}")
async def get_rule_view(ref_or_id: str, request: Request, principal: Auth) -> Response:
    return await get_rule(ref_or_id, request, principal)


async def _json_body(request: Request) -> dict[str, Any]:
    import orjson

    try:
        body = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object (a rule)")
    return body


@router.post("/api/v1/rules", status_code=201)
async def create_rule(request: Request, principal: Auth) -> Response:
    doc = await _json_body(request)
    # StackStorm records who created a rule (permission isolation shows it to them only).
    context = doc.get("context")
    doc["context"] = {**(context if isinstance(context, dict) else {}), "user": principal.user}
    rule = await get_runtime(request).rules.create(doc)
    return json_response(rule, 201)


@router.put("/api/v1/rules/{ref_or_id}")
async def update_rule(ref_or_id: str, request: Request, principal: Auth) -> Response:
    rule = await get_runtime(request).rules.update(ref_or_id, await _json_body(request))
    return json_response(rule)


@router.delete("/api/v1/rules/{ref_or_id}", status_code=204)
async def delete_rule(ref_or_id: str, request: Request, principal: Auth) -> Response:
    await get_runtime(request).rules.delete(ref_or_id)
    return Response(status_code=204)


class RuleTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any]
    payload: Any = None
    trigger_instance_id: str | None = None


@router.post("/api/v1/rules/test")
async def test_rule(body: RuleTestRequest, request: Request, principal: Auth) -> Response:
    """Squall: evaluate a rule against a payload or a stored trigger instance (no side effects)."""
    if body.payload is None and body.trigger_instance_id is None:
        raise ValidationError("give either payload or trigger_instance_id")
    result = await get_runtime(request).rules.test(
        body.rule, payload=body.payload, trigger_instance_id=body.trigger_instance_id
    )
    return json_response(result)


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any]
    since: str = Field(default="7d", description="ISO timestamp or a duration like 7d, 12h")
    until: str | None = None
    limit: int = Field(default=100, ge=0, le=10_000)


def parse_since(value: str, *, now: datetime, field: str = "since") -> datetime:
    """``7d``, ``12h``, ``30m``, ``90s`` ago, or an ISO 8601 timestamp."""
    text = value.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{field}: {value!r} is neither a duration (7d, 12h, 30m) nor an ISO timestamp"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@router.post("/api/v1/rules/backtest")
async def backtest_rule(body: BacktestRequest, request: Request, principal: Auth) -> Response:
    """Squall: which stored trigger instances would this rule have matched, with what?"""
    now = datetime.now(UTC)
    result = await get_runtime(request).rules.backtest(
        body.rule,
        since=parse_since(body.since, now=now),
        until=parse_since(body.until, now=now, field="until") if body.until else None,
        limit=body.limit,
    )
    return json_response(result)


@router.get("/api/v1/ruletypes")
async def list_rule_types(principal: Auth) -> Response:
    return json_response(_RULE_TYPES)


@router.get("/api/v1/ruletypes/{name}")
async def get_rule_type(name: str, principal: Auth) -> Response:
    for doc in _RULE_TYPES:
        if doc["name"] == name:
            return json_response(doc)
    raise NotFoundError(f"rule type {name!r} not found")


# --- enforcements -----------------------------------------------------------------------------


@router.get("/api/v1/ruleenforcements")
async def list_enforcements(
    request: Request,
    principal: Auth,
    page: Paging,
    rule_ref: str | None = None,
    rule: str | None = None,
    trigger_instance: str | None = None,
    execution: str | None = None,
    status: str | None = None,
) -> Response:
    limited = visibility_limited(request, principal)

    def _read(conn: Connection) -> tuple[list[events.Enforcement], int]:
        return events.list_enforcements(
            conn,
            rule_ref=rule_ref or rule,
            trigger_instance_id=trigger_instance,
            execution_id=execution,
            status=status,
            limit=1_000_000 if limited else page.limit,
            offset=0 if limited else page.offset,
        )

    rows, total = await get_runtime(request).db.read(_read)
    if limited:
        rows = visible(request, principal, "rule_enforcement", rows, _enforcement_target)
        total = len(rows)
        rows = rows[page.offset : page.offset + page.limit]
    return _page([r.as_api() for r in rows], total, page.limit)


def _enforcement_target(row: events.Enforcement) -> Target:
    rule_uid = uid_for_ref("rule", row.rule_ref)
    return Target(
        f"rule_enforcement:{row.id}", pack=pack_of_uid(rule_uid), also=(("rule_view", rule_uid),)
    )


@router.get("/api/v1/ruleenforcements/{enforcement_id}")
async def get_enforcement(enforcement_id: str, request: Request, principal: Auth) -> Response:
    from squall.store.schema import rule_enforcements

    def _read(conn: Connection) -> events.Enforcement | None:
        row = conn.execute(
            rule_enforcements.select().where(rule_enforcements.c.id == enforcement_id)
        ).first()
        return events.Enforcement.from_row(row) if row else None

    found = await get_runtime(request).db.read(_read)
    if found is None:
        raise NotFoundError(f"rule enforcement {enforcement_id!r} not found")
    return json_response(found.as_api())


# --- trigger types, triggers, instances -------------------------------------------------------


@router.get("/api/v1/triggertypes")
async def list_trigger_types(
    request: Request, principal: Auth, page: Paging, pack: str | None = None
) -> Response:
    docs = await get_runtime(request).db.read(
        lambda conn: content.list_content(conn, "triggers", pack=pack)
    )
    return _page(docs[page.offset : page.offset + page.limit], len(docs), page.limit)


@router.get("/api/v1/triggertypes/{ref_or_id}")
async def get_trigger_type(ref_or_id: str, request: Request, principal: Auth) -> Response:
    docs = await get_runtime(request).db.read(lambda conn: content.list_content(conn, "triggers"))
    for doc in docs:
        if ref_or_id in (doc.get("ref"), doc.get("id")):
            return json_response(doc)
    raise NotFoundError(f"trigger type {ref_or_id!r} not found")


@router.get("/api/v1/triggers")
async def list_triggers(
    request: Request, principal: Auth, page: Paging, type: str | None = None
) -> Response:
    docs = await get_runtime(request).db.read(lambda conn: events.list_triggers(conn, type=type))
    return _page(docs[page.offset : page.offset + page.limit], len(docs), page.limit)


@router.get("/api/v1/triggers/{ref_or_id}")
async def get_trigger(ref_or_id: str, request: Request, principal: Auth) -> Response:
    doc = await get_runtime(request).db.read(lambda conn: events.get_trigger(conn, ref_or_id))
    if doc is None:
        raise NotFoundError(f"trigger {ref_or_id!r} not found")
    return json_response(doc)


@router.get("/api/v1/triggerinstances")
async def list_trigger_instances(
    request: Request,
    principal: Auth,
    page: Paging,
    trigger: str | None = None,
    trigger_type: str | None = None,
    status: str | None = None,
    timestamp_gt: str | None = None,
    timestamp_lt: str | None = None,
) -> Response:
    now = datetime.now(UTC)
    filters: dict[str, Any] = {
        "trigger": trigger,
        "trigger_type": trigger_type,
        "status": status,
        "since": parse_since(timestamp_gt, now=now, field="timestamp_gt") if timestamp_gt else None,
        "until": parse_since(timestamp_lt, now=now, field="timestamp_lt") if timestamp_lt else None,
    }

    def _read(conn: Connection) -> tuple[list[events.TriggerInstance], int]:
        rows = events.list_instances(conn, limit=page.limit, offset=page.offset, **filters)
        return rows, events.count_instances(conn, **filters)

    rows, total = await get_runtime(request).db.read(_read)
    return _page([r.as_api() for r in rows], total, page.limit)


@router.get("/api/v1/triggerinstances/{instance_id}")
async def get_trigger_instance(instance_id: str, request: Request, principal: Auth) -> Response:
    ti = await get_runtime(request).db.read(lambda conn: events.get_instance(conn, instance_id))
    if ti is None:
        raise NotFoundError(f"trigger instance {instance_id!r} not found")
    return json_response(ti.as_api())


@router.post("/api/v1/triggerinstances/{instance_id}/re_emit")
async def re_emit(instance_id: str, request: Request, principal: Auth) -> Response:
    """Dispatch a stored trigger instance's payload again, as a new instance."""
    rt = get_runtime(request)
    ti = await rt.db.read(lambda conn: events.get_instance(conn, instance_id))
    if ti is None:
        raise NotFoundError(f"trigger instance {instance_id!r} not found")
    params = parse_trigger_key(ti.trigger_key)[1] if ti.trigger_key else None
    payload = ti.payload
    trace = f"re-emit of {ti.id}" if not ti.trace_tag else ti.trace_tag
    new = await rt.triggers.dispatch(
        ti.trigger_type, payload, parameters=params, trace_tag=trace, validate=False
    )
    return json_response(
        {
            "message": f"Trigger instance {ti.id} successfully re-sent.",
            "trigger_instance": new.as_api(),
        }
    )
