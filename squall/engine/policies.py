"""Execution policies (StackStorm's): concurrency before running, retry after finishing.

* ``action.concurrency {threshold, action: delay|cancel}`` — at most ``threshold`` executions
  of the action are active (scheduled or running); others wait (``delayed``, re-checked
  shortly) or are canceled.
* ``action.concurrency.attr`` — the same per combination of the parameter values named in
  ``attributes``.
* ``action.retry {retry_on: failure|timeout|abandoned, max_retry_count, delay}`` — a failed
  (or timed out, or abandoned: its runner died) execution is run again as a new execution, up
  to ``max_retry_count`` times. ``abandoned`` is Squall's addition.

Both are applied inside the transactions that change the executions (the scheduler's claim,
the terminal transition), so they survive restarts and never race with themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from squall.engine.wakeup import Wakeups
from squall.errors import Issue, ValidationError
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.store import content, events
from squall.store import executions as exrepo
from squall.store.db import Database
from squall.store.schema import executions as executions_table
from squall.store.util import utcnow

__all__ = ["POLICY_TYPES", "PolicyService", "check_policy"]

log = logging.getLogger(__name__)

_S = ExecutionStatus
_ACTIVE = [_S.SCHEDULED, _S.RUNNING, _S.CANCELING, _S.PAUSING, _S.PAUSED, _S.RESUMING]
#: The status each ``retry_on`` value retries.
_RETRY_ON = {"failure": _S.FAILED, "timeout": _S.TIMEOUT, "abandoned": _S.ABANDONED}
#: How long a delayed execution waits before the scheduler checks its policy again.
RECHECK = timedelta(seconds=0.5)

POLICY_TYPES: dict[str, dict[str, Any]] = {
    "action.concurrency": {
        "description": "Limit how many executions of an action are active at once.",
        "parameters": {
            "threshold": {"type": "integer", "minimum": 0, "default": 10},
            "action": {"type": "string", "enum": ["delay", "cancel"], "default": "delay"},
        },
    },
    "action.concurrency.attr": {
        "description": "Limit active executions of an action per combination of parameters.",
        "parameters": {
            "threshold": {"type": "integer", "minimum": 0, "default": 10},
            "action": {"type": "string", "enum": ["delay", "cancel"], "default": "delay"},
            "attributes": {"type": "array", "items": {"type": "string"}, "required": True},
        },
    },
    "action.retry": {
        "description": "Run a failed or timed out execution again.",
        "parameters": {
            "retry_on": {
                "type": "string",
                "enum": ["failure", "timeout", "abandoned"],
                "required": True,
            },
            "max_retry_count": {"type": "integer", "minimum": 0, "default": 2},
            "delay": {"type": "number", "minimum": 0, "default": 0},
        },
    },
}


def check_policy(doc: Mapping[str, Any]) -> list[Issue]:
    """Validate a policy document's type and parameters (issues with field paths)."""
    issues: list[Issue] = []
    ptype = doc.get("policy_type")
    spec = POLICY_TYPES.get(str(ptype))
    if spec is None:
        issues.append(
            Issue(
                f"unknown policy type {ptype!r}; expected one of {', '.join(POLICY_TYPES)}",
                path="policy_type",
            )
        )
        return issues
    params = doc.get("parameters") or {}
    if not isinstance(params, Mapping):
        return [Issue("parameters must be a mapping", path="parameters")]
    for name in params:
        if name not in spec["parameters"]:
            issues.append(Issue(f"unknown parameter {name!r}", path=f"parameters.{name}"))
    for name, pspec in spec["parameters"].items():
        value = params.get(name, pspec.get("default"))
        if value is None:
            if pspec.get("required"):
                issues.append(Issue("is required", path=f"parameters.{name}"))
            continue
        kind = pspec["type"]
        ok = (
            (kind == "integer" and isinstance(value, int) and not isinstance(value, bool))
            or (kind == "number" and isinstance(value, int | float) and not isinstance(value, bool))
            or (kind == "string" and isinstance(value, str))
            or (kind == "array" and isinstance(value, list))
        )
        if not ok:
            issues.append(Issue(f"must be of type {kind}", path=f"parameters.{name}"))
        elif "enum" in pspec and value not in pspec["enum"]:
            issues.append(
                Issue(f"must be one of {', '.join(pspec['enum'])}", path=f"parameters.{name}")
            )
        elif "minimum" in pspec and value < pspec["minimum"]:
            issues.append(Issue(f"must be >= {pspec['minimum']}", path=f"parameters.{name}"))
    return issues


@dataclass(frozen=True)
class Policy:
    ref: str
    type: str
    resource_ref: str
    params: dict[str, Any]


def _with_defaults(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = POLICY_TYPES[doc["policy_type"]]["parameters"]
    params = {k: v.get("default") for k, v in spec.items()}
    params.update(doc.get("parameters") or {})
    return params


class PolicyService:
    """Keeps the enabled policies in memory and applies them."""

    def __init__(self, db: Database, wakeups: Wakeups) -> None:
        self.db = db
        self.wakeups = wakeups
        self._by_action: dict[str, list[Policy]] = {}
        self._version = -1
        self._checked = 0.0
        self._lock = asyncio.Lock()
        #: Writes a retry's new execution (the execution service's ``insert_rows``, which
        #: counts it in the metrics); a plain insert when unset.
        self.insert: Callable[[Connection, list[dict[str, Any]]], None] = exrepo.insert

    async def refresh(self) -> None:
        if time.monotonic() - self._checked < 1.0:
            return
        async with self._lock:
            if time.monotonic() - self._checked < 1.0:
                return
            version = await self.db.read(lambda conn: events.read_version(conn, "packs"))
            if version != self._version:
                docs = await self.db.read(lambda conn: content.list_content(conn, "policies"))
                by_action: dict[str, list[Policy]] = defaultdict(list)
                for doc in docs:
                    if not doc.get("enabled", True) or check_policy(doc):
                        continue
                    by_action[doc["resource_ref"]].append(
                        Policy(
                            doc["ref"], doc["policy_type"], doc["resource_ref"], _with_defaults(doc)
                        )
                    )
                self._by_action = dict(by_action)
                self._version = version
            self._checked = time.monotonic()

    def has_concurrency(self, action_ref: str) -> bool:
        """Whether a concurrency policy applies to ``action_ref`` (as of the last refresh)."""
        return any(
            p.type.startswith("action.concurrency") for p in self._by_action.get(action_ref, ())
        )

    def invalidate(self) -> None:
        self._checked = 0.0

    # --- concurrency (scheduler) ------------------------------------------------------------

    def on_scheduled(
        self, conn: Connection, claimed: Sequence[exrepo.Execution]
    ) -> list[exrepo.Execution]:
        """Scheduler hook: apply concurrency policies to executions just claimed.

        Returns the executions canceled by a policy (the caller runs terminal hooks).
        """
        canceled: list[exrepo.Execution] = []
        mine = [
            e
            for e in claimed
            if any(
                p.type.startswith("action.concurrency")
                for p in self._by_action.get(e.action_ref, ())
            )
        ]
        if not mine:
            return canceled
        batch_ids = {e.id for e in claimed}
        now = utcnow()
        admitted: dict[tuple[str, str, tuple[Any, ...]], int] = {}
        for ex in mine:
            for policy in self._by_action.get(ex.action_ref, ()):
                if not policy.type.startswith("action.concurrency"):
                    continue
                attrs = tuple(policy.params.get("attributes") or ())
                group = tuple(ex.parameters.get(a) for a in attrs)
                key = (policy.ref, ex.action_ref, group)
                if key not in admitted:
                    admitted[key] = self._active(conn, ex.action_ref, attrs, group, batch_ids)
                if admitted[key] < int(policy.params["threshold"]):
                    admitted[key] += 1
                    continue
                reason = (
                    f"policy {policy.ref}: {policy.params['threshold']} executions of "
                    f"{ex.action_ref} already active"
                    + (f" for {dict(zip(attrs, group, strict=True))}" if attrs else "")
                )
                if policy.params["action"] == "cancel":
                    done = exrepo.finish(
                        conn, ex.id, status=_S.CANCELED, result={"error": reason}, now=now
                    )
                    if done is not None:
                        canceled.append(done)
                else:
                    exrepo.set_status(
                        conn,
                        ex.id,
                        status=_S.DELAYED,
                        now=now,
                        expected=[_S.SCHEDULED],
                        values={"not_before": now + RECHECK},
                    )
                break
        return canceled

    @staticmethod
    def _active(
        conn: Connection,
        action_ref: str,
        attrs: tuple[str, ...],
        group: tuple[Any, ...],
        exclude: set[str],
    ) -> int:
        c = executions_table.c
        where = [c.action_ref == action_ref, c.status.in_(_ACTIVE), c.id.not_in(list(exclude))]
        if not attrs:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(executions_table).where(*where)
                ).scalar_one()
            )
        rows = conn.execute(sa.select(c.parameters).where(*where)).all()
        return sum(1 for r in rows if tuple(r.parameters.get(a) for a in attrs) == group)

    # --- retry (terminal hook) --------------------------------------------------------------

    def on_terminal(self, conn: Connection, ex: exrepo.Execution) -> None:
        """Terminal hook: schedule a retry when an ``action.retry`` policy says so."""
        for policy in self._by_action.get(ex.action_ref, ()):
            if policy.type != "action.retry":
                continue
            wanted = _RETRY_ON.get(policy.params["retry_on"], _S.FAILED)
            if ex.status != wanted or ex.attempt >= int(policy.params["max_retry_count"]):
                continue
            now = utcnow()
            delay = float(policy.params.get("delay") or 0)
            context = dict(ex.context)
            context["policies"] = {
                "retry": {
                    "applied_policy": policy.ref,
                    "retry_count": ex.attempt + 1,
                    "retried_execution": ex.id,
                }
            }
            row = exrepo.new_row(
                id=new_id(),
                action_ref=ex.action_ref,
                action_snapshot=ex.action_snapshot,
                runner_type=ex.runner_type,
                parameters=ex.parameters,
                context=context,
                user=ex.user,
                now=now,
                notify=ex.notify,
                parent_id=ex.parent_id,
                root_id=ex.root_id if ex.parent_id else None,
                trace_tag=ex.trace_tag,
                not_before=now + timedelta(seconds=delay) if delay else None,
                status=_S.DELAYED if delay else _S.REQUESTED,
                attempt=ex.attempt + 1,
            )
            self.insert(conn, [row])
            log.info(
                "policy %s: retrying %s as %s (attempt %d)",
                policy.ref,
                ex.id,
                row["id"],
                ex.attempt + 1,
            )
            self.wakeups.signal("scheduler")
            return


def validate_policies(docs: Sequence[Mapping[str, Any]]) -> None:
    """Raise a ValidationError listing every invalid policy (used by the API)."""
    issues = [i for doc in docs for i in check_policy(doc)]
    if issues:
        raise ValidationError("invalid policy", issues=issues)
