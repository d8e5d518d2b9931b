"""The datastore service: key-value access with encryption and ownership rules.

Rules (StackStorm's, with its known leaks closed):

* ``system`` keys are shared; ``user`` keys belong to one user and are only visible to that
  user — an admin may name another user explicitly (``user=``), nobody else can
  (CVE-2018-20345).
* Secrets are stored encrypted and returned encrypted unless ``decrypt`` is asked for, which
  only admins and the key's owner may do (st2#6379: no decrypting through another identity).
* RBAC: ``system`` keys need ``key_value_pair_view`` / ``_set`` / ``_delete`` on
  ``key_value_pair:system:<name>`` (observers view, admins do everything); listing shows only
  the system keys the caller may view. A user's own keys need no grant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from squall.auth.rbac import has_permission, list_scope, require
from squall.auth.secrets import Cipher
from squall.auth.service import Principal
from squall.engine.wakeup import Wakeups
from squall.errors import NotFoundError, PermissionDenied, ValidationError
from squall.expr.kv import KeyRef, KVEntry
from squall.store import kv as kvstore
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["ChangeHook", "DatastoreService", "KeyView"]

ChangeHook = Callable[[Connection, str, "kvstore.KeyValue | None", "kvstore.KeyValue | None"], None]


@dataclass(frozen=True)
class KeyView:
    """A key as the API shows it (StackStorm's KeyValuePair shape)."""

    name: str
    value: str
    secret: bool
    encrypted: bool
    scope: str
    user: str | None
    expire_timestamp: datetime | None
    ttl: int | None

    def as_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": f"{self.scope}:{self.user or ''}:{self.name}",
            "uid": f"key_value_pair:{self.scope}:{self.name}",
            "name": self.name,
            "value": self.value,
            "secret": self.secret,
            "encrypted": self.encrypted,
            "scope": "st2kv.user" if self.scope == "user" else "st2kv.system",
        }
        if self.user:
            doc["user"] = self.user
        if self.expire_timestamp is not None:
            doc["expire_timestamp"] = self.expire_timestamp.isoformat().replace("+00:00", "Z")
        if self.ttl is not None:
            doc["ttl"] = self.ttl
        return doc


class DatastoreService:
    """Reads and writes keys on behalf of a principal."""

    def __init__(self, db: Database, cipher: Cipher, wakeups: Wakeups | None = None) -> None:
        self.db = db
        self.cipher = cipher
        self.wakeups = wakeups
        #: Called in the writing transaction: ``hook(conn, "set"|"delete", new, old)``.
        self.change_hooks: list[ChangeHook] = []

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _target_user(principal: Principal, scope: str, user: str | None) -> str | None:
        if scope != "user":
            return None
        if user and user != principal.user:
            if not principal.is_admin:
                raise PermissionDenied(
                    f"user {principal.user!r} may not access keys of user {user!r}",
                    hint="only admins can name another user",
                )
            return user
        return principal.user

    def _view(self, item: kvstore.KeyValue, *, decrypt: bool, now: datetime) -> KeyView:
        value = item.value
        encrypted = item.secret
        if item.secret and decrypt:
            value = self.cipher.decrypt(item.value)
            encrypted = False
        ttl = None
        if item.expire_at is not None:
            ttl = max(0, int((item.expire_at - now).total_seconds()))
        return KeyView(
            name=item.name,
            value=value,
            secret=item.secret,
            encrypted=encrypted,
            scope=item.scope,
            user=item.owner or None,
            expire_timestamp=item.expire_at,
            ttl=ttl,
        )

    @staticmethod
    def _check_system(principal: Principal, permission: str, scope: str, name: str) -> None:
        if scope == "system":
            require(principal, permission, f"key_value_pair:system:{name}")

    @staticmethod
    def _check_decrypt(principal: Principal, item: kvstore.KeyValue) -> None:
        if not item.secret or principal.is_admin:
            return
        if item.scope == "user" and item.owner == principal.user:
            return
        raise PermissionDenied(
            f"user {principal.user!r} may not decrypt {item.scope} key {item.name!r}",
            hint="only admins and the key's owner can decrypt a secret",
        )

    # --- operations -------------------------------------------------------------------------

    async def get(
        self,
        principal: Principal,
        name: str,
        *,
        scope: str | None = None,
        user: str | None = None,
        decrypt: bool = False,
    ) -> KeyView:
        scope_n = kvstore.normalize_scope(scope)
        owner = self._target_user(principal, scope_n, user)
        self._check_system(principal, "key_value_pair_view", scope_n, name)
        now = utcnow()

        item = await self.db.read(
            lambda conn: kvstore.get(conn, name, scope=scope_n, user=owner, now=now)
        )
        if item is None:
            raise NotFoundError(f"key {name!r} not found in scope {scope_n}")
        if decrypt:
            self._check_decrypt(principal, item)
        return self._view(item, decrypt=decrypt, now=now)

    async def list(
        self,
        principal: Principal,
        *,
        scope: str | None = None,
        user: str | None = None,
        prefix: str | None = None,
        decrypt: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[KeyView]:
        """List keys. ``scope`` ``all`` (or none) means system keys plus the caller's own."""
        scope_n = None if scope in (None, "", "all") else kvstore.normalize_scope(scope)
        owner = self._target_user(principal, "user", user)
        now = utcnow()
        access = list_scope(principal, "key_value_pair")
        # Without a global key_value_pair_list, system keys are filtered one by one, so the
        # page is cut after filtering (datastores are small).
        filtered = scope_n != "user" and (access is None or not access.everything)

        def _read(conn: Connection) -> Any:
            if filtered:
                return kvstore.list_keys(
                    conn,
                    scope=scope_n,
                    user=owner,
                    prefix=prefix,
                    now=now,
                    limit=1_000_000,
                    offset=0,
                )
            return kvstore.list_keys(
                conn, scope=scope_n, user=owner, prefix=prefix, now=now, limit=limit, offset=offset
            )

        items = await self.db.read(_read)
        if filtered:
            items = [
                i
                for i in items
                if i.scope != "system"
                or has_permission(
                    principal, "key_value_pair_view", f"key_value_pair:system:{i.name}"
                )
            ][offset : offset + limit]
        if decrypt:
            for item in items:
                self._check_decrypt(principal, item)
        return [self._view(i, decrypt=decrypt, now=now) for i in items]

    async def set(
        self,
        principal: Principal,
        name: str,
        value: Any,
        *,
        scope: str | None = None,
        user: str | None = None,
        secret: bool = False,
        ttl: int | None = None,
        preencrypted: bool = False,
    ) -> KeyView:
        if not isinstance(value, str):
            raise ValidationError(
                f"the value of key {name!r} must be a string, got {type(value).__name__}",
                hint="serialize structured values as JSON first",
            )
        scope_n = kvstore.normalize_scope(scope)
        owner = self._target_user(principal, scope_n, user)
        self._check_system(principal, "key_value_pair_set", scope_n, name)
        if preencrypted:
            self.cipher.decrypt(value)  # validates the ciphertext
            stored = value
            secret = True
        else:
            stored = self.cipher.encrypt(value) if secret else value
        now = utcnow()

        def _set(conn: Connection) -> tuple[kvstore.KeyValue, kvstore.KeyValue | None]:
            item, previous = kvstore.set_value(
                conn, name, stored, scope=scope_n, user=owner, secret=secret, ttl=ttl, now=now
            )
            for hook in self.change_hooks:
                hook(conn, "set", item, previous)
            return item, previous

        item, _previous = await self.db.write(_set)
        return self._view(item, decrypt=False, now=now)

    async def delete(
        self,
        principal: Principal,
        name: str,
        *,
        scope: str | None = None,
        user: str | None = None,
    ) -> None:
        scope_n = kvstore.normalize_scope(scope)
        owner = self._target_user(principal, scope_n, user)
        self._check_system(principal, "key_value_pair_delete", scope_n, name)
        now = utcnow()

        def _delete(conn: Connection) -> kvstore.KeyValue | None:
            previous = kvstore.delete(conn, name, scope=scope_n, user=owner, now=now)
            if previous is not None:
                for hook in self.change_hooks:
                    hook(conn, "delete", None, previous)
            return previous

        if await self.db.write(_delete) is None:
            raise NotFoundError(f"key {name!r} not found in scope {scope_n}")

    # --- template support -------------------------------------------------------------------

    async def fetch(self, refs: AbstractSet[KeyRef]) -> Mapping[KeyRef, KVEntry]:
        """Fetch keys for template rendering (the second pass of ``render_with_kv``)."""
        wanted = [(r.scope, r.user or "", r.name) for r in refs]

        found = await self.db.read(lambda conn: kvstore.get_many(conn, wanted, now=utcnow()))
        out: dict[KeyRef, KVEntry] = {}
        for (scope, owner, name), item in found.items():
            out[KeyRef(scope, owner or None, name)] = KVEntry(item.value, item.secret)
        return out
