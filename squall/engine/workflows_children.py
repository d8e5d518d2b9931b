"""Building a workflow's child executions inside the processing transaction.

The workflow engine applies events and starts the next tasks in one synchronous transaction,
so everything a child needs is read through that transaction's connection: the action and
its compiled parameters (cached a couple of seconds, like :class:`ContentCache`), the pack
configuration, and datastore keys for templates (:class:`SyncKV`, read on demand instead of
the two-pass prefetch the API uses). The same connection serves ``st2kv()`` in Orquesta
expressions (:func:`kv_lookup`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from squall.auth.secrets import Cipher
from squall.auth.service import SYSTEM_USER
from squall.engine.executions import ActionBundle, ExecutionService
from squall.errors import NotFoundError, PermissionDenied, ValidationError
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.store import content, identity
from squall.store import executions as exrepo
from squall.store import kv as kvstore
from squall.store.util import utcnow
from squall.workflow import MISSING

__all__ = ["ActionIndex", "ChildFactory", "RunInfo", "SyncKV", "kv_lookup"]

_S = ExecutionStatus
_ADMIN_ROLES = frozenset({"admin", "system_admin"})


@dataclass(frozen=True)
class RunInfo:
    """What children inherit from their workflow execution (``workflow_executions.meta``)."""

    id: str
    user: str
    action_ref: str
    root_id: str
    parent_id: str | None
    trace_tag: str | None
    context: dict[str, Any]
    notify: dict[str, Any] | None = None
    #: Orquesta's ``notify`` runner parameter: tasks whose executions send notifications.
    notify_tasks: tuple[str, ...] = ()

    @property
    def pack(self) -> str:
        return self.action_ref.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "action_ref": self.action_ref,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "trace_tag": self.trace_tag,
            "context": self.context,
            "notify": self.notify,
            "notify_tasks": list(self.notify_tasks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunInfo:
        return cls(
            id=data["id"],
            user=data["user"],
            action_ref=data["action_ref"],
            root_id=data["root_id"],
            parent_id=data.get("parent_id"),
            trace_tag=data.get("trace_tag"),
            context=dict(data.get("context") or {}),
            notify=data.get("notify"),
            notify_tasks=tuple(data.get("notify_tasks") or ()),
        )

    def child_context(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """A child's context: the task fields, ``workflow_execution``, ``parent`` and the
        caller fields StackStorm carries down (``api_user``, ``source_channel``)."""
        ctx: dict[str, Any] = {
            "user": self.user,
            "workflow_execution": self.id,
            "parent": {**self.context, "execution_id": self.id},
            **extra,
        }
        for key in ("api_user", "source_channel", "trace_context"):
            if key in self.context:
                ctx[key] = self.context[key]
        return ctx


class SyncKV(KVSnapshot):
    """A datastore snapshot that reads missing keys through a connection, on demand."""

    def __init__(
        self,
        conn: Connection,
        *,
        user: str | None,
        decrypt: Callable[[str], str] | None,
        now: datetime | None = None,
    ) -> None:
        super().__init__(user=user, decrypt=decrypt)
        self.conn = conn
        self.now = now or utcnow()

    def get(self, ref: KeyRef) -> KVEntry | None:
        entry = self._entries.get(ref)
        if entry is not None or ref in self._absent:
            return entry
        found = kvstore.get_many(self.conn, [(ref.scope, ref.user or "", ref.name)], now=self.now)
        if found:
            item = next(iter(found.values()))
            entry = self._entries[ref] = KVEntry(item.value, item.secret)
            return entry
        self._absent.add(ref)
        return None


def kv_lookup(
    conn_of: Callable[[], Connection], user: str, cipher: Cipher, is_admin: Callable[[], bool]
) -> Callable[[str, bool], Any]:
    """``st2kv(key, decrypt)`` for Orquesta expressions, as StackStorm resolves it: a
    ``system.`` prefix names a system key, anything else the workflow user's own key.

    Decrypting a system secret needs an admin (as through the API); a user's own secrets may
    always be decrypted.
    """

    def lookup(key: str, decrypt: bool) -> Any:
        if key.startswith("system."):
            scope, name, owner = "system", key[len("system.") :], None
        else:
            scope, name, owner = "user", key, user
        item = kvstore.get(conn_of(), name, scope=scope, user=owner, now=utcnow())
        if item is None:
            return MISSING
        if item.secret and decrypt:
            if scope == "system" and not is_admin():
                raise PermissionDenied(
                    f"user {user!r} may not decrypt system key {name!r} "
                    "(only admins can decrypt system secrets)"
                )
            return cipher.decrypt(item.value)
        return item.value

    return lookup


class ActionIndex:
    """Actions, pack configs and user roles read through a connection, cached briefly."""

    def __init__(self, executions: ExecutionService, *, ttl: float = 2.0) -> None:
        self.executions = executions
        self.ttl = ttl
        self._actions: dict[str, tuple[float, content.ActionRecord | None]] = {}
        self._configs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._roles: dict[str, tuple[float, frozenset[str]]] = {}

    def invalidate(self) -> None:
        self._actions.clear()
        self._configs.clear()

    def action(self, conn: Connection, ref: str) -> tuple[content.ActionRecord, ActionBundle]:
        """The action ``ref`` and its compiled parameters.

        Raises:
            NotFoundError: no such action.
            ValidationError: the action is disabled.
        """
        now = time.monotonic()
        hit = self._actions.get(ref)
        if hit is None or hit[0] < now:
            if len(self._actions) > 4096:
                self._actions.clear()
            hit = self._actions[ref] = (now + self.ttl, content.get_action(conn, ref))
        record = hit[1]
        if record is None:
            raise NotFoundError(f'Action "{ref}" is not registered.')
        if not record.enabled:
            raise ValidationError(f'Action "{ref}" is disabled.')
        return record, self.executions.bundle_from_doc(record.snapshot, record.doc)

    def pack_config(self, conn: Connection, pack: str) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._configs.get(pack)
        if hit is None or hit[0] < now:
            config, _secret_paths = content.get_pack_config(conn, pack)
            hit = self._configs[pack] = (now + self.ttl, dict(config or {}))
        return hit[1]

    def is_admin(self, conn: Connection, user: str) -> bool:
        """Whether ``user`` holds an admin role (the system user always does)."""
        if user == SYSTEM_USER:
            return True
        now = time.monotonic()
        hit = self._roles.get(user)
        if hit is None or hit[0] < now:
            record = identity.get_user(conn, user)
            roles = frozenset(getattr(record, "roles", None) or ())
            hit = self._roles[user] = (now + self.ttl, roles)
        return bool(hit[1] & _ADMIN_ROLES)


class ChildFactory:
    """Validates and builds child execution rows (not written: the caller batches them)."""

    def __init__(
        self,
        executions: ExecutionService,
        cipher: Cipher,
        actions: ActionIndex,
        *,
        skip_scheduler: Callable[[str], bool] | None = None,
    ) -> None:
        self.executions = executions
        self.cipher = cipher
        self.actions = actions
        #: Whether an action has no concurrency policy: its children are written
        #: ``scheduled`` directly (one hand-off less), as the executions API does.
        self.skip_scheduler = skip_scheduler

    def build(
        self,
        conn: Connection,
        run: RunInfo,
        *,
        action_ref: str,
        parameters: Mapping[str, Any] | None,
        context: Mapping[str, Any],
        now: datetime,
        delay: float | None = None,
        notify: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The row of a child execution, its parameters validated as a request's are.

        Raises:
            DomainError: the action does not exist or is disabled, or the parameters do not
                resolve (the caller fails the task with the message).
        """
        if not isinstance(action_ref, str) or not action_ref:
            raise ValidationError(f"The action reference {action_ref!r} is not a string.")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ValidationError(
                f"The input of action {action_ref} is not a mapping: {parameters!r}"
            )
        record, bundle = self.actions.action(conn, action_ref)
        ctx = run.child_context(context)
        ctx.setdefault("pack", bundle.pack)
        params = dict(parameters or {})
        render_context = {
            "action_context": ctx,
            "config_context": self.actions.pack_config(conn, bundle.pack),
        }
        kv = SyncKV(conn, user=run.user, decrypt=self.cipher.decrypt, now=now)
        bundle.compiled.resolve(params, context=render_context, kv=kv)
        not_before = now + timedelta(seconds=delay) if delay else None
        status: str = _S.DELAYED if not_before else _S.REQUESTED
        if status == _S.REQUESTED and self.skip_scheduler and self.skip_scheduler(record.ref):
            status = _S.SCHEDULED
        return exrepo.new_row(
            id=new_id(),
            action_ref=record.ref,
            action_snapshot=record.snapshot,
            runner_type=bundle.runner.name,
            parameters=params,
            context=ctx,
            user=run.user,
            now=now,
            notify=notify,
            parent_id=run.id,
            root_id=run.root_id,
            trace_tag=run.trace_tag,
            not_before=not_before,
            status=status,
        )
