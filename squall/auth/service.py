"""Authentication: users with Argon2 password hashes, bearer tokens, API keys.

Tokens and API keys are random strings shown once; only their SHA-256 is stored, so a
database leak does not leak credentials. Execution tokens (``ST2_ACTION_AUTH_TOKEN``) are
ordinary tokens that expire with the execution's timeout.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

from squall.auth.rbac import ADMIN_ROLES, Grant
from squall.auth.rbac_service import RbacService
from squall.errors import AuthError, ConflictError, NotFoundError, ValidationError
from squall.model.ids import new_id
from squall.store import identity
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["SYSTEM_USER", "AuthService", "Principal", "hash_secret"]

_hasher = PasswordHasher()

#: The identity rule-triggered and internal executions run as (StackStorm's system user).
SYSTEM_USER = "stanley"


def hash_secret(value: str) -> str:
    """SHA-256 hex of a token or API key (high-entropy secrets need no slow hash)."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    user: str
    roles: tuple[str, ...] = ()
    #: How they authenticated: ``token``, ``api_key``, ``proxy`` or ``internal``.
    method: str = "token"
    token_expiry: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: The permission grants of the principal's custom RBAC roles.
    grants: tuple[Grant, ...] = ()

    @property
    def is_admin(self) -> bool:
        return bool(ADMIN_ROLES.intersection(self.roles))

    @property
    def is_system_admin(self) -> bool:
        return "system_admin" in self.roles


class AuthService:
    """Issues and checks credentials, and manages users, tokens and API keys.

    Args:
        db: The database.
        token_ttl: Default token lifetime (seconds).
        token_max_ttl: The longest lifetime a client may ask for.
        rbac: Where custom roles and file assignments are read (built on ``db`` if omitted).
    """

    #: Seconds a positive credential check is cached in this process. Revocation through
    #: this process takes effect at once; through another process within this time.
    CACHE_SECONDS = 5.0

    def __init__(
        self,
        db: Database,
        *,
        token_ttl: int,
        token_max_ttl: int,
        rbac: RbacService | None = None,
    ) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.token_max_ttl = token_max_ttl
        self.rbac = rbac or RbacService(db)
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._roles_cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    def _cached(self, digest: str) -> Principal | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        until, principal = hit
        now = time.monotonic()
        if until < now or (principal.token_expiry and principal.token_expiry <= utcnow()):
            self._cache.pop(digest, None)
            return None
        return principal

    def _remember(self, digest: str, principal: Principal) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + self.CACHE_SECONDS, principal)

    def forget(self) -> None:
        """Drop cached credentials and roles (after users, roles or keys change)."""
        self._cache.clear()
        self._roles_cache.clear()

    # --- users ------------------------------------------------------------------------------

    @staticmethod
    def _check_password_strength(password: str) -> None:
        if len(password) < 8:
            raise ValidationError("the password is too short", hint="use at least 8 characters")

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or len(name) > 256 or any(ch.isspace() or ch in ":/" for ch in name):
            raise ValidationError(
                f"invalid user name {name!r}", hint="1-256 characters, no spaces, ':' or '/'"
            )
        if name == SYSTEM_USER:
            raise ValidationError(f"{SYSTEM_USER!r} is the system user and cannot log in")

    async def add_user(self, name: str, password: str, *, roles: list[str] | None = None) -> None:
        self._check_name(name)
        self._check_password_strength(password)
        pw_hash = _hasher.hash(password)
        now = utcnow()

        def _create(conn: Connection) -> None:
            if identity.get_user(conn, name) is not None:
                raise ConflictError(f"user {name!r} already exists")
            identity.create_user(conn, name, password_hash=pw_hash, roles=roles or [], now=now)

        await self.db.write(_create)

    async def get_user(self, name: str) -> identity.User:
        user = await self.db.read(lambda conn: identity.get_user(conn, name))
        if user is None:
            raise NotFoundError(f"user {name!r} does not exist")
        return user

    async def list_users(self) -> list[identity.User]:
        return await self.db.read(identity.list_users)

    async def update_user(
        self, name: str, *, roles: list[str] | None = None, enabled: bool | None = None
    ) -> identity.User:
        """Change a user's local roles or enabled flag (disabling revokes their tokens)."""
        values: dict[str, Any] = {}
        if roles is not None:
            values["roles"] = list(dict.fromkeys(roles))
        if enabled is not None:
            values["enabled"] = enabled
        now = utcnow()

        def _update(conn: Connection) -> identity.User | None:
            if values and not identity.update_user(conn, name, now=now, **values):
                return None
            if enabled is False:
                identity.revoke_user_tokens(conn, name)
            return identity.get_user(conn, name)

        user = await self.db.write(_update)
        if user is None:
            raise NotFoundError(f"user {name!r} does not exist")
        self.forget()
        return user

    async def delete_user(self, name: str) -> None:
        """Delete a user with their tokens and API keys."""
        if not await self.db.write(lambda conn: identity.delete_user(conn, name)):
            raise NotFoundError(f"user {name!r} does not exist")
        self.forget()

    async def set_password(self, name: str, password: str, *, revoke: bool = True) -> None:
        """Set a new password; by default every token of the user is revoked."""
        self._check_password_strength(password)
        pw_hash = _hasher.hash(password)
        now = utcnow()

        def _update(conn: Connection) -> bool:
            if not identity.update_user(conn, name, now=now, password_hash=pw_hash):
                return False
            if revoke:
                identity.revoke_user_tokens(conn, name)
            return True

        if not await self.db.write(_update):
            raise NotFoundError(f"user {name!r} does not exist")
        self.forget()

    async def verify_password(self, name: str, password: str) -> identity.User:
        """Return the user if ``password`` is right; :class:`AuthError` otherwise."""

        user = await self.db.read(lambda conn: identity.get_user(conn, name))
        if user is None or not user.enabled or not user.password_hash:
            # Hash anyway so a missing user is not faster to reject than a wrong password.
            _hasher.hash(password)
            raise AuthError("invalid username or password")
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise AuthError("invalid username or password") from None
        return user

    # --- roles ------------------------------------------------------------------------------

    async def roles(self, user: str) -> tuple[str, ...]:
        """The roles of ``user`` (cached briefly, like credentials)."""
        now = time.monotonic()
        hit = self._roles_cache.get(user)
        if hit is not None and hit[0] > now:
            return hit[1]
        roles = await self.db.read(lambda conn: self._roles(conn, user))
        if len(self._roles_cache) > 10_000:
            self._roles_cache.clear()
        self._roles_cache[user] = (now + self.CACHE_SECONDS, roles)
        return roles

    def _roles(self, conn: Connection, user: str) -> tuple[str, ...]:
        if user == SYSTEM_USER:
            return ("system_admin",)
        record = identity.get_user(conn, user)
        local = record.roles if record is not None else []
        return self.rbac.roles_of(conn, user, local)

    def _principal(
        self, conn: Connection, user: str, method: str, expiry: datetime | None = None
    ) -> Principal:
        """The principal of ``user`` with its roles and grants; disabled users are refused."""
        record = identity.get_user(conn, user)
        if record is not None and not record.enabled:
            raise AuthError(f"user {user!r} is disabled")
        roles = self._roles(conn, user)
        return Principal(user, roles, method, expiry, grants=self.rbac.grants_of(conn, roles))

    async def principal_for(self, user: str, *, method: str = "internal") -> Principal:
        """The principal ``user`` acts as (proxy authentication, actions, workflows);
        cached briefly, like credentials."""
        key = f"principal:{method}:{user}"
        cached = self._cached(key)
        if cached is not None:
            return cached
        principal = await self.db.read(lambda conn: self._principal(conn, user, method))
        self._remember(key, principal)
        return principal

    # --- tokens -----------------------------------------------------------------------------

    async def issue_token(
        self, user: str, *, ttl: int | None = None, metadata: dict[str, str] | None = None
    ) -> tuple[str, identity.Token]:
        """Create a token for ``user``; returns (the token, its record)."""
        if ttl is not None:
            if ttl <= 0:
                raise ValidationError("ttl must be a positive number of seconds")
            if ttl > self.token_max_ttl:
                raise ValidationError(
                    f"requested ttl {ttl} exceeds the maximum {self.token_max_ttl}",
                    hint="ask for a shorter ttl",
                )
        lifetime = ttl or self.token_ttl
        token = secrets.token_hex(16)
        now = utcnow()

        def _create(conn: Connection) -> identity.Token:
            return identity.create_token(
                conn,
                id=new_id(),
                token_hash=hash_secret(token),
                user=user,
                expiry=now + timedelta(seconds=lifetime),
                now=now,
                doc=metadata or {},
            )

        return token, await self.db.write(_create)

    async def token_metadata(self, token: str) -> dict[str, Any]:
        """The metadata a valid token was issued with (``{"execution_id": …}`` for an
        execution's token); empty for an unknown, revoked or expired token."""

        def _read(conn: Connection) -> dict[str, Any]:
            record = identity.find_token(conn, hash_secret(token))
            if record is None or record.revoked or record.expiry <= utcnow():
                return {}
            return dict(record.doc or {})

        return await self.db.read(_read)

    async def revoke_token(self, token: str) -> bool:
        self._cache.pop(hash_secret(token), None)

        def _revoke(conn: Connection) -> bool:
            return identity.revoke_token(conn, hash_secret(token))

        return await self.db.write(_revoke)

    async def revoke_token_id(self, principal: Principal, token_id: str) -> None:
        """Revoke the token ``token_id``: its owner or an admin may.

        Raises:
            NotFoundError: no such token, or it belongs to someone else (not revealed).
        """

        def _revoke(conn: Connection) -> bool:
            record = identity.get_token(conn, token_id)
            if record is None or (record.user != principal.user and not principal.is_admin):
                return False
            return identity.revoke_token_id(conn, token_id)

        if not await self.db.write(_revoke):
            raise NotFoundError(f"token {token_id!r} not found")
        self._cache.clear()

    async def check_token(self, token: str) -> Principal:
        digest = hash_secret(token)
        cached = self._cached(digest)
        if cached is not None:
            return cached

        def _read(conn: Connection) -> Principal:
            record = identity.find_token(conn, digest)
            if record is None or record.revoked:
                raise AuthError("invalid or revoked token", hint="log in again")
            if record.expiry <= utcnow():
                raise AuthError("the token has expired", hint="log in again")
            return self._principal(conn, record.user, "token", record.expiry)

        principal = await self.db.read(_read)
        self._remember(digest, principal)
        return principal

    # --- API keys ---------------------------------------------------------------------------

    async def create_api_key(
        self, user: str, *, metadata: dict[str, str] | None = None
    ) -> tuple[str, identity.ApiKey]:
        """A new API key for ``user``: (the key, shown only now; its record)."""
        # Hex: 256 bits, and never a leading "-" that command lines would take for an option.
        key = secrets.token_hex(32)
        now = utcnow()

        def _create(conn: Connection) -> identity.ApiKey:
            return identity.create_api_key(
                conn,
                id=new_id(),
                key_hash=hash_secret(key),
                user=user,
                now=now,
                doc={"metadata": metadata or {}},
            )

        return key, await self.db.write(_create)

    async def get_api_key(self, id_or_key: str) -> identity.ApiKey:
        """An API key by id, or by the key itself (StackStorm accepts both)."""

        def _read(conn: Connection) -> identity.ApiKey | None:
            return identity.get_api_key(conn, id_or_key) or identity.find_api_key(
                conn, hash_secret(id_or_key)
            )

        record = await self.db.read(_read)
        if record is None:
            raise NotFoundError("API key not found")
        return record

    async def list_api_keys(self, *, user: str | None = None) -> list[identity.ApiKey]:
        return await self.db.read(lambda conn: identity.list_api_keys(conn, user=user))

    async def set_api_key_enabled(self, key_id: str, enabled: bool) -> identity.ApiKey:
        def _update(conn: Connection) -> identity.ApiKey | None:
            identity.set_api_key_enabled(conn, key_id, enabled)
            return identity.get_api_key(conn, key_id)

        record = await self.db.write(_update)
        if record is None:
            raise NotFoundError("API key not found")
        self._cache.clear()
        return record

    async def delete_api_key(self, key_id: str) -> None:
        if not await self.db.write(lambda conn: identity.delete_api_key(conn, key_id)):
            raise NotFoundError("API key not found")
        self._cache.clear()

    async def check_api_key(self, key: str) -> Principal:
        digest = hash_secret(key)
        cached = self._cached(digest)
        if cached is not None:
            return cached

        def _read(conn: Connection) -> Principal:
            record = identity.find_api_key(conn, digest)
            if record is None or not record.enabled:
                raise AuthError("invalid or disabled API key")
            return self._principal(conn, record.user, "api_key")

        principal = await self.db.read(_read)
        self._remember(digest, principal)
        return principal
