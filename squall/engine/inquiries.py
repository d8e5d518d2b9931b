"""Inquiries (``core.ask``): ask a human, pause the workflow branch, validate the answer.

An inquirer execution never reaches a runner host: the workflow engine takes it, records the
inquiry, sets the execution ``pending`` (its result shows the question), fires
``core.st2.generic.inquiry`` so rules can notify a chat room, and tells the parent workflow,
whose branch pauses. The answer (``PUT /api/v1/inquiries/{id}``) is validated against the
schema and checked against the allowed users and roles; it finishes the execution
``succeeded`` with ``result.response`` in the same transaction, and the parent resumes.
Unanswered inquiries time out after ``ttl`` minutes (garbage collection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from sqlalchemy import Connection

from squall.auth.service import Principal
from squall.engine.executions import ExecutionService
from squall.engine.triggers import TriggerService
from squall.engine.wakeup import Wakeups
from squall.engine.workflows_runs import child_event
from squall.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from squall.model.status import ExecutionStatus
from squall.store import executions as exrepo
from squall.store import inquiries as inqrepo
from squall.store import workflow_inbox as inbox
from squall.store.db import Database
from squall.store.executions import Execution, encode_result
from squall.store.util import utcnow

__all__ = ["INQUIRY_TRIGGER", "InquiryService", "normalize_schema"]

log = logging.getLogger(__name__)

INQUIRY_TRIGGER = "core.st2.generic.inquiry"
_S = ExecutionStatus


def normalize_schema(schema: Any) -> Any:
    """Turn draft-3 style ``required: true`` on properties (which StackStorm's inquiry
    schemas use, ``core.ask``'s default included) into draft-4 ``required`` lists."""
    if isinstance(schema, list):
        return [normalize_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required" and isinstance(value, bool):
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: normalize_schema(sub) for name, sub in value.items()}
        elif isinstance(value, Mapping | list):
            out[key] = normalize_schema(value)
        else:
            out[key] = value
    props = schema.get("properties")
    if isinstance(props, Mapping):
        flagged = [
            n for n, s in props.items() if isinstance(s, Mapping) and s.get("required") is True
        ]
        if flagged:
            current = out.get("required")
            listed: list[Any] = current if isinstance(current, list) else []
            out["required"] = [*listed, *(n for n in flagged if n not in listed)]
    return out


def _question(inquiry: inqrepo.Inquiry | Mapping[str, Any]) -> dict[str, Any]:
    get = inquiry.get if isinstance(inquiry, Mapping) else lambda k: getattr(inquiry, k)
    return {k: get(k) for k in ("schema", "roles", "users", "route", "ttl")}


class InquiryService:
    """Opens, answers, lists and expires inquiries."""

    EXPIRY_INTERVAL = 5.0

    def __init__(
        self,
        db: Database,
        wakeups: Wakeups,
        executions: ExecutionService,
        triggers: TriggerService,
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.executions = executions
        self.triggers = triggers

    # --- opening (inside the workflow engine's transaction) -----------------------------------

    def open(
        self, conn: Connection, ex: Execution, runner: Mapping[str, Any], now: datetime
    ) -> bool:
        """Record the inquiry of a claimed inquirer execution and set it ``pending``."""
        ttl = int(runner.get("ttl") or 0)
        row = {
            "id": ex.id,
            "status": "pending",
            "schema": dict(runner.get("schema") or {}),
            "route": str(runner.get("route") or ""),
            "roles": list(runner.get("roles") or []),
            "users": list(runner.get("users") or []),
            "ttl": ttl,
            "user": ex.user,
            "parent_id": ex.parent_id,
            "created_at": now,
            "expires_at": now + timedelta(minutes=ttl) if ttl > 0 else None,
        }
        blob, size = encode_result(_question(row))
        updated = exrepo.set_status(
            conn,
            ex.id,
            status=_S.PENDING,
            now=now,
            expected=[_S.RUNNING],
            values={
                "lease_owner": None,
                "lease_expires_at": None,
                "result": blob,
                "result_size": size,
            },
        )
        if updated is None:
            return False
        inqrepo.insert(conn, row)
        self.triggers.emit(
            conn,
            INQUIRY_TRIGGER,
            {"id": ex.id, "route": row["route"]},
            now=now,
            trace_tag=ex.trace_tag,
        )
        if ex.parent_id is not None:
            data = child_event(ex.id, _S.PENDING, ex.context)
            if data is not None:
                inbox.add_event(conn, ex.parent_id, "child", data, now=now)
        return True

    # --- reading ------------------------------------------------------------------------------

    async def get(self, inquiry_id: str) -> inqrepo.Inquiry:
        inquiry = await self.db.read(lambda conn: inqrepo.get(conn, inquiry_id))
        if inquiry is None:
            raise NotFoundError(
                f"inquiry {inquiry_id!r} not found", hint="`squall inquiry list` shows them"
            )
        return inquiry

    async def list(
        self, *, status: str | None = "pending", limit: int = 50, offset: int = 0
    ) -> tuple[list[inqrepo.Inquiry], int]:
        def _read(conn: Connection) -> tuple[list[inqrepo.Inquiry], int]:
            return (
                inqrepo.list_inquiries(conn, status=status, limit=limit, offset=offset),
                inqrepo.count(conn, status=status),
            )

        return await self.db.read(_read)

    # --- answering ----------------------------------------------------------------------------

    @staticmethod
    def check_permission(principal: Principal, inquiry: inqrepo.Inquiry) -> None:
        """Only the listed users and roles may answer (anyone when none are listed)."""
        if not inquiry.users and not inquiry.roles:
            return
        if principal.user in inquiry.users or set(principal.roles) & set(inquiry.roles):
            return
        raise PermissionDenied(
            f"user {principal.user!r} may not respond to inquiry {inquiry.id}",
            hint="the inquiry names the users and roles that may respond",
        )

    @staticmethod
    def validate(inquiry: inqrepo.Inquiry, response: Any) -> dict[str, Any]:
        """Check ``response`` against the inquiry's schema (defaults filled in)."""
        if not isinstance(response, Mapping):
            raise ValidationError("the response must be a JSON object")
        schema = normalize_schema(inquiry.schema)
        filled = dict(response)
        for name, prop in (schema.get("properties") or {}).items():
            if name not in filled and isinstance(prop, Mapping) and "default" in prop:
                filled[name] = prop["default"]
        validator = jsonschema.Draft4Validator(schema)
        problems = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
        if problems:
            first = problems[0]
            where = ".".join(str(p) for p in first.absolute_path)
            prefix = f"response.{where}" if where else "response"
            raise ValidationError(
                f"invalid response: {prefix}: {first.message}",
                hint="the answer must match the inquiry's schema (`squall inquiry get ID`)",
            )
        return filled

    async def respond(self, principal: Principal, inquiry_id: str, response: Any) -> dict[str, Any]:
        """Answer a pending inquiry; its execution succeeds and its workflow resumes."""
        inquiry = await self.get(inquiry_id)
        if inquiry.status != "pending":
            raise ConflictError(f"inquiry {inquiry_id} is {inquiry.status}, not pending")
        self.check_permission(principal, inquiry)
        answer = self.validate(inquiry, response)
        now = utcnow()

        def _answer(conn: Connection) -> bool:
            if not inqrepo.close(
                conn,
                inquiry_id,
                status=_S.SUCCEEDED,
                now=now,
                response=answer,
                responder=principal.user,
            ):
                return False
            result = {**_question(inquiry), "response": answer}
            done = exrepo.finish(conn, inquiry_id, status=_S.SUCCEEDED, result=result, now=now)
            if done is not None:
                self.executions.on_terminal(conn, done)
            return True

        if not await self.db.write(_answer):
            raise ConflictError(f"inquiry {inquiry_id} was answered or closed meanwhile")
        self.wakeups.signal("workflow")
        return {"id": inquiry_id, "response": answer}

    # --- expiry (gc role) ---------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Time out inquiries whose ``ttl`` has passed; returns how many."""
        now = utcnow()

        def _expire(conn: Connection) -> int:
            count = 0
            for inquiry_id in inqrepo.due(conn, now=now):
                inquiry = inqrepo.get(conn, inquiry_id)
                if inquiry is None or not inqrepo.close(
                    conn, inquiry_id, status=_S.TIMEOUT, now=now
                ):
                    continue
                result = {**_question(inquiry), "response": None}
                done = exrepo.finish(conn, inquiry_id, status=_S.TIMEOUT, result=result, now=now)
                if done is not None:
                    self.executions.on_terminal(conn, done)
                    count += 1
            return count

        count = await self.db.write(_expire)
        if count:
            log.info("%d inquiries timed out", count)
            self.wakeups.signal("workflow")
        return count

    async def run_expiry(self) -> None:
        """Service loop (gc role): expire inquiries every few seconds."""
        while True:
            try:
                await self.expire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inquiry expiry failed; retrying")
            await asyncio.sleep(self.EXPIRY_INTERVAL)
