"""A workflow run as the engine processes it, and what Orquesta and action-chain runs share.

A :class:`Run` is kept warm in memory between events and applied to one transaction at a
time (:class:`Txn`): it folds events in, starts child executions, mirrors its status onto its
execution row (``running`` → ``pausing``/``paused``/``resuming``/``canceling`` → the terminal
status with the result), tells its parent workflow when it pauses or resumes, and cascades
pause/resume/cancel requests to its children: child workflows get the same request as an
event, delayed children are held (``paused``) or canceled, running actions are canceled by
their runner host.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from squall.auth.secrets import Cipher
from squall.engine.executions import ExecutionService
from squall.engine.workflows_children import ActionIndex, ChildFactory, RunInfo
from squall.model.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ExecutionStatus
from squall.store import executions as exrepo
from squall.store import inquiries as inqrepo
from squall.store import workflow_inbox as inbox
from squall.store import workflows as wfrepo
from squall.store.executions import Execution, ExecutionFilter

__all__ = [
    "ENGINE_RUNNERS",
    "WORKFLOW_RUNNERS",
    "Env",
    "Run",
    "Txn",
    "child_event",
]

_S = ExecutionStatus

#: Runner types whose executions the workflow engine holds (no runner process).
WORKFLOW_RUNNERS = frozenset({"orquesta", "action-chain"})
ENGINE_RUNNERS = WORKFLOW_RUNNERS | {"inquirer"}
_ACTIVE = sorted(ACTIVE_STATUSES)


def child_event(
    execution_id: str, status: str, context: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The ``child`` event a workflow child sends its parent, or None for other executions."""
    orquesta = context.get("orquesta")
    if isinstance(orquesta, Mapping):
        return {
            "execution_id": execution_id,
            "status": status,
            "task_id": orquesta.get("task_id"),
            "route": orquesta.get("task_route", 0),
            "item_id": orquesta.get("item_id"),
        }
    chain = context.get("chain")
    if isinstance(chain, Mapping):
        return {"execution_id": execution_id, "status": status, "node": chain.get("name")}
    return None


@dataclass
class Env:
    """The services a run needs inside a transaction."""

    executions: ExecutionService
    children: ChildFactory
    actions: ActionIndex
    cipher: Cipher


@dataclass
class Txn:
    """One processing transaction and what to do once it committed."""

    conn: Connection
    now: datetime
    #: Wake-up channels to signal after the commit.
    signals: set[str] = field(default_factory=set)
    #: Requests a run refused (pause of a finished workflow …), by workflow id.
    rejections: dict[str, str] = field(default_factory=dict)
    #: Runs to keep warm once the transaction committed.
    done: list[Run] = field(default_factory=list)
    #: Writes new executions (letting the local runner host adopt them); plain insert if None.
    insert: Callable[[Connection, list[dict[str, Any]]], None] | None = None

    def children(self, rows: list[dict[str, Any]]) -> None:
        """Write new child executions and wake whoever takes them next."""
        if self.insert is not None:
            self.insert(self.conn, rows)
        else:
            exrepo.insert(self.conn, rows)
        for row in rows:
            if row["status"] == _S.RUNNING:
                continue  # adopted by this process's runner host: it starts after the commit
            if row["status"] != _S.SCHEDULED:
                self.signals.add("scheduler")
            elif row["runner_type"] in ENGINE_RUNNERS:
                self.signals.add("workflow")
            else:
                self.signals.add("runner")

    def event(self, workflow_id: str, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Queue an event for (another) workflow run."""
        inbox.add_event(self.conn, workflow_id, kind, dict(data or {}), now=self.now)
        self.signals.add("workflow")


class Run(abc.ABC):
    """A workflow run: header row, inherited fields, and the kind-specific state."""

    def __init__(self, env: Env, row: wfrepo.WorkflowRow) -> None:
        self.env = env
        self.row = row
        self.id = row.id
        self.info = RunInfo.from_dict(row.meta)
        self.version = row.version
        #: The status last written on the execution row.
        self.exec_status = row.status
        self.conn: Connection | None = None

    # --- kind-specific ------------------------------------------------------------------------

    @abc.abstractmethod
    def apply(self, tx: Txn, event: inbox.WorkflowEvent) -> None:
        """Fold one event in."""

    @abc.abstractmethod
    def dispatch(self, tx: Txn) -> None:
        """Start what can run now."""

    @abc.abstractmethod
    def desired_status(self) -> str:
        """The status the execution row should show now."""

    @abc.abstractmethod
    def result(self) -> Any:
        """The execution result once the run ended."""

    @abc.abstractmethod
    def persist(self, tx: Txn, status: str) -> None:
        """Write the state changes (and the header, with ``status``)."""

    @abc.abstractmethod
    def crash(self, tx: Txn, message: str) -> None:
        """Record an internal error and end the run as failed."""

    @abc.abstractmethod
    def waits_on_one(self) -> bool:
        """Whether exactly one child is active (its completion is all the run waits for)."""

    # --- shared -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.exec_status in TERMINAL_STATUSES

    def handle(self, tx: Txn, events: list[inbox.WorkflowEvent]) -> None:
        """Apply events, start the next children, mirror the status and persist."""
        self.conn = tx.conn
        if not self.finished:
            for event in events:
                self.apply(tx, event)
            self.dispatch(tx)
        self.settle(tx)

    def settle(self, tx: Txn) -> None:
        """Mirror the run's status onto its execution, then persist."""
        if not self.finished:
            self.mirror(tx, self.desired_status())
        self.persist(tx, self.exec_status)
        self.version += 1

    def mirror(self, tx: Txn, desired: str) -> None:
        old = self.exec_status
        if desired == old:
            return
        conn = tx.conn
        if desired in TERMINAL_STATUSES:
            done = exrepo.finish(conn, self.id, status=desired, result=self.result(), now=tx.now)
            if done is not None:
                self.env.executions.on_terminal(conn, done)
                desired = done.status
            self.exec_status = desired
            return
        current = exrepo.get(conn, self.id, with_result=False)
        if current is None or current.is_terminal:
            return
        if current.status != desired:
            exrepo.set_status(conn, self.id, status=desired, now=tx.now, expected=_ACTIVE)
        self.exec_status = desired
        self._tell_parent(tx, old, desired)

    def _tell_parent(self, tx: Txn, old: str, new: str) -> None:
        """A child workflow that pauses or resumes reports it to its parent workflow."""
        if self.info.parent_id is None:
            return
        if new == _S.PAUSED:
            status = _S.PAUSED
        elif old in (_S.PAUSED, _S.PAUSING) and new in (_S.RUNNING, _S.RESUMING):
            status = _S.RUNNING
        else:
            return
        data = child_event(self.id, status, self.info.context)
        if data is not None:
            tx.event(self.info.parent_id, "child", data)

    # --- cascades -----------------------------------------------------------------------------

    def children(self, tx: Txn, statuses: list[str] | None = None) -> list[Execution]:
        """This run's children in ``statuses`` (active ones by default), oldest first."""
        flt = ExecutionFilter(parent=self.id, status=statuses or _ACTIVE)
        return exrepo.list_executions(tx.conn, flt, limit=1_000_000, ascending=True)

    def cascade_pause(self, tx: Txn) -> list[Execution]:
        """Pause child workflows; hold delayed children. Returns the held children."""
        held: list[Execution] = []
        for child in self.children(tx):
            if child.runner_type in WORKFLOW_RUNNERS:
                if child.status in (_S.RUNNING, _S.RESUMING):
                    tx.event(child.id, "pause")
            elif child.status == _S.DELAYED:
                done = exrepo.set_status(
                    tx.conn, child.id, status=_S.PAUSED, now=tx.now, expected=[_S.DELAYED]
                )
                if done is not None:
                    held.append(child)
        return held

    def cascade_resume(self, tx: Txn) -> list[Execution]:
        """Resume child workflows; release held children. Returns the released children."""
        released: list[Execution] = []
        for child in self.children(tx, [_S.PAUSED, _S.PAUSING]):
            if child.runner_type in WORKFLOW_RUNNERS:
                tx.event(child.id, "resume")
            elif child.runner_type not in ENGINE_RUNNERS and child.status == _S.PAUSED:
                done = exrepo.set_status(
                    tx.conn, child.id, status=_S.DELAYED, now=tx.now, expected=[_S.PAUSED]
                )
                if done is not None:
                    released.append(child)
                    tx.signals.add("scheduler")
        return released

    def cascade_cancel(self, tx: Txn) -> None:
        """Cancel every active child (child workflows cancel theirs in turn)."""
        for child in self.children(tx):
            cancel_execution(self.env, tx, child)


def cancel_execution(env: Env, tx: Txn, child: Execution) -> None:
    """Request cancellation of ``child``; finish it at once when nothing runs it."""
    conn = tx.conn
    updated, changed = exrepo.request_cancel(conn, child.id, now=tx.now)
    if updated is None or updated.status != _S.CANCELING:
        if changed and updated is not None and updated.is_terminal:
            env.executions.on_terminal(conn, updated)
        return
    if child.runner_type in WORKFLOW_RUNNERS:
        tx.event(child.id, "cancel")
    elif updated.lease_owner is None:
        # A pending inquiry or a held (paused) task: no runner will report back.
        if child.runner_type == "inquirer":
            inqrepo.close(conn, child.id, status=_S.CANCELED, now=tx.now)
        done = exrepo.finish(conn, child.id, status=_S.CANCELED, result=None, now=tx.now)
        if done is not None:
            env.executions.on_terminal(conn, done)
    else:
        tx.signals.add("cancel")
