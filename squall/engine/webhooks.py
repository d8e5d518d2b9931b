"""Webhooks in: find the webhook's rules, authenticate (token, API key or signature), store
the trigger instance — committed before the caller answers 202.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from squall.auth.secrets import Cipher
from squall.auth.signatures import Verified, verify_signature
from squall.engine.batching import RowBatcher
from squall.engine.triggers import TriggerService
from squall.errors import AuthError, ConflictError, NotFoundError, ValidationError
from squall.rules.rule import WEBHOOK_TRIGGER
from squall.store import content, events
from squall.store import kv as kvstore
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["AUTH_HEADERS", "HookConfig", "WebhookService", "parse_body"]

#: Headers never stored in a trigger instance (credentials).
AUTH_HEADERS = frozenset(
    {
        "x-auth-token",
        "st2-api-key",
        "authorization",
        "cookie",
        "proxy-authorization",
    }
)


@dataclass
class HookConfig:
    url: str
    #: (scheme, datastore key of the secret) pairs from the rules on this URL.
    signatures: list[tuple[str, str]] = field(default_factory=list)


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON or form bodies to data; other text is kept as a string."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not raw:
        return {}
    if kind in ("", "application/json") or kind.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(
                f"the body is not valid JSON: {exc}",
                hint="send JSON with Content-Type: application/json, or a form",
            ) from None
    if kind == "application/x-www-form-urlencoded":
        # `curl -d '{...}'` sends JSON labelled as a form: accept what is plainly JSON.
        stripped = raw.lstrip()
        if stripped[:1] in (b"{", b"["):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ValidationError("the form body is not UTF-8") from None
        pairs = urllib.parse.parse_qs(text, keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}
    if kind.startswith("text/"):
        return raw.decode(errors="replace")
    raise ValidationError(
        f"unsupported Content-Type {kind!r}",
        hint="webhooks accept application/json, application/x-www-form-urlencoded or text/*",
    )


def _hook_configs(docs: list[dict[str, Any]]) -> dict[str, HookConfig]:
    hooks: dict[str, HookConfig] = {}
    for doc in docs:
        trigger = doc.get("trigger") or {}
        if trigger.get("type") != WEBHOOK_TRIGGER:
            continue
        params = trigger.get("parameters") or {}
        url = str(params.get("url", "")).strip("/")
        cfg = hooks.setdefault(url, HookConfig(url))
        sig = params.get("signature")
        if isinstance(sig, Mapping) and sig.get("scheme") and sig.get("secret_key"):
            pair = (str(sig["scheme"]), str(sig["secret_key"]))
            if pair not in cfg.signatures:
                cfg.signatures.append(pair)
    return hooks


class WebhookService:
    """Receives webhooks for the ``api`` role."""

    def __init__(self, db: Database, triggers: TriggerService, cipher: Cipher) -> None:
        self.db = db
        # On PostgreSQL a statement per webhook costs a round trip: insert bursts together.
        # (SQLite's single writer already group-commits on its own thread.)
        self._rows = None if db.is_sqlite else RowBatcher(db, events.insert_instances)
        self.triggers = triggers
        self.cipher = cipher
        self._hooks: dict[str, HookConfig] = {}
        self._version = -1
        self._checked = 0.0
        self._lock = asyncio.Lock()

    async def hooks(self) -> dict[str, HookConfig]:
        """Webhook URLs that rules listen on (re-read when rules change)."""
        if time.monotonic() - self._checked < 1.0:
            return self._hooks
        async with self._lock:
            if time.monotonic() - self._checked < 1.0:
                return self._hooks  # another request refreshed while we waited
            version = await self.db.read(lambda conn: events.read_version(conn, "rules"))
            if version != self._version:
                docs = await self.db.read(lambda conn: content.list_content(conn, "rules"))
                self._hooks, self._version = _hook_configs(docs), version
            self._checked = time.monotonic()
        return self._hooks

    def invalidate(self) -> None:
        self._checked = 0.0

    async def config(self, hook: str) -> HookConfig:
        cfg = (await self.hooks()).get(hook.strip("/"))
        if cfg is None:
            raise NotFoundError(
                f"no rule listens on webhook {hook!r}",
                hint="create a rule with trigger core.st2.webhook and parameters {url: ...}",
            )
        return cfg

    async def verify(
        self, cfg: HookConfig, headers: Mapping[str, str], body: bytes
    ) -> Verified | None:
        """The first signature scheme of the hook that verifies, or None if none is set up.

        Raises :class:`AuthError` when schemes are set up and none verifies.
        """
        if not cfg.signatures:
            return None
        errors = []
        now_ts = time.time()
        for scheme, secret_key in cfg.signatures:
            secret = await self._secret(secret_key)
            if secret is None:
                errors.append(f"{scheme}: secret key {secret_key!r} is not in the datastore")
                continue
            try:
                return verify_signature(scheme, secret, headers, body, now=now_ts)
            except AuthError as exc:
                errors.append(f"{scheme}: {exc.message}")
        raise AuthError("webhook signature check failed: " + "; ".join(errors))

    async def _secret(self, key: str) -> str | None:
        item = await self.db.read(
            lambda conn: kvstore.get(conn, key, scope="system", user=None, now=utcnow())
        )
        if item is None:
            return None
        return self.cipher.decrypt(item.value) if item.secret else item.value

    async def receive(
        self,
        hook: str,
        *,
        headers: Mapping[str, str],
        body: Any,
        verified: Verified | None,
    ) -> str:
        """Store the trigger instance for ``hook``; returns its id once committed."""
        clean = {k: v for k, v in headers.items() if k.lower() not in AUTH_HEADERS}
        payload = {"headers": clean, "body": body}
        row = self.triggers.instance_row(
            WEBHOOK_TRIGGER,
            payload,
            now=utcnow(),
            parameters={"url": hook.strip("/")},
            trace_tag=headers.get("st2-trace-tag"),
        )
        delivery = verified.delivery_id if verified else None
        now = utcnow()

        def _write(conn: Connection) -> None:
            if delivery and not events.record_delivery(
                conn, delivery_id=delivery, hook=hook, now=now
            ):
                raise ConflictError(f"delivery {delivery} was already received (a replay)")
            events.insert_instances(conn, [row])

        if delivery is None and self._rows is not None:
            await self._rows.add(row)  # shares one INSERT with concurrent webhooks
        else:
            await self.db.write(_write, batch=True)
        self.triggers.wakeups.signal("rules")
        return str(row["id"])
