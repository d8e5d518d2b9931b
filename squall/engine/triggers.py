"""Trigger instances in: dispatch from webhooks, timers and the API, and internal triggers
emitted in the same transaction as the change that causes them.

Internal triggers (``core.st2.generic.actiontrigger``, ``core.st2.key_value_pair.*``) are
recorded when an enabled rule listens for them, so a busy system does not pay for events
nobody uses; notify triggers are recorded whenever an execution or action asks for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
from sqlalchemy import Connection

from squall.engine.executions import ExecutionService
from squall.engine.wakeup import Wakeups
from squall.errors import NotFoundError, ValidationError
from squall.expr.jinja import render_value
from squall.model.formatting import iso, mask_parameters
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.rules.rule import trigger_key, trigger_ref
from squall.store import content, events
from squall.store import executions as exrepo
from squall.store.db import Database
from squall.store.kv import KeyValue
from squall.store.util import utcnow

__all__ = [
    "ACTION_TRIGGER",
    "NOTIFY_TRIGGER",
    "TriggerService",
    "TriggerTypeInfo",
]

log = logging.getLogger(__name__)

ACTION_TRIGGER = "core.st2.generic.actiontrigger"
NOTIFY_TRIGGER = "core.st2.generic.notifytrigger"
KV_TRIGGERS = {
    op: f"core.st2.key_value_pair.{op}" for op in ("create", "update", "delete", "value_change")
}
_S = ExecutionStatus


@dataclass(frozen=True)
class TriggerTypeInfo:
    ref: str
    payload_schema: Mapping[str, Any] | None
    parameters_schema: Mapping[str, Any] | None


def _kv_doc(item: KeyValue) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": item.name,
        # Secrets travel encrypted (as stored), never in plain text.
        "value": item.value,
        "secret": item.secret,
        "encrypted": item.secret,
        "scope": "st2kv.user" if item.scope == "user" else "st2kv.system",
    }
    if item.owner:
        doc["user"] = item.owner
    if item.expire_at is not None:
        doc["expire_timestamp"] = iso(item.expire_at)
    return doc


class TriggerService:
    """Records trigger instances and wakes the rules engine."""

    def __init__(self, db: Database, wakeups: Wakeups, executions: ExecutionService) -> None:
        self.db = db
        self.wakeups = wakeups
        self.executions = executions
        #: Trigger types enabled rules listen to (see :meth:`is_subscribed`).
        self.subscribed: frozenset[str] = frozenset()
        self._subscribed_version = -1
        self._subscribed_checked = 0.0
        self._types: dict[str, TriggerTypeInfo] = {}
        self._types_version = -1
        self._types_checked = 0.0
        self._types_lock = asyncio.Lock()

    # --- trigger types ----------------------------------------------------------------------

    async def trigger_type(self, ref: str) -> TriggerTypeInfo | None:
        if time.monotonic() - self._types_checked < 1.0 and ref in self._types:
            return self._types[ref]
        async with self._types_lock:
            if time.monotonic() - self._types_checked >= 1.0 or ref not in self._types:
                # A ref that is not a type (a parameterized trigger's ref) costs this one
                # version read, not a reload of every type.
                version = await self.db.read(lambda conn: events.read_version(conn, "packs"))
                if version != self._types_version:
                    docs = await self.db.read(lambda conn: content.list_content(conn, "triggers"))
                    self._types = {
                        d["ref"]: TriggerTypeInfo(
                            d["ref"],
                            d.get("payload_schema") or None,
                            d.get("parameters_schema") or None,
                        )
                        for d in docs
                    }
                    self._types_version = version
                self._types_checked = time.monotonic()
        return self._types.get(ref)

    async def validate_payload(self, trigger_type: str, payload: Any) -> TriggerTypeInfo:
        info = await self.trigger_type(trigger_type)
        if info is None:
            raise NotFoundError(
                f"trigger type {trigger_type!r} does not exist",
                hint="`squall trigger list` shows trigger types",
            )
        if info.payload_schema:
            validator = jsonschema.Draft4Validator(info.payload_schema)
            problems = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
            if problems:
                first = problems[0]
                where = ".".join(str(p) for p in first.path) or "payload"
                raise ValidationError(
                    f"payload does not match the schema of {trigger_type}: {where}: {first.message}"
                )
        return info

    async def resolve(self, ref: str) -> tuple[str, dict[str, Any] | None]:
        """A trigger type ref, or the ref of a parameterized trigger, to (type, parameters).

        An unknown ref comes back as a type without parameters: :meth:`dispatch` reports it.
        """
        if await self.trigger_type(ref) is not None:
            return ref, None
        doc = await self.db.read(lambda conn: events.get_trigger(conn, ref))
        if doc is not None:
            return str(doc["type"]), doc.get("parameters") or None
        return ref, None

    # --- dispatch ---------------------------------------------------------------------------

    def instance_row(
        self,
        trigger_type: str,
        payload: Any,
        *,
        now: datetime,
        parameters: Mapping[str, Any] | None = None,
        trace_tag: str | None = None,
    ) -> dict[str, Any]:
        # Without parameters the instance is for every rule of the type.
        key = trigger_key(trigger_type, parameters) if parameters else None
        return events.new_instance(
            id=new_id(),
            trigger=trigger_ref(trigger_type, parameters),
            trigger_type=trigger_type,
            trigger_key=key,
            payload=payload,
            now=now,
            trace_tag=trace_tag,
        )

    async def dispatch(
        self,
        trigger_type: str,
        payload: Any,
        *,
        parameters: Mapping[str, Any] | None = None,
        trace_tag: str | None = None,
        validate: bool = True,
    ) -> events.TriggerInstance:
        """Record a trigger instance (committed when this returns) and wake the rules engine."""
        if validate:
            await self.validate_payload(trigger_type, payload)
        row = self.instance_row(
            trigger_type, payload, now=utcnow(), parameters=parameters, trace_tag=trace_tag
        )
        await self.db.write(lambda conn: events.insert_instances(conn, [row]))
        self.wakeups.signal("rules")
        return events.TriggerInstance.from_row(_Row(row))

    def emit(
        self,
        conn: Connection,
        trigger_type: str,
        payload: Any,
        *,
        now: datetime,
        trace_tag: str | None = None,
    ) -> str:
        """Record an internal trigger instance inside the caller's transaction."""
        row = self.instance_row(trigger_type, payload, now=now, trace_tag=trace_tag)
        events.insert_instances(conn, [row])
        self.wakeups.signal("rules")  # a hint: consumers re-check after the commit anyway
        return str(row["id"])

    # --- internal triggers ------------------------------------------------------------------

    def invalidate_subscriptions(self) -> None:
        """Rules changed in this process: re-read subscriptions at the next event."""
        self._subscribed_checked = 0.0

    def is_subscribed(self, conn: Connection, trigger_type: str) -> bool:
        """Does an enabled rule listen to ``trigger_type``? (Checked inside the caller's
        transaction; the answer may be up to a quarter second stale for rules changed by
        another process.)"""
        now = time.monotonic()
        if now - self._subscribed_checked > 0.25:
            self._subscribed_checked = now
            version = events.read_version(conn, "rules")
            if version != self._subscribed_version:
                self.subscribed = frozenset(content.enabled_rule_trigger_types(conn))
                self._subscribed_version = version
        return trigger_type in self.subscribed

    def on_execution_terminal(self, conn: Connection, ex: exrepo.Execution) -> None:
        """Terminal hook: the generic action trigger and notify triggers."""
        now = ex.ended_at or utcnow()
        bundle = self.executions._bundles.get(ex.action_snapshot)
        secret_names = bundle.secret_names if bundle else frozenset()
        params = mask_parameters(ex.parameters, secret_names, action_ref=ex.action_ref)
        if self.is_subscribed(conn, ACTION_TRIGGER):
            payload = {
                "execution_id": ex.id,
                "status": ex.status,
                "start_timestamp": iso(ex.created_at),
                "action_name": ex.action_ref.split(".", 1)[-1],
                "action_ref": ex.action_ref,
                "runner_ref": ex.runner_type,
                "parameters": params,
                "result": ex.result,
            }
            self.emit(conn, ACTION_TRIGGER, payload, now=now, trace_tag=ex.trace_tag)
        notify = ex.notify or (bundle.doc.get("notify") if bundle else None)
        if notify:
            self._notify(conn, ex, notify, params, now)

    def _notify(
        self,
        conn: Connection,
        ex: exrepo.Execution,
        notify: Mapping[str, Any],
        params: Mapping[str, Any],
        now: datetime,
    ) -> None:
        sections = ["on-complete"]
        if ex.status == _S.SUCCEEDED:
            sections.append("on-success")
        elif ex.status in (_S.FAILED, _S.TIMEOUT, _S.ABANDONED):
            sections.append("on-failure")
        result = ex.result
        render_ctx = {
            "execution": {
                "id": ex.id,
                "status": ex.status,
                "action": ex.action_ref,
                "parameters": dict(params),
                "result": result,
            },
            "action_results": result,
            "action_parameters": dict(params),
        }
        for section in sections:
            spec = notify.get(section)
            if not isinstance(spec, Mapping):
                continue
            routes = spec.get("routes") or spec.get("channels") or ["default"]
            message = self._render(spec.get("message"), render_ctx, ex.id, section)
            data = self._render(spec.get("data") or {}, render_ctx, ex.id, section)
            for route in routes:
                self.emit(
                    conn,
                    NOTIFY_TRIGGER,
                    {
                        "execution_id": ex.id,
                        "status": ex.status,
                        "start_timestamp": iso(ex.created_at),
                        "end_timestamp": iso(ex.ended_at),
                        "action_ref": ex.action_ref,
                        "runner_ref": ex.runner_type,
                        "route": str(route),
                        "channel": str(route),
                        "message": message
                        or f"Action {ex.action_ref} {ex.status}. (execution {ex.id})",
                        "data": data,
                    },
                    now=now,
                    trace_tag=ex.trace_tag,
                )

    @staticmethod
    def _render(value: Any, ctx: Mapping[str, Any], execution_id: str, section: str) -> Any:
        if value is None:
            return None
        try:
            return render_value(value, ctx)
        except Exception as exc:  # a bad template must not lose the notification
            log.warning("notify %s of %s: cannot render %r: %s", section, execution_id, value, exc)
            return f"[notify template error: {exc}]"

    def on_kv_change(
        self, conn: Connection, op: str, new: KeyValue | None, old: KeyValue | None
    ) -> None:
        """Datastore hook: key-value create / update / delete / value_change triggers."""
        now = utcnow()
        fired: list[tuple[str, dict[str, Any]]] = []
        if op == "delete" and old is not None:
            fired.append(("delete", {"object": _kv_doc(old)}))
        elif op == "set" and new is not None:
            if old is None:
                fired.append(("create", {"object": _kv_doc(new)}))
            else:
                fired.append(("update", {"object": _kv_doc(new)}))
                if old.value != new.value:
                    fired.append(
                        (
                            "value_change",
                            {"old_object": _kv_doc(old), "new_object": _kv_doc(new)},
                        )
                    )
        for kind, payload in fired:
            ref = KV_TRIGGERS[kind]
            if self.is_subscribed(conn, ref):
                self.emit(conn, ref, payload, now=now)


class _Row:
    def __init__(self, row: Mapping[str, Any]) -> None:
        self._mapping = row
