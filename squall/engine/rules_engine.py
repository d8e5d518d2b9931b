"""The rules engine: trigger instances in, rule enforcements and executions out.

Each batch:

1. claims pending trigger instances under a lease (another rules process skips them; if this
   one dies, the lease expires and they are processed again);
2. matches them against the compiled rule set (indexed by trigger type) and prepares, outside
   any transaction, every enforcement: rendered and validated action parameters, or the
   reason it failed;
3. writes, in ONE transaction, the enforcements, the executions they request, the alert-storm
   counters and the instances' ``processed`` status. The (trigger instance, rule) unique
   constraint makes a replayed batch harmless: an enforcement that exists is skipped with its
   execution, so each pair is enforced exactly once.

Several rules processes share the queue (``FOR UPDATE SKIP LOCKED``). One that stops finishes
its batch and returns any claim it still holds; one whose batch failed (the database went
away) returns its claims as soon as it can write again; one that dies leaves claims that any
rules process returns to ``pending`` once their lease expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from squall.auth.secrets import Cipher
from squall.auth.service import SYSTEM_USER
from squall.engine.datastore import DatastoreService
from squall.engine.executions import ExecutionService
from squall.engine.triggers import TriggerService
from squall.engine.wakeup import Wakeups
from squall.errors import DomainError, RuleError, StoreError
from squall.expr.kv import render_with_kv
from squall.model.ids import new_id
from squall.rules import CompiledRule, RuleSet, compile_rule
from squall.rules.rendering import action_render_context, render_action_parameters
from squall.rules.storm import StormBucket
from squall.store import content, events
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["PlannedEnforcement", "RulesEngine", "load_ruleset"]

log = logging.getLogger(__name__)


@dataclass
class PlannedEnforcement:
    rule: CompiledRule
    execution: dict[str, Any] | None = None
    failure: str | None = None
    buckets: list[StormBucket] = field(default_factory=list)


@dataclass
class _Plan:
    instance: events.TriggerInstance
    enforcements: list[PlannedEnforcement] = field(default_factory=list)
    error: str | None = None


async def load_ruleset(db: Database) -> RuleSet:
    """Compile every enabled rule (a rule that no longer compiles is logged and skipped)."""
    docs = await db.read(lambda conn: content.list_content(conn, "rules"))
    compiled = []
    for doc in docs:
        if not doc.get("enabled"):
            continue
        try:
            compiled.append(compile_rule(doc, id=doc.get("id")))
        except RuleError as exc:
            log.error("rule %s is invalid and is skipped: %s", doc.get("ref"), exc)
    return RuleSet.build(compiled)


class RulesEngine:
    """Service loop of the ``rules`` role."""

    BATCH = 256
    POLL_SECONDS = 0.5
    #: How often expired claims (of a rules process that died) are returned to the queue.
    RELEASE_SECONDS = 2.0

    def __init__(
        self,
        *,
        db: Database,
        wakeups: Wakeups,
        executions: ExecutionService,
        triggers: TriggerService,
        datastore: DatastoreService,
        cipher: Cipher,
        owner: str,
        lease_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.executions = executions
        self.triggers = triggers
        self.datastore = datastore
        self.cipher = cipher
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.ruleset = RuleSet()
        self.metrics: Any = None
        self._version = -1
        self._checked = -1e9
        self._stopping = False
        self._stopped = asyncio.Event()
        #: Trigger instances of the batch being processed (``squall status``).
        self.in_flight = 0

    def invalidate(self) -> None:
        """Rules changed in this process: reload before the next batch."""
        self._checked = -1e9

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the rule set when rules changed (checked at most every half second, or at
        once after :meth:`invalidate`)."""
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self._checked < 0.5:
            return
        self._checked = loop.time()
        version = await self.db.read(lambda conn: events.read_version(conn, "rules"))
        if version == self._version:
            return
        self.ruleset = await load_ruleset(self.db)
        self._version = version
        log.debug("rules engine loaded %d enabled rules", len(self.ruleset))

    # --- one batch --------------------------------------------------------------------------

    async def tick(self) -> int:
        """Process one batch; returns how many trigger instances were handled."""
        await self.refresh()
        now = utcnow()
        claimed = await self.db.write(
            lambda conn: events.claim_instances(
                conn, owner=self.owner, now=now, until=now + self.lease, limit=self.BATCH
            )
        )
        if not claimed:
            return 0
        self.in_flight = len(claimed)
        try:
            plans = [await self._plan(ti) for ti in claimed]
            created = await self.db.write(lambda conn: self._apply(conn, plans))
        finally:
            self.in_flight = 0
        self.executions.signal_new(created)
        return len(claimed)

    async def _match(self, ti: events.TriggerInstance, now: datetime) -> Any:
        return await render_with_kv(
            lambda kv: self.ruleset.match(
                ti.trigger_type, ti.payload, trigger=ti.trigger_key, kv=kv, now=now
            ),
            self.datastore.fetch,
            user=SYSTEM_USER,
            decrypt=self.cipher.decrypt,
        )

    async def _plan(self, ti: events.TriggerInstance) -> _Plan:
        plan = _Plan(ti)
        now = utcnow()
        try:
            result = await self._match(ti, now)
        except Exception as exc:  # never let one instance stop the engine
            log.exception("matching trigger instance %s failed", ti.id)
            plan.error = f"matching failed: {exc}"
            return plan
        for failed in result.errors:
            plan.enforcements.append(
                PlannedEnforcement(failed.rule, failure=f"criteria: {failed.error}")
            )
        for rule in result.matched:
            plan.enforcements.append(await self._enforcement(rule, ti, now))
        return plan

    async def _enforcement(
        self, rule: CompiledRule, ti: events.TriggerInstance, now: datetime
    ) -> PlannedEnforcement:
        trace = {"trace_tag": ti.trace_tag} if ti.trace_tag else None
        try:
            pack = rule.action_ref.split(".", 1)[0]
            config, _secret_paths = await self.executions.content.pack_config(pack)

            def _render(kv: Any) -> tuple[dict[str, Any], list[StormBucket]]:
                ctx = action_render_context(
                    rule,
                    ti.payload,
                    trigger_instance_id=ti.id,
                    user=SYSTEM_USER,
                    kv=kv,
                    trace_context=trace,
                    config=config,
                    trigger_instance_name=ti.trigger,
                )
                return render_action_parameters(rule, ctx), rule.storm_buckets(
                    ti.payload, now=now, kv=kv
                )

            params, buckets = await render_with_kv(
                _render, self.datastore.fetch, user=SYSTEM_USER, decrypt=self.cipher.decrypt
            )
            context: dict[str, Any] = {
                "user": SYSTEM_USER,
                "rule": {"id": rule.id, "name": rule.name, "ref": rule.ref},
                "trigger_instance": {"id": ti.id, "name": ti.trigger},
            }
            if trace:
                context["trace_context"] = trace
            row = await self.executions.prepare(
                SYSTEM_USER, rule.action_ref, params, context=context, trace_tag=ti.trace_tag
            )
        except DomainError as exc:
            return PlannedEnforcement(rule, failure=str(exc))
        except Exception as exc:
            log.exception("rule %s failed on trigger instance %s", rule.ref, ti.id)
            return PlannedEnforcement(rule, failure=f"internal error: {exc!r}")
        return PlannedEnforcement(rule, execution=row, buckets=buckets)

    # --- the transaction --------------------------------------------------------------------

    def _apply(self, conn: Connection, plans: Sequence[_Plan]) -> list[dict[str, Any]]:
        now = utcnow()
        held = set(
            events.finish_instances(
                conn,
                [
                    (p.instance.id, "processing_failed" if p.error else "processed", p.error)
                    for p in plans
                ],
                owner=self.owner,
                now=now,
            )
        )
        enforcement_rows: list[dict[str, Any]] = []
        execution_rows: list[dict[str, Any]] = []
        todo = [p for p in plans if p.instance.id in held and p.enforcements]
        done = events.enforced_pairs(conn, [p.instance.id for p in todo])
        for plan in todo:
            for planned in plan.enforcements:
                rule = planned.rule
                if (plan.instance.id, rule.id or rule.ref) in done:
                    continue  # enforced by an earlier attempt at this instance
                status, reason, execution = "succeeded", planned.failure, planned.execution
                if reason is not None:
                    status, execution = "failed", None
                else:
                    suppressed = self._storm(conn, planned.buckets, now)
                    if suppressed is not None:
                        status, reason, execution = "suppressed", suppressed, None
                enforcement_rows.append(
                    {
                        "id": new_id(),
                        "rule_id": rule.id or rule.ref,
                        "rule_ref": rule.ref,
                        "rule": {
                            "id": rule.id,
                            "ref": rule.ref,
                            "name": rule.name,
                            "pack": rule.pack,
                            "uid": f"rule:{rule.pack}:{rule.name}",
                        },
                        "trigger_instance_id": plan.instance.id,
                        "execution_id": execution["id"] if execution else None,
                        "status": status,
                        "failure_reason": reason,
                        "enforced_at": now,
                        "team": None,
                    }
                )
                if execution is not None:
                    execution_rows.append(execution)
        inserted = events.insert_enforcements(conn, enforcement_rows)
        if self.metrics is not None:
            for plan in plans:
                if plan.instance.id in held:
                    status = "processing_failed" if plan.error else "processed"
                    self.metrics.trigger_instances.labels(status).inc()
            for row in enforcement_rows:
                if row["id"] in inserted:
                    self.metrics.enforcements.labels(row["status"]).inc()
        wanted = {
            r["execution_id"] for r in enforcement_rows if r["id"] in inserted and r["execution_id"]
        }
        fresh = [r for r in execution_rows if r["id"] in wanted]
        self.executions.insert_rows(conn, fresh)
        return fresh

    @staticmethod
    def _storm(conn: Connection, buckets: Sequence[StormBucket], now: datetime) -> str | None:
        """Admit through every bucket, or say why the enforcement is suppressed.

        All buckets are checked before any is counted, so a suppressed enforcement leaves no
        trace in the counters (a duplicate does not use up the throttle, and vice versa).
        """
        ordered = sorted(buckets, key=lambda b: b.kind != "dedup")  # report duplicates first
        for bucket in ordered:
            if bucket.kind == "dedup":
                last = events.dedup_last(conn, key=bucket.key)
                if last is not None and last >= bucket.window_start:
                    return (
                        f"duplicate: key {bucket.group!r} was enforced at "
                        f"{last.isoformat()}, within the dedup window"
                    )
            elif (
                events.throttle_count(conn, key=bucket.key, window_start=bucket.window_start)
                >= bucket.limit
            ):
                group = f" for {bucket.group}" if bucket.group else ""
                return (
                    f"throttled: {bucket.limit} executions already started{group} in the "
                    f"window starting {bucket.window_start.isoformat()}"
                )
        for bucket in ordered:
            if bucket.kind == "dedup":
                events.record_dedup(conn, key=bucket.key, now=now)
            else:
                events.record_throttle(
                    conn,
                    key=bucket.key,
                    window_start=bucket.window_start,
                    window_end=bucket.window_end,
                )
        return None

    async def _release_expired(self) -> int:
        now = utcnow()
        return await self.db.write(lambda conn: events.release_expired_claims(conn, now=now))

    # --- loop ---------------------------------------------------------------------------------

    async def _release_own(self) -> int:
        """Return this process's claims to the queue (nothing of them is in progress)."""
        count = await self.db.write(lambda conn: events.release_claims(conn, owner=self.owner))
        if count:
            log.info("returned %d claimed trigger instances to the queue", count)
        return count

    async def run(self) -> None:
        released_at = 0.0
        loop = asyncio.get_running_loop()
        every = min(self.RELEASE_SECONDS, self.lease.total_seconds() / 3)
        failed = False
        try:
            while not self._stopping:
                try:
                    if failed:
                        await self._release_own()
                        failed = False
                    if loop.time() - released_at > every:
                        released_at = loop.time()
                        await self._release_expired()
                    count = await self.tick()
                except asyncio.CancelledError:
                    raise
                except StoreError as exc:
                    log.warning("rules engine batch failed (%s); retrying", exc)
                    failed = True
                    await asyncio.sleep(1.0)
                    continue
                except Exception:
                    log.exception("rules engine batch failed; retrying")
                    failed = True
                    await asyncio.sleep(1.0)
                    continue
                if count >= self.BATCH:
                    continue
                await self.wakeups.wait("rules", self.POLL_SECONDS)
        finally:
            self._stopped.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in progress, then return any claim still held."""
        self._stopping = True
        self.wakeups.signal("rules", local=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout)
        with contextlib.suppress(Exception):
            await self._release_own()
