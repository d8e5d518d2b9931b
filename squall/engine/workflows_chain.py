"""Action-chain runs: the pure :class:`ChainStepper` driven one child execution at a time.

A chain is sequential, so its whole progress (the stepper's document, a few KB) is the run's
header: one row is rewritten per step. Pausing holds the next step until the chain is resumed;
a child that pauses (a pending inquiry, a paused child workflow) pauses the chain; canceling
cancels the running child and ends the chain ``canceled``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from squall.engine.workflows_children import SyncKV
from squall.engine.workflows_runs import Env, Run, Txn
from squall.errors import DomainError, WorkflowError
from squall.model.status import TERMINAL_STATUSES
from squall.store import workflow_inbox as inbox
from squall.store import workflows as wfrepo
from squall.store.executions import decode_result
from squall.workflow import ActionChain, ChainStep, ChainStepper, parse_chain
from squall.workflow import statuses as st

__all__ = ["ChainRun"]

log = logging.getLogger(__name__)

#: Nodes a chain may pass without running an action in one transaction (failed starts).
MAX_STEPS = 1000


def _step(data: dict[str, Any] | None) -> ChainStep | None:
    return ChainStep(**data) if data else None


def _data(step: ChainStep | None) -> dict[str, Any] | None:
    return dataclasses.asdict(step) if step is not None else None


class ChainRun(Run):
    """One action-chain execution."""

    def __init__(self, env: Env, row: wfrepo.WorkflowRow, chain: ActionChain) -> None:
        super().__init__(env, row)
        self.chain = chain
        self.stepper: ChainStepper
        header = row.header
        self.next: ChainStep | None = _step(header.get("next"))
        self.held: ChainStep | None = _step(header.get("held"))
        #: The node whose child execution is active, and that execution.
        self.active: str | None = header.get("active")
        self.active_id: str | None = header.get("active_id")
        #: The active child paused (a pending inquiry, a paused child workflow).
        self.child_paused: bool = bool(header.get("child_paused"))
        self.pausing: bool = bool(header.get("pausing"))
        self.canceling: bool = bool(header.get("canceling"))
        self.display_published = bool(row.static.get("display_published", True))
        self.skip_notify = set(row.static.get("skip_notify") or ())

    def _context(self, tx: Txn) -> dict[str, Any]:
        kv = SyncKV(tx.conn, user=self.info.user, decrypt=self.env.cipher.decrypt, now=tx.now)
        return {
            "st2kv": kv.root,
            "action_context": self.info.context,
            "config_context": self.env.actions.pack_config(tx.conn, self.info.pack),
        }

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, env: Env, conn: Any, row: wfrepo.WorkflowRow) -> ChainRun:
        text = wfrepo.get_definition(conn, row.definition_hash)
        if text is None:
            raise WorkflowError(f"the definition of action chain {row.id} is missing")
        run = cls(env, row, parse_chain(text))
        run.conn = conn
        run.stepper = ChainStepper.from_dict(
            run.chain, row.header.get("chain") or {}, display_published=run.display_published
        )
        return run

    @classmethod
    def start(
        cls,
        env: Env,
        tx: Txn,
        row: wfrepo.WorkflowRow,
        chain: ActionChain,
        parameters: dict[str, Any],
    ) -> ChainRun:
        run = cls(env, row, chain)
        run.conn = tx.conn
        run.stepper = ChainStepper(
            chain,
            parameters,
            context=run._context(tx),
            display_published=run.display_published,
        )
        run.next = run.stepper.start()
        run.dispatch(tx)
        run.settle(tx)
        return run

    # --- events -------------------------------------------------------------------------------

    def handle(self, tx: Txn, events: list[inbox.WorkflowEvent]) -> None:
        self.stepper.context = self._context(tx)
        super().handle(tx, events)

    def apply(self, tx: Txn, event: inbox.WorkflowEvent) -> None:
        kind = event.kind
        if kind == "child":
            self._child(event)
        elif kind == "pause":
            if self.canceling or self.pausing:
                tx.rejections[self.id] = f"the action chain is already {self.exec_status}"
                return
            self.pausing = True
            self.cascade_pause(tx)
        elif kind == "resume":
            if not self.pausing:
                tx.rejections[self.id] = f"the action chain is {self.exec_status}, not paused"
                return
            self.pausing = False
            self.cascade_resume(tx)
            if self.held is not None:
                self.next, self.held = self.held, None
        elif kind == "cancel":
            self.canceling = True
            self.next = self.held = None
            self.cascade_cancel(tx)

    def _child(self, event: inbox.WorkflowEvent) -> None:
        data = event.data
        node, status = data.get("node"), data["status"]
        if node is None or node != self.active or data.get("execution_id") != self.active_id:
            return
        if status in (st.PENDING, st.PAUSED):
            self.child_paused = True
            return
        if status in (st.RUNNING, st.RESUMING):
            self.child_paused = False
            return
        if status not in TERMINAL_STATUSES:
            return
        self.active = self.active_id = None
        self.child_paused = False
        result = decode_result(event.result) if event.result is not None else None
        self._record(node, status, result, data.get("execution_id"))

    def _record(self, node: str, status: str, result: Any, execution_id: str | None) -> None:
        step = self.stepper.record(node, status, result)
        if execution_id and self.stepper.tasks:
            self.stepper.tasks[-1]["execution_id"] = execution_id
        if self.canceling:
            return
        if self.pausing:
            self.held = step
        else:
            self.next = step

    # --- dispatch -----------------------------------------------------------------------------

    def dispatch(self, tx: Txn) -> None:
        for _ in range(MAX_STEPS):
            step, self.next = self.next, None
            if step is None or self.canceling:
                return
            context = {"chain": {"name": step.node}}
            notify = step.notify if step.node not in self.skip_notify else None
            try:
                row = self.env.children.build(
                    tx.conn,
                    self.info,
                    action_ref=step.action,
                    parameters=step.parameters,
                    context=context,
                    now=tx.now,
                    notify=notify,
                )
            except DomainError as exc:
                self._record(step.node, st.FAILED, {"error": str(exc)}, None)
                continue
            tx.children([row])
            self.active, self.active_id = step.node, row["id"]
            return
        self.stepper.error = "The action chain failed to start its nodes."
        self.stepper.status = st.FAILED

    # --- status and persistence ---------------------------------------------------------------

    def desired_status(self) -> str:
        if self.canceling:
            return st.CANCELING if self.active else st.CANCELED
        if self.active:
            if self.pausing and not self.child_paused:
                return st.PAUSING
            return st.PAUSED if self.child_paused else st.RUNNING
        if self.held is not None:
            return st.PAUSED
        status = self.stepper.status
        return status if status in TERMINAL_STATUSES else st.FAILED

    def waits_on_one(self) -> bool:
        return self.active is not None and not self.finished

    def result(self) -> Any:
        return self.stepper.result

    def persist(self, tx: Txn, status: str) -> None:
        header = {
            "status": status,
            "chain": self.stepper.to_dict(),
            "next": _data(self.next),
            "held": _data(self.held),
            "active": self.active,
            "active_id": self.active_id,
            "child_paused": self.child_paused,
            "pausing": self.pausing,
            "canceling": self.canceling,
        }
        wfrepo.save_header(
            tx.conn, self.id, status=status, header=header, version=self.version + 1, now=tx.now
        )

    def crash(self, tx: Txn, message: str) -> None:
        self.stepper.error = message
        self.stepper.status = st.FAILED
        self.canceling = False
        self.cascade_cancel(tx)
        self.active = self.active_id = None
        self.next = self.held = None
        self.mirror(tx, st.FAILED)
        self.persist(tx, self.exec_status)
        self.version += 1
