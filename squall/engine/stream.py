"""The event stream: one tail of the database per process, fanned out to every subscriber.

Nothing is published anywhere: every change of an execution and every output chunk carries a
stream position (``squall/store/stream.py``), so the stream *is* a range query. While anybody
listens, the :class:`StreamService` of a process reads the changes after its position every
``poll_interval`` seconds, turns them into StackStorm's events once and hands the batch to each
:class:`Subscription`. On PostgreSQL every process tails the database itself, so a client sees
changes made by any process.

A subscription remembers its own cursor. A client that resumes from an old cursor (SSE
``Last-Event-ID``), or falls too far behind, replays from the database with its filters until
it reaches the live batches — the same events it would have seen live, except that an execution
that changed several times is reported once, in its latest state.

Event ids: an event's ``id`` is a cursor — "everything up to here was delivered". One execution
change can yield several events (``execution__create``, ``liveaction__create``,
``execution__update`` …); all but the last one a client receives carry the position before the
change, so a client cut off inside such a group gets the whole group again (the documents are
idempotent). Output chunks are one event each and are never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from squall.engine.executions import ActionBundle, ExecutionService
from squall.model.status import TERMINAL_STATUSES, ExecutionStatus
from squall.store import stream as positions
from squall.store.db import Database
from squall.store.stream import Changes, ExecutionChange, OutputChange

__all__ = [
    "DEFAULT_EVENTS",
    "OUTPUT_EVENT",
    "EventFilter",
    "StreamEvent",
    "StreamService",
    "Subscription",
    "build_events",
]

log = logging.getLogger(__name__)

OUTPUT_EVENT = "st2.execution.output__create"

#: What ``/stream/v1/stream`` sends without ``events=`` (StackStorm's default: no output).
DEFAULT_EVENTS = (
    "st2.announcement__*",
    "st2.execution__create",
    "st2.execution__update",
    "st2.execution__delete",
    "st2.liveaction__create",
    "st2.liveaction__update",
    "st2.liveaction__delete",
)


@dataclass(eq=False)
class StreamEvent:
    """One event of the stream; ``data`` is rendered by the API (once, memoized on ``change``).

    ``kind`` is ``execution``, ``liveaction``, ``output`` or ``announcement``.
    """

    name: str
    id: str
    pos: int
    kind: str
    change: ExecutionChange | OutputChange
    bundle: ActionBundle | None = None
    #: The route of an announcement.
    route: str | None = None

    @property
    def execution_id(self) -> str:
        if isinstance(self.change, OutputChange):
            return self.change.chunk.execution_id
        return self.change.execution.id

    @property
    def action_ref(self) -> str:
        if isinstance(self.change, OutputChange):
            return self.change.action_ref
        return self.change.execution.action_ref

    @property
    def status(self) -> str | None:
        if isinstance(self.change, OutputChange):
            return None
        return self.change.execution.status


def _announcement_route(change: ExecutionChange, bundle: ActionBundle | None) -> str:
    route = change.execution.parameters.get("route")
    if not route and bundle is not None:
        route = (bundle.specs.get("route") or {}).get("default")
    return str(route or "general")


def build_events(
    changes: Changes, *, base: int, bundles: dict[str, ActionBundle | None]
) -> list[StreamEvent]:
    """Turn changes read after cursor ``base`` into events, in position order.

    An execution created after ``base`` gets its ``__create`` events at the position it was
    inserted at, before the output it produced since, and its ``__update`` events at its
    latest position; both carry its latest state.
    """
    groups: list[tuple[int, list[tuple[str, str]], ExecutionChange | OutputChange]] = []
    for out in changes.output:
        groups.append((out.pos, [(OUTPUT_EVENT, "output")], out))
    for ch in changes.executions:
        ex = ch.execution
        updates = [("st2.execution__update", "execution"), ("st2.liveaction__update", "liveaction")]
        if ex.runner_type == "announcement" and ex.status == ExecutionStatus.SUCCEEDED:
            target = _announcement_route(ch, bundles.get(ex.action_snapshot))
            updates.append((f"st2.announcement__{target}", "announcement"))
        if ch.created > base:
            creates = [
                ("st2.execution__create", "execution"),
                ("st2.liveaction__create", "liveaction"),
            ]
            if ch.pos == ch.created:
                groups.append((ch.pos, creates + updates[2:], ch))
                continue
            groups.append((ch.created, creates, ch))
        groups.append((ch.pos, updates, ch))
    groups.sort(key=lambda g: g[0])
    events: list[StreamEvent] = []
    for pos, names, change in groups:
        bundle = None
        route: str | None = None
        if isinstance(change, ExecutionChange):
            bundle = bundles.get(change.execution.action_snapshot)
        for i, (name, kind) in enumerate(names):
            if kind == "announcement":
                route = name.split("__", 1)[1]
            # All but a group's last event resume *before* the group: a client cut off inside
            # it gets the whole group again rather than losing its end.
            event_id = str(pos if i == len(names) - 1 else pos - 1)
            events.append(StreamEvent(name, event_id, pos, kind, change, bundle, route))
    return events


@dataclass(frozen=True)
class EventFilter:
    """StackStorm's stream query: ``events`` (globs), ``action_refs``, ``execution_ids``,
    ``end_event`` and ``end_execution_id``; ``visible`` is the permission hook (RBAC)."""

    events: tuple[str, ...] = DEFAULT_EVENTS
    action_refs: frozenset[str] = frozenset()
    execution_ids: frozenset[str] = frozenset()
    end_event: str | None = None
    end_execution_id: str | None = None
    visible: Callable[[StreamEvent], bool] | None = field(default=None, compare=False)

    def wants_name(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.events)

    @property
    def wants_output(self) -> bool:
        return self.wants_name(OUTPUT_EVENT)

    @property
    def wants_executions(self) -> bool:
        """False when only output events can match (a replay then skips executions)."""
        return bool(self.end_event) or any(p != OUTPUT_EVENT for p in self.events)

    def matches(self, event: StreamEvent) -> bool:
        if not self.wants_name(event.name):
            return False
        if event.kind == "announcement":
            # Announcements belong to no action or execution for filtering (as in StackStorm).
            if self.action_refs or self.execution_ids:
                return False
        else:
            if self.action_refs and event.action_ref not in self.action_refs:
                return False
            if self.execution_ids and event.execution_id not in self.execution_ids:
                return False
        return self.visible is None or self.visible(event)

    def ends(self, event: StreamEvent) -> bool:
        """True for the event after which the stream closes (``end_event`` of a finished
        ``end_execution_id``)."""
        return (
            self.end_event is not None
            and event.name == self.end_event
            and event.kind in ("execution", "liveaction")
            and event.status in TERMINAL_STATUSES
            and (self.end_execution_id is None or event.execution_id == self.end_execution_id)
        )


@dataclass(frozen=True)
class _Batch:
    start: int
    end: int
    events: list[StreamEvent]


_CLOSED = _Batch(-1, -1, [])


class Subscription:
    """One client's view of the stream: its cursor, its filter, its queue of live batches."""

    def __init__(self, service: StreamService, cursor: int, flt: EventFilter, replay: bool):
        self.service = service
        self.cursor = cursor
        self.filter = flt
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=service.max_queued_batches)
        self._replaying = replay
        self._lagging = False
        #: Set once the ``end_event`` arrived: the stream should close after what it returned.
        self.ended = False
        #: Set when the service shuts down: the stream should close now.
        self.closed = False

    def _push(self, batch: _Batch) -> None:
        if self._lagging or self.closed:
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            # Too slow: drop live batches and catch up from the database instead.
            self._lagging = True

    async def next_events(self, timeout: float) -> list[StreamEvent]:
        """Matching events after the cursor (advancing it); ``[]`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.closed:
                return []
            if self._lagging:
                self._lagging = False
                while not self._queue.empty():
                    self._queue.get_nowait()
                self._replaying = True
            if self._replaying:
                events, complete = await self._replay()
                if complete:
                    self._replaying = False
                if events or self.ended:
                    return events
                if loop.time() >= deadline:
                    return []
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                batch = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                return []
            if batch is _CLOSED:
                return []
            if batch.end <= self.cursor:
                continue
            if batch.start > self.cursor:
                self._replaying = True  # batches were missed: read them from the database
                continue
            seen, self.cursor = self.cursor, batch.end
            events = self._select(batch.events, seen)
            if events or self.ended:
                return events

    def _select(self, events: list[StreamEvent], seen: int) -> list[StreamEvent]:
        """The events after ``seen`` this client wants, up to and including its end event."""
        out: list[StreamEvent] = []
        flt = self.filter
        for event in events:
            if event.pos <= seen:
                continue
            wanted = flt.matches(event)
            if wanted:
                out.append(event)
            if flt.ends(event):  # checked whether or not it is delivered, as StackStorm does
                self.ended = True
                break
        # The last event of a group this client gets is its last of that group: resuming
        # after it loses nothing the client wants (see the module docstring).
        for i, event in enumerate(out):
            last_of_group = i + 1 == len(out) or out[i + 1].pos != event.pos
            if last_of_group and event.id != str(event.pos):
                out[i] = replace(event, id=str(event.pos))
        return out

    async def _replay(self) -> tuple[list[StreamEvent], bool]:
        flt, start = self.filter, self.cursor
        # Narrow the read in SQL, unless an end event may come from outside the filters.
        narrow = flt.end_event is None
        changes = await self.service.db.read(
            lambda conn: positions.read_changes(
                conn,
                start,
                limit=self.service.batch_size,
                with_executions=flt.wants_executions,
                with_output=flt.wants_output,
                execution_ids=sorted(flt.execution_ids) if narrow else (),
                action_refs=sorted(flt.action_refs) if narrow else (),
            )
        )
        events = await self.service.build(changes, base=start)
        self.cursor = max(self.cursor, changes.end)
        return self._select(events, start), changes.complete

    def close(self) -> None:
        self.service._subs.discard(self)

    def _shutdown(self) -> None:
        """The service is stopping: wake the reader so its response can end."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class StreamService:
    """The stream of one process: tails the database while anybody subscribes.

    Args:
        db: the database.
        executions: for the action versions the execution documents need.
        poll_interval: seconds between reads of new changes.
        heartbeat: seconds of silence after which the API sends a heartbeat.
    """

    def __init__(
        self,
        db: Database,
        executions: ExecutionService,
        *,
        poll_interval: float = 0.1,
        heartbeat: float = 10.0,
    ) -> None:
        self.db = db
        self.executions = executions
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat
        self.batch_size = 500
        self.max_queued_batches = 1000
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._position = 0
        self._pushed_end = 0
        self._starting: asyncio.Lock | None = None

    @property
    def position(self) -> int:
        """The newest position this process has read (live subscriptions start here)."""
        return self._position

    async def subscribe(self, flt: EventFilter, *, after: int | None = None) -> Subscription:
        """Start listening: live from now, or replaying everything after cursor ``after``."""
        await self._ensure_running()
        if after is None:
            sub = Subscription(self, self._position, flt, replay=False)
        else:
            sub = Subscription(self, after, flt, replay=after < self._position)
        self._subs.add(sub)
        return sub

    async def _ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._task is not None and not self._task.done():
                return
            self._position = self._pushed_end = await self.db.read(positions.head)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="stream")

    async def build(self, changes: Changes, *, base: int) -> list[StreamEvent]:
        """Events for ``changes`` read after ``base``, with the action versions they need."""
        bundles: dict[str, ActionBundle | None] = {}
        for snap in {ch.execution.action_snapshot for ch in changes.executions}:
            try:
                bundles[snap] = await self.executions.bundle(snap)
            except Exception:  # an action version gone or whose runner is gone: show it bare
                bundles[snap] = None
        return build_events(changes, base=base, bundles=bundles)

    async def _run(self) -> None:
        idle_rounds = 0
        while True:
            if not self._subs:
                idle_rounds += 1
                if idle_rounds * self.poll_interval >= 5.0:
                    return  # nobody listens: stop polling until the next subscriber
            else:
                idle_rounds = 0
            start = self._position
            try:
                changes = await self.db.read(
                    partial(positions.read_changes, after=start, limit=self.batch_size)
                )
                events = await self.build(changes, base=start)
            except Exception as exc:
                log.warning("stream: cannot read changes (%s); retrying", exc)
                await asyncio.sleep(max(self.poll_interval, 1.0))
                continue
            self._position = changes.end
            if events:
                batch = _Batch(self._pushed_end, changes.end, events)
                self._pushed_end = changes.end
                for sub in list(self._subs):
                    sub._push(batch)
            if changes.complete:
                await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        """Stop tailing and end every open subscription (their responses finish)."""
        for sub in list(self._subs):
            sub._shutdown()
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
