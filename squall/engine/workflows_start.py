"""Starting workflow and inquiry executions the workflow engine has claimed.

The engine claims ``scheduled`` executions of its runner types (``orquesta``, ``action-chain``,
``inquirer``) with a short lease, then for each:

1. **plans** it outside any transaction: resolves the parameters as a runner host would,
   reads the definition from the pack (or, for a re-run from tasks, the stored definition and
   state of the original run), and inspects it — an invalid workflow fails here with the
   inspection errors in ``result.errors``;
2. **commits** it in one transaction: the run's header row, the first child executions and
   the state, and the lease is released — from then on the run is held by its rows, not by a
   process, so lease expiry never touches a healthy long workflow. If this process dies
   between claim and commit, the lease expires and garbage collection abandons the execution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from squall.config import Settings
from squall.engine.inquiries import InquiryService
from squall.engine.workflows_chain import ChainRun
from squall.engine.workflows_check import APP_CONTEXT, inspect_text, static_action_refs
from squall.engine.workflows_children import RunInfo
from squall.engine.workflows_orquesta import OrquestaRun
from squall.engine.workflows_runs import Env, Run, Txn
from squall.errors import DomainError, WorkflowError
from squall.model.status import ExecutionStatus
from squall.packs.content import resolve_entry_point
from squall.store import executions as exrepo
from squall.store import workflows as wfrepo
from squall.store.executions import Execution
from squall.store.schema import executions as executions_table
from squall.workflow import ActionChain, compile_workflow, parse_chain
from squall.workflow.workflow import Workflow

__all__ = ["StartPlan", "Starter"]

log = logging.getLogger(__name__)

_S = ExecutionStatus


@dataclass
class StartPlan:
    """What committing a claimed execution will do."""

    ex: Execution
    kind: str
    #: The result of an execution that cannot start (it fails with it).
    failure: Any = None
    text: str | None = None
    workflow: Workflow | None = None
    chain: ActionChain | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    runner: dict[str, Any] = field(default_factory=dict)
    #: A re-run from tasks: the original's state document, and the tasks to run again.
    rerun_state: dict[str, Any] | None = None
    rerun_tasks: list[str] = field(default_factory=list)
    rerun_reset: list[str] = field(default_factory=list)


def _failure(kind: str, message: str, errors: list[dict[str, Any]] | None = None) -> Any:
    if kind == "orquesta":
        return {"output": None, "errors": errors or [{"type": "error", "message": message}]}
    if kind == "action-chain":
        return {"tasks": [], "published": {}, "error": message}
    return {"error": message}


class Starter:
    """Plans and commits the start of claimed executions."""

    def __init__(self, settings: Settings, env: Env, inquiries: InquiryService, owner: str) -> None:
        self.settings = settings
        self.env = env
        self.inquiries = inquiries
        self.owner = owner

    # --- planning (async, no transaction) ------------------------------------------------------

    async def plan(self, ex: Execution) -> StartPlan:
        kind = ex.runner_type
        try:
            return await self._plan(ex)
        except DomainError as exc:
            return StartPlan(ex, kind, failure=_failure(kind, str(exc)))
        except Exception as exc:
            log.exception("could not start execution %s", ex.id)
            return StartPlan(ex, kind, failure=_failure(kind, f"internal error: {exc!r}"))

    async def _plan(self, ex: Execution) -> StartPlan:
        executions = self.env.executions
        kind = ex.runner_type
        bundle = await executions.bundle(ex.action_snapshot)
        pack_config, _secret_paths = await executions.content.pack_config(bundle.pack)
        resolved = await executions.resolve(
            bundle, ex.parameters, user=ex.user, context=ex.context, pack_config=pack_config
        )
        plan = StartPlan(ex, kind, inputs=dict(resolved.action), runner=dict(resolved.runner))
        if kind == "inquirer":
            return plan
        rerun = ex.context.get("re-run")
        if isinstance(rerun, dict) and (rerun.get("tasks") or rerun.get("reset")):
            return await self._plan_rerun(plan, rerun)
        pack = await executions.content.pack(bundle.pack)
        entry_point = bundle.doc.get("entry_point")
        if pack is None or not entry_point:
            raise WorkflowError(f"action {bundle.ref} has no workflow definition (entry_point)")
        path = resolve_entry_point(Path(pack.path), Path(pack.path) / "actions", str(entry_point))
        if path is None or not path.is_file():
            raise WorkflowError(f"the workflow definition {entry_point} of {bundle.ref} is missing")
        plan.text = path.read_text(encoding="utf-8")
        await self._inspect(plan)
        return plan

    async def _inspect(self, plan: StartPlan) -> None:
        """Inspect the definition (cached for valid ones) and check its actions exist."""
        assert plan.text is not None
        errors: list[dict[str, Any]] = []
        refs: list[str] = []
        if plan.kind == "action-chain":
            try:
                plan.chain = parse_chain(plan.text)
                refs = [n.ref for n in plan.chain.nodes if "{{" not in n.ref]
            except WorkflowError:
                errors = inspect_text(plan.text, kind=plan.kind)
        else:
            try:
                plan.workflow = compile_workflow(plan.text, app_ctx=list(APP_CONTEXT))
                refs = list(static_action_refs(plan.workflow.spec).values())
            except WorkflowError:
                errors = inspect_text(plan.text, kind=plan.kind)
        if not errors:
            known = {
                ref: await self.env.executions.content.action(ref) is not None for ref in set(refs)
            }
            if not all(known.values()):
                errors = inspect_text(
                    plan.text, kind=plan.kind, action_exists=lambda r: known.get(r, True)
                )
        if errors:
            message = "; ".join(str(e["message"]) for e in errors)
            plan.failure = _failure(plan.kind, message, errors)
            return
        if plan.kind == "orquesta":
            plan.context = self._context(plan.ex)

    def _context(self, ex: Execution) -> dict[str, Any]:
        st2: dict[str, Any] = {
            "action_execution_id": ex.id,
            "workflow_execution_id": ex.id,
            "action": ex.action_ref,
            "runner": ex.runner_type,
            "pack": ex.action_ref.split(".", 1)[0],
            "user": ex.user,
            "api_url": f"{self.settings.api_url}/api/v1",
        }
        for key in ("api_user", "source_channel"):
            if key in ex.context:
                st2[key] = ex.context[key]
        context: dict[str, Any] = {"st2": st2}
        if "parent" in ex.context:
            context["parent"] = ex.context["parent"]
        return context

    async def _plan_rerun(self, plan: StartPlan, rerun: dict[str, Any]) -> StartPlan:
        if plan.kind != "orquesta":
            raise WorkflowError("re-running from tasks is only possible for orquesta workflows")
        original = str(rerun.get("ref") or "")

        def _read(conn: Connection) -> tuple[wfrepo.WorkflowRow | None, Any, str | None]:
            row = wfrepo.get_workflow(conn, original)
            if row is None:
                return None, None, None
            return (
                row,
                wfrepo.load_state(conn, row),
                wfrepo.get_definition(conn, row.definition_hash),
            )

        row, state, text = await self.env.executions.db.read(_read)
        if row is None or text is None:
            raise WorkflowError(f"execution {original} is not a workflow that can be re-run")
        plan.text = text
        plan.workflow = compile_workflow(text, check=False, app_ctx=list(APP_CONTEXT))
        plan.rerun_state = state
        plan.rerun_tasks = [str(t) for t in rerun.get("tasks") or []]
        plan.rerun_reset = [str(t) for t in rerun.get("reset") or []]
        return plan

    # --- committing (sync, in the transaction) ------------------------------------------------

    def commit(self, tx: Txn, plan: StartPlan) -> Run | None:
        """Start one planned execution; returns the new run (None for inquiries/failures)."""
        conn = tx.conn
        ex = exrepo.get(conn, plan.ex.id, with_result=False)
        if ex is None or ex.lease_owner != self.owner:
            return None  # our claim lapsed: gc or another engine has it
        if ex.status == _S.CANCELING:
            self._finish(tx, ex.id, _S.CANCELED, None)
            return None
        if ex.status != _S.RUNNING:
            return None
        if plan.failure is not None:
            self._finish(tx, ex.id, _S.FAILED, plan.failure)
            return None
        if plan.kind == "inquirer":
            self.inquiries.open(conn, ex, plan.runner, tx.now)
            return None
        assert plan.text is not None
        info = RunInfo(
            id=ex.id,
            user=ex.user,
            action_ref=ex.action_ref,
            root_id=ex.root_id or ex.id,
            parent_id=ex.parent_id,
            trace_tag=ex.trace_tag,
            context=dict(ex.context),
            notify=dict(ex.notify) if ex.notify else None,
            notify_tasks=tuple(plan.runner.get("notify") or ()),
        )
        static: dict[str, Any] = {}
        if plan.kind == "action-chain":
            static = {
                "display_published": bool(plan.runner.get("display_published", True)),
                "skip_notify": list(plan.runner.get("skip_notify") or []),
            }
        digest = wfrepo.put_definition(conn, plan.kind, plan.text, now=tx.now)
        wfrepo.insert_workflow(
            conn,
            id=ex.id,
            kind=plan.kind,
            status=_S.RUNNING,
            definition_hash=digest,
            header={},
            static=static,
            meta=info.to_dict(),
            now=tx.now,
        )
        # Held by its rows from now on, not by this process's lease.
        conn.execute(
            executions_table.update()
            .where(executions_table.c.id == ex.id)
            .values(lease_owner=None, lease_expires_at=None)
        )
        row = wfrepo.get_workflow(conn, ex.id)
        assert row is not None
        if plan.kind == "action-chain":
            assert plan.chain is not None
            return ChainRun.start(self.env, tx, row, plan.chain, plan.inputs)
        assert plan.workflow is not None
        if plan.rerun_state is not None:
            return OrquestaRun.rerun(
                self.env,
                tx,
                row,
                plan.workflow,
                plan.rerun_state,
                plan.rerun_tasks,
                plan.rerun_reset,
            )
        return OrquestaRun.start(self.env, tx, row, plan.workflow, plan.inputs, plan.context)

    def _finish(self, tx: Txn, execution_id: str, status: str, result: Any) -> None:
        done = exrepo.finish(tx.conn, execution_id, status=status, result=result, now=tx.now)
        if done is not None:
            self.env.executions.on_terminal(tx.conn, done)

    def fail(self, tx: Txn, execution_id: str, kind: str, message: str) -> None:
        """End a claimed execution whose start crashed."""
        self._finish(tx, execution_id, _S.FAILED, _failure(kind, message))
