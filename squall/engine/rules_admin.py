"""Rules through the API and CLI: create, update, enable, delete — plus test and backtest,
which evaluate a rule against a payload or stored trigger instances with no side effects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from squall.auth.secrets import Cipher
from squall.auth.service import SYSTEM_USER
from squall.engine.datastore import DatastoreService
from squall.engine.packs import trigger_row
from squall.errors import ConflictError, DomainError, NotFoundError, RuleError
from squall.expr.kv import render_with_kv
from squall.model.ids import new_id
from squall.rules import CompiledRule
from squall.rules.criteria import EvalContext
from squall.rules.rendering import action_render_context, render_action_parameters
from squall.rules.rule import trigger_key, trigger_ref
from squall.rules.storm import MemoryStormGate
from squall.rules.validate import check_rule
from squall.store import content, events
from squall.store.db import Database
from squall.store.schema import rules as rules_table
from squall.store.util import utcnow

__all__ = ["RuleService"]

log = logging.getLogger(__name__)

_ALLOWED = {
    "name",
    "pack",
    "description",
    "enabled",
    "trigger",
    "criteria",
    "action",
    "type",
    "context",
    "tags",
    "throttle",
    "dedup",
    "id",
    "ref",
    "uid",
    "metadata_file",
}


class RuleService:
    def __init__(
        self,
        db: Database,
        datastore: DatastoreService,
        cipher: Cipher,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.datastore = datastore
        self.cipher = cipher
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # --- validation -------------------------------------------------------------------------

    async def check(self, doc: Mapping[str, Any]) -> CompiledRule:
        """Validate a rule document against the actions and trigger types that exist."""
        unknown = sorted(set(doc) - _ALLOWED)
        if unknown:
            raise RuleError(
                f"unknown rule field {unknown[0]!r}",
                hint=f"rule fields: {', '.join(sorted(_ALLOWED - {'id', 'uid', 'ref'}))}",
            )

        def _read(conn: Connection) -> tuple[list[str], list[dict[str, Any]]]:
            actions, _ = content.list_actions(conn, limit=1_000_000)
            return [a.ref for a in actions], content.list_content(conn, "triggers")

        actions, trigger_docs = await self.db.read(_read)
        compiled, issues = check_rule(
            doc,
            actions=set(actions),
            trigger_types={d["ref"]: d for d in trigger_docs},
            pack=doc.get("pack") or "default",
        )
        if issues or compiled is None:
            raise RuleError(
                f"invalid rule: {issues[0].message}" if len(issues) == 1 else "invalid rule",
                issues=issues,
            )
        return compiled

    @staticmethod
    def _normalize(doc: Mapping[str, Any], *, enabled_default: bool) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if k not in ("id", "uid", "ref", "metadata_file")}
        out.setdefault("pack", "default")
        out.setdefault("description", "")
        out.setdefault("enabled", enabled_default)
        out.setdefault("criteria", {})
        out.setdefault("type", {"ref": "standard", "parameters": {}})
        out.setdefault("context", {})
        out.setdefault("tags", [])
        # Shape errors a request can carry, reported with their field (check() does the rest).
        if not isinstance(out.get("name"), str) or not out["name"]:
            raise RuleError("name: required, a non-empty string")
        if not isinstance(out["pack"], str) or not out["pack"]:
            raise RuleError("pack: must be a non-empty string")
        if not isinstance(out.get("trigger") or {}, Mapping):
            raise RuleError("trigger: must be an object like {type: core.st2.webhook}")
        trig = out["trigger"] = dict(out.get("trigger") or {})
        trig.setdefault("parameters", {})
        if not isinstance(trig["parameters"], Mapping):
            raise RuleError("trigger.parameters: must be an object")
        if not isinstance(trig.get("type", ""), str):
            raise RuleError("trigger.type: must be a trigger type ref (a string)")
        trig["ref"] = trigger_ref(trig.get("type", ""), trig["parameters"])
        out["ref"] = f"{out['pack']}.{out['name']}"
        out["uid"] = f"rule:{out['pack']}:{out['name']}"
        return out

    # --- CRUD -------------------------------------------------------------------------------

    async def get(self, ref_or_id: str) -> dict[str, Any]:
        def _read(conn: Connection) -> dict[str, Any] | None:
            for doc in content.list_content(conn, "rules"):
                if ref_or_id in (doc.get("ref"), doc.get("id")):
                    return doc
            return None

        doc = await self.db.read(_read)
        if doc is None:
            raise NotFoundError(f"rule {ref_or_id!r} not found")
        return doc

    async def create(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        # StackStorm: a rule created through the API is disabled unless it says otherwise.
        rule = self._normalize(doc, enabled_default=False)
        await self.check(rule)
        now = utcnow()
        rule["id"] = new_id()

        def _insert(conn: Connection) -> None:
            exists = conn.execute(
                rules_table.select().where(rules_table.c.ref == rule["ref"])
            ).first()
            if exists is not None:
                raise ConflictError(
                    f"rule {rule['ref']} already exists", hint="update it with PUT instead"
                )
            events.upsert_triggers(conn, [trigger_row(rule["trigger"], now=now)])
            conn.execute(rules_table.insert().values(**self._row(rule, now, created=now)))
            events.bump_version(conn, "rules")

        await self.db.write(_insert)
        self._changed()
        return rule

    @staticmethod
    def _row(rule: Mapping[str, Any], now: datetime, *, created: datetime) -> dict[str, Any]:
        return {
            "id": rule["id"],
            "ref": rule["ref"],
            "pack": rule["pack"],
            "name": rule["name"],
            "trigger_type": rule["trigger"].get("type", ""),
            "enabled": bool(rule.get("enabled")),
            "doc": dict(rule),
            "team": None,
            "created_at": created,
            "updated_at": now,
        }

    async def update(self, ref_or_id: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        current = await self.get(ref_or_id)
        merged = {**current, **doc}
        rule = self._normalize(merged, enabled_default=bool(current.get("enabled")))
        if rule["ref"] != current["ref"]:
            raise RuleError(
                "a rule's name and pack cannot change", hint="delete it and create a new one"
            )
        await self.check(rule)
        rule["id"] = current["id"]
        now = utcnow()

        def _update(conn: Connection) -> None:
            events.upsert_triggers(conn, [trigger_row(rule["trigger"], now=now)])
            values = self._row(rule, now, created=now)
            values.pop("created_at")
            conn.execute(
                rules_table.update().where(rules_table.c.id == rule["id"]).values(**values)
            )
            events.bump_version(conn, "rules")

        await self.db.write(_update)
        self._changed()
        return rule

    async def set_enabled(self, ref_or_id: str, enabled: bool) -> dict[str, Any]:
        return await self.update(ref_or_id, {"enabled": enabled})

    async def delete(self, ref_or_id: str) -> None:
        current = await self.get(ref_or_id)

        def _delete(conn: Connection) -> None:
            conn.execute(rules_table.delete().where(rules_table.c.id == current["id"]))
            events.bump_version(conn, "rules")

        await self.db.write(_delete)
        self._changed()

    # --- test and backtest ------------------------------------------------------------------

    async def _evaluate(
        self, rule: CompiledRule, payload: Any, instance_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """Match one payload; on a match render the action parameters. No writes."""
        outcome: dict[str, Any] = {"matched": False}

        def _match(kv: Any) -> tuple[bool, list[dict[str, Any]]]:
            criteria = []
            ok = True
            ctx = EvalContext(payload, kv=kv, now=now)
            for criterion in rule.criteria:
                try:
                    passed = bool(criterion.evaluate(payload, ctx))
                    criteria.append(
                        {"key": criterion.key, "type": criterion.type, "passed": passed}
                    )
                except DomainError as exc:
                    criteria.append({"key": criterion.key, "passed": False, "error": str(exc)})
                    passed = False
                ok = ok and passed
            return ok, criteria

        matched, criteria = await render_with_kv(
            _match, self.datastore.fetch, user=SYSTEM_USER, decrypt=self.cipher.decrypt
        )
        outcome["criteria"] = criteria
        outcome["matched"] = matched
        if not matched:
            return outcome
        try:
            params = await render_with_kv(
                lambda kv: render_action_parameters(
                    rule,
                    action_render_context(
                        rule, payload, trigger_instance_id=instance_id, user=SYSTEM_USER, kv=kv
                    ),
                ),
                self.datastore.fetch,
                user=SYSTEM_USER,
                decrypt=self.cipher.decrypt,
            )
            outcome["action"] = {"ref": rule.action_ref, "parameters": params}
        except DomainError as exc:
            outcome["error"] = str(exc)
        return outcome

    async def test(
        self,
        doc: Mapping[str, Any],
        *,
        payload: Any = None,
        trigger_instance_id: str | None = None,
    ) -> dict[str, Any]:
        """Would ``doc`` match this payload (or stored trigger instance)? What would it run?"""
        rule = await self.check(self._normalize(doc, enabled_default=True))
        if trigger_instance_id is not None:
            ti = await self.db.read(lambda conn: events.get_instance(conn, trigger_instance_id))
            if ti is None:
                raise NotFoundError(f"trigger instance {trigger_instance_id!r} not found")
            if ti.trigger_type != rule.trigger.type:
                return {
                    "matched": False,
                    "reason": f"the instance is of trigger type {ti.trigger_type}, "
                    f"the rule listens to {rule.trigger.type}",
                }
            payload = ti.payload
        result = await self._evaluate(rule, payload, trigger_instance_id, utcnow())
        result["rule"] = rule.ref
        return result

    async def backtest(
        self,
        doc: Mapping[str, Any],
        *,
        since: datetime,
        until: datetime | None = None,
        limit: int = 100,
        scan_limit: int = 100_000,
    ) -> dict[str, Any]:
        """Replay stored trigger instances through ``doc``: how many would have matched,
        which ones, with which parameters — and what throttle/dedup would have suppressed.
        """
        rule = await self.check(self._normalize(doc, enabled_default=True))
        key = rule.trigger.key if rule.trigger.parameters else None
        gate = MemoryStormGate()
        scanned = matched = suppressed = errors = 0
        matches: list[dict[str, Any]] = []
        offset = 0
        page = 1000
        while scanned < scan_limit:

            def _page(conn: Connection, off: int = offset) -> list[events.TriggerInstance]:
                return events.list_instances(
                    conn,
                    trigger_type=rule.trigger.type,
                    since=since,
                    until=until,
                    ascending=True,
                    limit=page,
                    offset=off,
                )

            batch = await self.db.read(_page)
            if not batch:
                break
            offset += len(batch)
            for ti in batch:
                if key is not None and ti.trigger_key not in (key, None):
                    continue
                scanned += 1
                result = await self._evaluate(rule, ti.payload, ti.id, ti.occurrence_time)
                if result.get("error"):
                    errors += 1
                if not result["matched"]:
                    continue
                matched += 1
                storm = "admitted"
                buckets = rule.storm_buckets(ti.payload, now=ti.occurrence_time)
                if buckets and not gate.admit(buckets, now=ti.occurrence_time):
                    suppressed += 1
                    storm = "suppressed"
                if len(matches) < limit:
                    matches.append(
                        {
                            "trigger_instance_id": ti.id,
                            "occurrence_time": ti.occurrence_time.isoformat(),
                            "storm": storm,
                            **{k: v for k, v in result.items() if k in ("action", "error")},
                        }
                    )
        return {
            "rule": rule.ref,
            "trigger_type": rule.trigger.type,
            "trigger": trigger_key(rule.trigger.type, rule.trigger.parameters),
            "since": since.isoformat(),
            "until": (until or utcnow()).isoformat(),
            "scanned": scanned,
            "matched": matched,
            "would_run": matched - suppressed - errors,
            "suppressed": suppressed,
            "errors": errors,
            "matches": matches,
            "truncated": scanned >= scan_limit,
        }
