"""``/stream/v1``: StackStorm's server-sent event stream, resumable with ``Last-Event-ID``.

* ``GET /stream/v1/stream`` — execution, liveaction, output and announcement events with
  StackStorm's names and query filters (``events``, ``action_refs``, ``execution_ids``,
  ``end_event``, ``end_execution_id``).
* ``GET /stream/v1/executions/{id}/output`` — the output of one execution so far, then live,
  closed with StackStorm's ``EOF`` event once the execution is finished.

Every event carries an ``id:`` — a cursor (see ``docs/stream.md``). A client that reconnects
with ``Last-Event-ID: <cursor>`` (or ``?last_event_id=``) gets everything it missed, replayed
from the database. Heartbeats are SSE comment lines every ``heartbeat`` seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from squall.api.deps import Auth, get_runtime
from squall.api.list_filters import stream_visibility
from squall.api.serialize import execution_doc
from squall.auth.service import Principal
from squall.engine.runtime import Runtime
from squall.engine.stream import DEFAULT_EVENTS, OUTPUT_EVENT, EventFilter, StreamEvent
from squall.errors import ValidationError
from squall.model.formatting import iso
from squall.model.status import TERMINAL_STATUSES
from squall.store import executions as exrepo
from squall.store import stream as positions
from squall.store.stream import ExecutionChange, OutputChange

__all__ = ["authorize_stream", "render_event", "router"]

router = APIRouter(prefix="/stream/v1", tags=["stream"])

HEARTBEAT = b": heartbeat\n\n"
EOF = b"event: EOF\ndata: ''\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_MEDIA = "text/event-stream; charset=UTF-8"

Visibility = Callable[[StreamEvent], bool]


async def authorize_stream(rt: Runtime, principal: Principal) -> Visibility | None:
    """RBAC hook for both stream routes: a per-event predicate hiding the executions the
    caller may not view (and, with permission isolation, everyone else's), or ``None`` to
    show everything. ``stream_view`` itself is checked by the route permission table."""
    allowed = stream_visibility(principal, isolation=rt.settings.rbac_isolation)
    if allowed is None:
        return None

    def visible(event: StreamEvent) -> bool:
        change = event.change
        if isinstance(change, OutputChange):
            return allowed(change.chunk.execution_id, None, change.action_ref)
        ex = change.execution
        return allowed(ex.id, ex.user, ex.action_ref)

    return visible


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _cursor(*values: str | None) -> int | None:
    for value in values:
        if value is None or value == "":
            continue
        try:
            cursor = int(value)
        except ValueError:
            cursor = -1
        if cursor < 0:
            raise ValidationError(
                f"Last-Event-ID {value!r} is not a stream cursor",
                hint="send back the id of the last event received (a non-negative integer)",
            )
        return cursor
    return None


# --- rendering --------------------------------------------------------------------------------


def _execution_json(change: ExecutionChange, event: StreamEvent, api_url: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = change.cache.get("doc")
    if doc is None:
        doc = change.cache["doc"] = execution_doc(change.execution, event.bundle, api_url=api_url)
    return doc


def _data(event: StreamEvent, api_url: str) -> bytes:
    change = event.change
    cached: bytes | None = change.cache.get(event.kind)
    if cached is not None:
        return cached
    body: Any
    if isinstance(change, OutputChange):
        chunk = change.chunk
        body = {
            "id": str(chunk.id),
            "execution_id": chunk.execution_id,
            "action_ref": change.action_ref,
            "runner_ref": change.runner_type,
            "timestamp": iso(chunk.created_at),
            "output_type": chunk.stream,
            "data": chunk.data,
        }
    elif event.kind == "announcement":
        body = change.execution.result
    elif event.kind == "liveaction":
        doc = _execution_json(change, event, api_url)
        body = dict(doc["liveaction"], notify=doc.get("notify") or {})
    else:
        body = _execution_json(change, event, api_url)
    data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    change.cache[event.kind] = data
    return data


def render_event(event: StreamEvent, api_url: str) -> bytes:
    """One SSE frame; the JSON is rendered once per change and shared by all clients."""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        event.id.encode(),
        event.name.encode(),
        _data(event, api_url),
    )


# --- /stream/v1/stream ------------------------------------------------------------------------


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    principal: Auth,
    events: Annotated[list[str] | None, Query(description="event names or globs")] = None,
    action_refs: Annotated[list[str] | None, Query()] = None,
    execution_ids: Annotated[list[str] | None, Query()] = None,
    end_event: str | None = None,
    end_execution_id: str | None = None,
    last_event_id: Annotated[str | None, Query(description="resume after this cursor")] = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """Server-sent events of executions, liveactions, output and announcements."""
    rt = get_runtime(request)
    visible = await authorize_stream(rt, principal)
    flt = EventFilter(
        events=tuple(_split(events)) or DEFAULT_EVENTS,
        action_refs=frozenset(_split(action_refs)),
        execution_ids=frozenset(_split(execution_ids)),
        end_event=end_event or None,
        end_execution_id=end_execution_id or None,
        visible=visible,
    )
    after = _cursor(last_event_header, last_event_id)
    sub = await rt.stream.subscribe(flt, after=after)
    first: list[StreamEvent] = []
    if after is None and flt.end_event and flt.end_execution_id:
        # Already finished? StackStorm's stream would wait forever; send the end and close.
        first = await _already_ended(rt, flt, sub.cursor)
    api_url = rt.settings.api_url

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield HEARTBEAT  # headers and a first byte right away
            if first:
                yield b"".join(render_event(e, api_url) for e in first if flt.matches(e))
                return
            while True:
                batch = await sub.next_events(rt.stream.heartbeat)
                if sub.closed:
                    return  # the server is stopping
                if batch:
                    yield b"".join(render_event(e, api_url) for e in batch)
                elif not sub.ended:
                    yield HEARTBEAT
                if sub.ended:
                    return
        finally:
            sub.close()

    return StreamingResponse(frames(), media_type=_MEDIA, headers=_HEADERS)


async def _already_ended(rt: Runtime, flt: EventFilter, cursor: int) -> list[StreamEvent]:
    ex = await rt.db.read(lambda conn: exrepo.get(conn, flt.end_execution_id or ""))
    if ex is None or ex.status not in TERMINAL_STATUSES:
        return []
    kind = "liveaction" if (flt.end_event or "").startswith("st2.liveaction") else "execution"
    try:
        bundle = await rt.executions.bundle(ex.action_snapshot)
    except Exception:
        bundle = None
    change = ExecutionChange(pos=cursor, created=cursor, execution=ex)
    event = StreamEvent(flt.end_event or "", str(cursor), cursor, kind, change, bundle)
    return [event] if flt.ends(event) else []


# --- /stream/v1/executions/{id}/output --------------------------------------------------------


async def _last_execution_id(rt: Runtime) -> str:
    rows = await rt.db.read(
        lambda conn: exrepo.list_executions(conn, exrepo.ExecutionFilter(), limit=1)
    )
    if not rows:
        from squall.errors import NotFoundError

        raise NotFoundError("there are no executions yet")
    return rows[0].id


@router.get("/executions/{execution_id}/output", response_class=StreamingResponse)
async def execution_output(
    execution_id: str,
    request: Request,
    principal: Auth,
    output_type: str | None = None,
    last_event_id: Annotated[str | None, Query(description="resume after this cursor")] = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """The output of one execution as server-sent events, ending with ``EOF`` when finished."""
    rt = get_runtime(request)
    visible = await authorize_stream(rt, principal)
    if output_type not in (None, "", "all", "stdout", "stderr"):
        raise ValidationError("output_type must be stdout, stderr or all")
    stream_name = None if output_type in (None, "", "all") else output_type
    if execution_id == "last":
        execution_id = await _last_execution_id(rt)
    await rt.executions.get(execution_id, with_result=False)  # 404 for unknown ids
    after = _cursor(last_event_header, last_event_id)
    flt = EventFilter(
        events=(OUTPUT_EVENT, "st2.execution__update"),
        execution_ids=frozenset({execution_id}),
        visible=visible,
    )
    sub = await rt.stream.subscribe(flt, after=after)
    api_url = rt.settings.api_url
    # Read the status only now: a change after this point reaches the subscription.
    ex = await rt.executions.get(execution_id, with_result=False)
    done = ex.status in TERMINAL_STATUSES
    existing: list[StreamEvent] = []
    if done:
        # Finished: all its output is stored; send what the client has not seen, then EOF.
        sub.close()
        existing = await _stored_output(rt, ex, after=after)
    elif after is None:
        # Output up to the subscription's cursor now; everything later arrives live.
        existing = await _stored_output(rt, ex, until=sub.cursor)
    if visible is not None:
        existing = [e for e in existing if visible(e)]

    def wanted(event: StreamEvent) -> bool:
        if event.kind != "output":
            return False
        assert isinstance(event.change, OutputChange)
        return stream_name is None or event.change.chunk.stream == stream_name

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"".join([HEARTBEAT, *(render_event(e, api_url) for e in existing if wanted(e))])
            if done:
                yield EOF
                return
            while True:
                batch = await sub.next_events(rt.stream.heartbeat)
                if sub.closed:
                    return  # the server is stopping
                if not batch:
                    yield HEARTBEAT
                    continue
                out = [render_event(e, api_url) for e in batch if wanted(e)]
                finished = any(
                    e.name == "st2.execution__update" and e.status in TERMINAL_STATUSES
                    for e in batch
                )
                if finished:
                    out.append(EOF)
                if out:
                    yield b"".join(out)
                if finished:
                    return
        finally:
            sub.close()

    return StreamingResponse(frames(), media_type=_MEDIA, headers=_HEADERS)


async def _stored_output(
    rt: Runtime, ex: exrepo.Execution, *, after: int | None = None, until: int | None = None
) -> list[StreamEvent]:
    stored = await rt.db.read(
        lambda conn: positions.read_output_between(conn, ex.id, after=after, until=until)
    )
    return [
        StreamEvent(
            OUTPUT_EVENT,
            str(pos),
            pos,
            "output",
            OutputChange(
                pos=pos, chunk=chunk, action_ref=ex.action_ref, runner_type=ex.runner_type
            ),
        )
        for pos, chunk in stored
    ]
