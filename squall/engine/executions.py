"""Requesting, canceling and re-running executions; the compiled form of each action version.

Everything that starts an execution — the API, rules, workflows, re-runs — goes through
:meth:`ExecutionService.request`, so validation, defaults and masking are the same everywhere.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from squall.auth.kvaccess import KVAccess, permission_denied_cause
from squall.auth.rbac import has_permission, require, uid_for_ref
from squall.auth.secrets import Cipher
from squall.auth.service import SYSTEM_USER, Principal
from squall.engine.content_cache import ContentCache
from squall.engine.datastore import DatastoreService
from squall.engine.wakeup import Wakeups
from squall.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from squall.expr.jinja import render_value
from squall.expr.kv import render_with_kv
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.params import (
    CompiledParameters,
    ResolvedParameters,
    compile_parameters,
    merge_parameter_specs,
)
from squall.runners.base import RunnerTypeSpec
from squall.runners.catalog import RUNNER_TYPES, SHELL_COMMAND_PARAMS, SHELL_COMMAND_RUNNERS
from squall.store import content
from squall.store import executions as exrepo
from squall.store.db import Database, after_commit
from squall.store.util import utcnow

__all__ = ["ActionBundle", "ExecutionService", "TerminalHook"]

_S = ExecutionStatus

#: Called inside the transaction that makes an execution terminal (internal triggers,
#: retries, workflow events).
TerminalHook = Callable[[Connection, exrepo.Execution], None]


@dataclass(frozen=True)
class ActionBundle:
    """One immutable action version, compiled for fast parameter resolution."""

    snapshot: str
    doc: dict[str, Any]
    runner: RunnerTypeSpec
    specs: dict[str, dict[str, Any]]
    compiled: CompiledParameters
    secret_names: frozenset[str]
    shell_params: frozenset[str]

    @property
    def ref(self) -> str:
        return str(self.doc["ref"])

    @property
    def pack(self) -> str:
        return str(self.doc["pack"])


class ExecutionService:
    """The one way executions are created and controlled."""

    _BUNDLE_CACHE = 2048

    def __init__(
        self,
        db: Database,
        wakeups: Wakeups,
        datastore: DatastoreService,
        cipher: Cipher,
    ) -> None:
        self.db = db
        self.wakeups = wakeups
        self.datastore = datastore
        self.cipher = cipher
        self._bundles: OrderedDict[str, ActionBundle] = OrderedDict()
        self.content = ContentCache(db)
        self._terminal_hooks: list[TerminalHook] = []
        #: Says whether an action may skip the scheduler (no concurrency policy applies):
        #: such executions are written ``scheduled`` directly, saving one hand-off.
        self.may_skip_scheduler: Callable[[str], Awaitable[bool]] | None = None
        self.metrics: Any = None
        #: The local runner host's :meth:`~squall.engine.runner_host.RunnerHost.adopt`, when
        #: this process runs one: new executions start without a claim round trip.
        self.adopt: Callable[[Connection, list[dict[str, Any]]], None] | None = None
        #: Looks up the principal a user acts as, so that templates rendered for a user's
        #: execution read the datastore with that user's permissions (set by the runtime).
        self.principal_for: Callable[[str], Awaitable[Principal]] | None = None

    # --- action versions --------------------------------------------------------------------

    def bundle_from_doc(self, snapshot: str, doc: Mapping[str, Any]) -> ActionBundle:
        """Compile (or fetch from cache) the action version ``snapshot``."""
        cached = self._bundles.get(snapshot)
        if cached is not None:
            self._bundles.move_to_end(snapshot)
            return cached
        runner = RUNNER_TYPES.get(doc["runner_type"])
        if runner is None:
            raise ValidationError(
                f"action {doc['ref']} uses unknown runner type {doc['runner_type']!r}"
            )
        specs = merge_parameter_specs(
            runner.runner_parameters, doc.get("parameters") or {}, action_ref=doc["ref"]
        )
        shell = (
            frozenset(SHELL_COMMAND_PARAMS)
            if doc["runner_type"] in SHELL_COMMAND_RUNNERS
            else frozenset()
        )
        compiled = compile_parameters(
            specs,
            runner_param_names=runner.runner_parameters.keys(),
            shell_params=shell,
            action_ref=doc["ref"],
        )
        bundle = ActionBundle(
            snapshot=snapshot,
            doc=dict(doc),
            runner=runner,
            specs=specs,
            compiled=compiled,
            secret_names=frozenset(n for n, s in specs.items() if s.get("secret")),
            shell_params=shell,
        )
        self._bundles[snapshot] = bundle
        if len(self._bundles) > self._BUNDLE_CACHE:
            self._bundles.popitem(last=False)
        return bundle

    async def bundle(self, snapshot: str) -> ActionBundle:
        """The compiled action version an execution refers to."""
        cached = self._bundles.get(snapshot)
        if cached is not None:
            return cached

        doc = await self.db.read(lambda conn: content.get_snapshot(conn, snapshot))
        if doc is None:
            raise NotFoundError(f"action version {snapshot} is missing from the database")
        return self.bundle_from_doc(snapshot, doc)

    async def action(self, ref: str) -> tuple[content.ActionRecord, ActionBundle]:
        record = await self.content.action(ref)
        if record is None:
            raise NotFoundError(
                f"action {ref!r} not found", hint="`squall action list` shows the actions"
            )
        return record, self.bundle_from_doc(record.snapshot, record.doc)

    # --- parameters -------------------------------------------------------------------------

    async def resolve(
        self,
        bundle: ActionBundle,
        provided: Mapping[str, Any],
        *,
        user: str,
        context: Mapping[str, Any],
        pack_config: Mapping[str, Any] | None = None,
        principal: Principal | None = None,
    ) -> ResolvedParameters:
        """Validate and render ``provided`` against the action's parameters.

        With ``principal`` (a user's request), ``st2kv`` reads and ``decrypt_kv`` are checked
        against that principal's permissions (:class:`squall.auth.kvaccess.KVAccess`).
        """
        render_context = {
            "action_context": dict(context),
            "config_context": dict(pack_config or {}),
        }

        def _render(kv: Any) -> ResolvedParameters:
            return bundle.compiled.resolve(provided, context=render_context, kv=kv)

        if principal is None and self.principal_for is not None and user != SYSTEM_USER:
            principal = await self.principal_for(user)
        if principal is None or principal.is_admin:
            return await render_with_kv(
                _render, self.datastore.fetch, user=user, decrypt=self.cipher.decrypt
            )
        access = KVAccess(principal, self.datastore.fetch, self.cipher.decrypt)
        try:
            return await render_with_kv(_render, access.fetch, user=user, decrypt=access.decrypt)
        except DomainError as exc:
            denied = permission_denied_cause(exc)
            if denied is not None and denied is not exc:
                raise denied from None
            raise

    async def render_config(self, config: Mapping[str, Any], *, user: str) -> dict[str, Any]:
        """Render Jinja in pack config values (``{{ st2kv.system.token | decrypt_kv }}``), as
        StackStorm does when it hands the config to an action."""
        if not _has_template(config):
            return dict(config)

        def _render(kv: Any) -> dict[str, Any]:
            rendered: dict[str, Any] = render_value(dict(config), {"st2kv": kv.root})
            return rendered

        return await render_with_kv(
            _render, self.datastore.fetch, user=user, decrypt=self.cipher.decrypt
        )

    # --- requests ---------------------------------------------------------------------------

    async def prepare(
        self,
        user: str,
        action_ref: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        notify: Mapping[str, Any] | None = None,
        delay_ms: int | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
        trace_tag: str | None = None,
        attempt: int = 0,
        principal: Principal | None = None,
    ) -> dict[str, Any]:
        """Validate a request and build the execution row, without writing it.

        Raises the domain error a caller should report (unknown or disabled action, bad
        parameters). Used by :meth:`request` and by services that write the execution in
        their own transaction (the rules engine, retries, workflows). With ``principal``, the
        request is made on that principal's behalf: it needs ``action_execute`` on the action,
        and its templates read the datastore with the principal's permissions.
        """
        record, bundle = await self.action(action_ref)
        if principal is not None:
            require(principal, "action_execute", uid_for_ref("action", record.ref))
        if not record.enabled:
            raise ValidationError(
                f"action {action_ref} is disabled", hint="enable it before running it"
            )
        params = dict(parameters or {})
        ctx = dict(context or {})
        ctx.setdefault("user", user)
        ctx.setdefault("pack", bundle.pack)
        pack_config, _secret_paths = await self.content.pack_config(bundle.pack)
        # Fail fast: a request whose parameters cannot resolve is rejected with the reason.
        await self.resolve(
            bundle, params, user=user, context=ctx, pack_config=pack_config, principal=principal
        )
        if delay_ms is not None and delay_ms < 0:
            raise ValidationError("delay must be a non-negative number of milliseconds")
        now = utcnow()
        not_before = now + timedelta(milliseconds=delay_ms) if delay_ms else None
        status: str = _S.DELAYED if not_before else _S.REQUESTED
        if (
            status == _S.REQUESTED
            and self.may_skip_scheduler is not None
            and await self.may_skip_scheduler(record.ref)
        ):
            status = _S.SCHEDULED
        return exrepo.new_row(
            id=new_id(),
            action_ref=record.ref,
            action_snapshot=record.snapshot,
            runner_type=bundle.runner.name,
            parameters=params,
            context=ctx,
            user=user,
            now=now,
            notify=notify,
            parent_id=parent_id,
            root_id=root_id,
            trace_tag=trace_tag,
            not_before=not_before,
            status=status,
            attempt=attempt,
        )

    async def request(
        self,
        principal: Principal,
        action_ref: str,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> exrepo.Execution:
        """Validate and record a new execution; it runs once a runner host claims it.

        Keyword arguments are those of :meth:`prepare`.
        """
        row = await self.prepare(
            principal.user, action_ref, parameters, principal=principal, **kwargs
        )
        await self.db.write(lambda conn: self.insert_rows(conn, [row]))
        self.signal_new([row])
        return exrepo.Execution.from_row(_RowProxy(row))

    def insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Write new execution rows (in the caller's transaction), letting the local runner
        host adopt what it can run right away."""
        if self.adopt is not None:
            self.adopt(conn, rows)
        exrepo.insert(conn, rows)
        if self.metrics is not None and rows:
            after_commit(conn, functools.partial(self._count_requested, rows))

    def _count_requested(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for r in rows:
            self.metrics.executions_requested.labels(r["runner_type"]).inc()

    def signal_new(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Wake whoever handles new executions next (the scheduler or the runners)."""
        statuses = {r["status"] for r in rows}
        if statuses & {_S.REQUESTED, _S.DELAYED}:
            self.wakeups.signal("scheduler")
        if _S.SCHEDULED in statuses:  # adopted rows (running) need no wake-up
            self.wakeups.signal("runner")

    # --- terminal transitions ---------------------------------------------------------------

    def add_terminal_hook(self, hook: TerminalHook) -> None:
        """Run ``hook(conn, execution)`` in the transaction that makes an execution terminal."""
        self._terminal_hooks.append(hook)

    def on_terminal(self, conn: Connection, ex: exrepo.Execution) -> None:
        """Called (in the same transaction) by everything that ends an execution."""
        for hook in self._terminal_hooks:
            hook(conn, ex)

    async def get(self, execution_id: str, *, with_result: bool = True) -> exrepo.Execution:
        ex = await self.db.read(
            lambda conn: exrepo.get(conn, execution_id, with_result=with_result)
        )
        if ex is None:
            raise NotFoundError(f"execution {execution_id!r} not found")
        return ex

    async def cancel(self, principal: Principal, execution_id: str) -> exrepo.Execution:
        """Cancel an execution (kills its process if it runs)."""
        ex = await self.get(execution_id, with_result=False)
        self._check_owner(principal, ex, "cancel")
        now = utcnow()

        def _cancel(conn: Connection) -> tuple[exrepo.Execution | None, bool]:
            updated, changed = exrepo.request_cancel(conn, execution_id, now=now)
            if changed and updated is not None and updated.is_terminal:
                self.on_terminal(conn, updated)
            return updated, changed

        updated, changed = await self.db.write(_cancel)
        if updated is None:
            raise NotFoundError(f"execution {execution_id!r} not found")
        if not changed and updated.is_terminal:
            raise ConflictError(
                f"execution {execution_id} is already {updated.status}; it cannot be canceled"
            )
        self.wakeups.signal("cancel")
        return await self.get(execution_id)

    async def re_run(
        self,
        principal: Principal,
        execution_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        delay_ms: int | None = None,
    ) -> exrepo.Execution:
        """Run the same action again with the original parameters, overridden by ``parameters``."""
        original = await self.get(execution_id, with_result=False)
        self._check_owner(principal, original, "re-run")
        merged = {**original.parameters, **dict(parameters or {})}
        context = {"re-run": {"ref": execution_id}}
        return await self.request(
            principal,
            original.action_ref,
            merged,
            context=context,
            notify=original.notify,
            delay_ms=delay_ms,
        )

    @staticmethod
    def _check_owner(principal: Principal, ex: exrepo.Execution, verb: str) -> None:
        """The owner, an admin, or a role granting the execution permission (directly or
        through ``action_execute`` on the execution's action) may control an execution."""
        if principal.is_admin or ex.user == principal.user:
            return
        permission = "execution_re_run" if verb == "re-run" else "execution_stop"
        uid = f"execution:{ex.id}"
        if has_permission(principal, permission, uid) or has_permission(
            principal, "action_execute", uid_for_ref("action", ex.action_ref)
        ):
            return
        raise PermissionDenied(
            f"user '{principal.user}' lacks permission '{permission}' on '{uid}' "
            f"(an execution of user '{ex.user}')"
        )


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


class _RowProxy:
    """Lets :meth:`Execution.from_row` read a plain dict."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._mapping = row
