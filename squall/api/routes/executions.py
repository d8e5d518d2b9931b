"""``/api/v1/executions``: run actions, list and read history, cancel, re-run, output."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from starlette.responses import PlainTextResponse, Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.list_filters import scoped_execution_filter
from squall.api.serialize import execution_doc, json_response, project
from squall.engine.executions import ActionBundle
from squall.engine.runtime import Runtime
from squall.errors import NotFoundError, ValidationError
from squall.model.status import TERMINAL_STATUSES
from squall.store import content
from squall.store import executions as exrepo
from squall.store.executions import Execution, ExecutionFilter

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])


class ExecutionRequest(BaseModel):
    """Body of ``POST /api/v1/executions`` (StackStorm's ExecutionRequest = LiveAction + user).

    Unknown fields are refused (400 naming them). LiveAction's read-only fields (``id``,
    ``status``, timestamps, ``result`` …) are accepted and ignored: clients that send back a
    document they read must keep working.
    """

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="action ref, e.g. core.local")
    parameters: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None
    delay: int | None = Field(default=None, ge=0, description="delay in milliseconds")
    user: str | None = None
    trace_tag: str | None = None
    id: str | None = Field(default=None, description="ignored (read-only)")
    status: str | None = Field(default=None, description="ignored (read-only)")
    start_timestamp: str | None = Field(default=None, description="ignored (read-only)")
    end_timestamp: str | None = Field(default=None, description="ignored (read-only)")
    action_is_workflow: bool | None = Field(default=None, description="ignored (read-only)")
    result: Any = Field(default=None, description="ignored (read-only)")
    callback: dict[str, Any] | None = Field(default=None, description="ignored (read-only)")
    runner_info: dict[str, Any] | None = Field(default=None, description="ignored (read-only)")


class StatusUpdate(BaseModel):
    """Body of ``PUT /api/v1/executions/{id}``: ``canceling``, ``pausing`` or ``resuming``."""

    model_config = ConfigDict(extra="forbid")

    status: str
    result: dict[str, Any] | None = None


class ReRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=list)
    reset: list[str] = Field(default_factory=list)
    delay: int | None = Field(default=None, ge=0)
    user: str | None = Field(default=None, description="ignored: re-runs run as the caller")


async def _bundles(rt: Runtime, rows: list[Execution]) -> dict[str, ActionBundle]:
    """Compiled action versions for ``rows`` (cached; missing ones fetched in one query)."""
    wanted = {r.action_snapshot for r in rows}
    out: dict[str, ActionBundle] = {}
    missing = []
    for snap in wanted:
        cached = rt.executions._bundles.get(snap)
        if cached is not None:
            out[snap] = cached
        else:
            missing.append(snap)
    if missing:
        docs = await rt.db.read(lambda conn: content.get_snapshots(conn, missing))
        for snap, doc in docs.items():
            try:
                out[snap] = rt.executions.bundle_from_doc(snap, doc)
            except Exception:  # an action version whose runner is gone: show it bare
                continue
    return out


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


@router.post("", status_code=201)
async def create_execution(body: ExecutionRequest, request: Request, principal: Auth) -> Response:
    rt = get_runtime(request)
    if body.user and body.user != principal.user and not principal.is_admin:
        # st2#6379: nobody runs actions as somebody else unless they are an admin.
        from squall.errors import PermissionDenied

        raise PermissionDenied(
            f"user {principal.user!r} may not run actions as {body.user!r}",
            hint="leave 'user' out, or ask an admin",
        )
    actor = principal
    if body.user and body.user != principal.user:
        # An admin acting as another user acts with that user's permissions.
        actor = await rt.auth.principal_for(body.user, method="impersonated")
    context = dict(body.context or {})
    header_ctx = request.headers.get("st2-context")
    if header_ctx:
        import orjson

        try:
            extra = orjson.loads(header_ctx)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the st2-context header is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise ValidationError("the st2-context header must be a JSON object")
        context.update(extra)
    ex = await rt.executions.request(
        actor,
        body.action,
        body.parameters,
        context=context,
        notify=body.notify,
        delay_ms=body.delay,
        trace_tag=body.trace_tag,
    )
    bundle = await rt.executions.bundle(ex.action_snapshot)
    return json_response(execution_doc(ex, bundle, api_url=rt.settings.api_url), 201)


@router.get("")
async def list_executions(
    request: Request,
    principal: Auth,
    page: Paging,
    action: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    user: str | None = None,
    parent: str | None = None,
    runner: str | None = None,
    timestamp_gt: str | None = None,
    timestamp_lt: str | None = None,
    show_all: bool = False,
    sort_asc: Annotated[bool, Query(description="oldest first")] = False,
    sort_desc: Annotated[bool, Query(description="newest first (the default)")] = False,
    include_attributes: Annotated[list[str] | None, Query()] = None,
    exclude_attributes: Annotated[list[str] | None, Query()] = None,
    id: Annotated[list[str] | None, Query(description="execution ids")] = None,
    liveaction: Annotated[str | None, Query(description="same as id")] = None,
    rule: Annotated[str | None, Query(description="requested by this rule (ref or id)")] = None,
    trigger_instance: str | None = None,
    trigger: Annotated[str | None, Query(description="trigger ref")] = None,
    trigger_type: str | None = None,
    timestamp: Annotated[str | None, Query(description="exact start timestamp")] = None,
    show_secrets: bool = False,
) -> Response:
    rt = get_runtime(request)
    ids = _split(id) + ([liveaction] if liveaction else [])
    flt = ExecutionFilter(
        action=action,
        status=_split(status),
        user=user,
        parent=None if parent in (None, "null") else parent,
        root_only=parent == "null",
        runner=runner,
        created_after=_parse_ts(timestamp_gt, "timestamp_gt"),
        created_before=_parse_ts(timestamp_lt, "timestamp_lt"),
        ids=ids,
        rule=rule,
        trigger_instance=trigger_instance,
        trigger=trigger,
        trigger_type=trigger_type,
        created_at=_parse_ts(timestamp, "timestamp"),
    )
    flt = scoped_execution_filter(request, principal, flt)
    include = _split(include_attributes)
    exclude = _split(exclude_attributes)
    with_result = (not include or any(p.split(".")[0] == "result" for p in include)) and (
        "result" not in exclude
    )

    def _read(conn: Connection) -> Any:
        rows = exrepo.list_executions(
            conn,
            flt,
            limit=page.limit,
            offset=page.offset,
            ascending=sort_asc and not sort_desc,
            with_result=with_result,
        )
        # X-Total-Count is exact. A page that is not full ends the list, so its total is known
        # without counting; otherwise the count reads one covering index (see the schema).
        if (rows and len(rows) < page.limit) or (not rows and page.offset == 0):
            total = page.offset + len(rows)
        else:
            total = exrepo.count(conn, flt)
        return total, rows

    total, rows = await rt.db.read(_read)
    bundles = await _bundles(rt, rows)
    docs = [
        project(
            execution_doc(
                r,
                bundles.get(r.action_snapshot),
                api_url=rt.settings.api_url,
                with_result=with_result,
            ),
            include,
            exclude,
        )
        for r in rows
    ]
    return json_response(docs, headers={"X-Total-Count": str(total), "X-Limit": str(page.limit)})


def _parse_ts(value: str | None, name: str) -> Any:
    if not value:
        return None
    from datetime import UTC, datetime

    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{name}: {value!r} is not an ISO 8601 timestamp", hint="e.g. 2026-01-31T12:00:00Z"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


async def _load(rt: Runtime, execution_id: str) -> tuple[Execution, ActionBundle | None]:
    ex = await rt.executions.get(execution_id)
    bundles = await _bundles(rt, [ex])
    return ex, bundles.get(ex.action_snapshot)


@router.get("/{execution_id}")
async def get_execution(
    execution_id: str,
    request: Request,
    principal: Auth,
    include_attributes: Annotated[list[str] | None, Query()] = None,
    exclude_attributes: Annotated[list[str] | None, Query()] = None,
) -> Response:
    rt = get_runtime(request)
    ex, bundle = await _load(rt, execution_id)
    doc = execution_doc(ex, bundle, api_url=rt.settings.api_url)
    return json_response(project(doc, _split(include_attributes), _split(exclude_attributes)))


@router.get("/views/filters")
async def execution_filters(
    request: Request,
    principal: Auth,
    types: Annotated[list[str] | None, Query(description="filters to return")] = None,
) -> Response:
    """Distinct values of the history filters (for a UI's drop-downs)."""
    from squall.model.status import ExecutionStatus

    wanted = set(_split(types)) or {"action", "status", "user", "runner", "rule", "trigger_type"}
    columns = {"action": "action_ref", "user": "user", "runner": "runner_type"}

    def _read(conn: Connection) -> dict[str, list[str]]:
        import sqlalchemy as sa

        from squall.store.schema import executions, rule_enforcements, trigger_instances

        out: dict[str, list[str]] = {}
        for name, column in columns.items():
            if name in wanted:
                col = executions.c[column]
                out[name] = [
                    v for v in conn.execute(sa.select(col).distinct().order_by(col)).scalars()
                ]
        if "rule" in wanted:
            col = rule_enforcements.c.rule_ref
            out["rule"] = list(conn.execute(sa.select(col).distinct().order_by(col)).scalars())
        if "trigger_type" in wanted:
            col = trigger_instances.c.trigger_type
            out["trigger_type"] = list(
                conn.execute(sa.select(col).distinct().order_by(col)).scalars()
            )
        return out

    doc = await get_runtime(request).db.read(_read)
    if "status" in wanted:
        doc["status"] = [str(s) for s in ExecutionStatus]
    return json_response(doc)


@router.get("/{execution_id}/attribute/{attribute}")
async def get_attribute(
    execution_id: str, attribute: str, request: Request, principal: Auth
) -> Response:
    """One top-level attribute of an execution (``status``, ``result``, ``parameters`` …)."""
    rt = get_runtime(request)
    ex, bundle = await _load(rt, execution_id)
    doc = execution_doc(ex, bundle, api_url=rt.settings.api_url)
    if attribute not in doc:
        raise NotFoundError(f"execution {execution_id} has no attribute {attribute!r}")
    return json_response(doc[attribute])


@router.get("/{execution_id}/result")
async def get_result(execution_id: str, request: Request, principal: Auth) -> Response:
    rt = get_runtime(request)
    ex = await rt.executions.get(execution_id)
    return json_response(ex.result)


@router.get("/{execution_id}/children")
async def get_children(
    execution_id: str, request: Request, principal: Auth, page: Paging
) -> Response:
    rt = get_runtime(request)
    await rt.executions.get(execution_id, with_result=False)

    def _read(conn: Connection) -> Any:
        rows = exrepo.list_executions(
            conn,
            ExecutionFilter(parent=execution_id),
            limit=page.limit,
            offset=page.offset,
            ascending=True,
        )
        return rows

    rows = await rt.db.read(_read)
    bundles = await _bundles(rt, rows)
    return json_response(
        [
            execution_doc(r, bundles.get(r.action_snapshot), api_url=rt.settings.api_url)
            for r in rows
        ]
    )


@router.get("/{execution_id}/output")
async def get_output(
    execution_id: str,
    request: Request,
    principal: Auth,
    output_type: str | None = None,
) -> Response:
    """All output so far, as plain text (StackStorm's ``/output``)."""
    rt = get_runtime(request)
    await rt.executions.get(execution_id, with_result=False)
    if output_type not in (None, "", "stdout", "stderr", "all"):
        raise ValidationError("output_type must be stdout, stderr or all")
    stream = None if output_type in (None, "", "all") else output_type

    chunks = await rt.db.read(
        lambda conn: exrepo.read_output(conn, execution_id, stream=stream, limit=1_000_000)
    )
    return PlainTextResponse("".join(c.data for c in chunks))


@router.get("/{execution_id}/output/chunks")
async def get_output_chunks(
    execution_id: str,
    request: Request,
    principal: Auth,
    after: int = 0,
) -> Response:
    """Squall: output pieces after chunk ``after`` plus the status, for polling tails."""
    rt = get_runtime(request)
    ex = await rt.executions.get(execution_id, with_result=False)

    chunks = await rt.db.read(lambda conn: exrepo.read_output(conn, execution_id, after_id=after))
    return json_response(
        {
            "status": ex.status,
            "done": ex.status in TERMINAL_STATUSES,
            "chunks": [{"id": c.id, "stream": c.stream, "data": c.data} for c in chunks],
        }
    )


@router.put("/{execution_id}")
async def update_execution(
    execution_id: str, body: StatusUpdate, request: Request, principal: Auth
) -> Response:
    rt = get_runtime(request)
    if body.status in ("canceling", "canceled"):
        await rt.executions.cancel(principal, execution_id)
    elif body.status in ("pausing", "paused", "resuming", "running"):
        kind = "pause" if body.status in ("pausing", "paused") else "resume"
        await rt.workflows.request(principal, execution_id, kind)
    else:
        raise ValidationError(
            f"cannot set status {body.status!r}", hint="use canceling, pausing or resuming"
        )
    ex, bundle = await _load(rt, execution_id)
    return json_response(execution_doc(ex, bundle, api_url=rt.settings.api_url))


@router.delete("/{execution_id}")
async def cancel_execution(execution_id: str, request: Request, principal: Auth) -> Response:
    rt = get_runtime(request)
    await rt.executions.cancel(principal, execution_id)
    ex, bundle = await _load(rt, execution_id)
    return json_response(execution_doc(ex, bundle, api_url=rt.settings.api_url))


@router.post("/{execution_id}/re_run", status_code=201)
async def re_run(
    execution_id: str, body: ReRunRequest, request: Request, principal: Auth
) -> Response:
    rt = get_runtime(request)
    if body.tasks or body.reset:
        ex = await rt.workflows.rerun(
            principal,
            execution_id,
            body.parameters,
            tasks=body.tasks,
            reset=body.reset,
            delay_ms=body.delay,
        )
        bundle = await rt.executions.bundle(ex.action_snapshot)
        return json_response(execution_doc(ex, bundle, api_url=rt.settings.api_url), 201)
    try:
        ex = await rt.executions.re_run(
            principal, execution_id, body.parameters, delay_ms=body.delay
        )
    except NotFoundError:
        raise
    bundle = await rt.executions.bundle(ex.action_snapshot)
    return json_response(execution_doc(ex, bundle, api_url=rt.settings.api_url), 201)
