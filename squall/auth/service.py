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

from squall.errors import AuthError, ConflictError, NotFoundError, ValidationError
from squall.model.ids import new_id
from squall.store import identity
from squall.store.db import Database
from squall.store.util import utcnow

__all__ = ["AuthService", "Principal", "hash_secret"]

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
    #: How they authenticated: ``token``, ``api_key`` or ``internal``.
    method: str = "token"
    token_expiry: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return bool({"admin", "system_admin"} & set(self.roles))


class AuthService:
    """Issues and checks credentials."""

    #: Seconds a positive credential check is cached in this process. Revocation through
    #: this process takes effect at once; through another process within this time.
    CACHE_SECONDS = 5.0

    def __init__(self, db: Database, *, token_ttl: int, token_max_ttl: int) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.token_max_ttl = token_max_ttl
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

    # --- users ------------------------------------------------------------------------------

    @staticmethod
    def _check_password_strength(password: str) -> None:
        if len(password) < 8:
            raise ValidationError("the password is too short", hint="use at least 8 characters")

    async def add_user(self, name: str, password: str, *, roles: list[str] | None = None) -> None:
        if not name or any(ch.isspace() for ch in name):
            raise ValidationError(f"invalid user name {name!r}", hint="no spaces, not empty")
        self._check_password_strength(password)
        pw_hash = _hasher.hash(password)
        now = utcnow()

        def _create(conn: Connection) -> None:
            if identity.get_user(conn, name) is not None:
                raise ConflictError(f"user {name!r} already exists")
            identity.create_user(conn, name, password_hash=pw_hash, roles=roles or [], now=now)

        await self.db.write(_create)

    async def set_password(self, name: str, password: str) -> None:
        self._check_password_strength(password)
        pw_hash = _hasher.hash(password)
        now = utcnow()

        def _update(conn: Connection) -> bool:
            return identity.update_user(conn, name, now=now, password_hash=pw_hash)

        if not await self.db.write(_update):
            raise NotFoundError(f"user {name!r} does not exist")

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

    async def revoke_token(self, token: str) -> bool:
        self._cache.pop(hash_secret(token), None)

        def _revoke(conn: Connection) -> bool:
            return identity.revoke_token(conn, hash_secret(token))

        return await self.db.write(_revoke)

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

    @staticmethod
    def _roles(conn: Connection, user: str) -> tuple[str, ...]:
        record = identity.get_user(conn, user)
        if record is None:
            return ()
        return tuple(record.roles)

    async def check_token(self, token: str) -> Principal:
        digest = hash_secret(token)
        cached = self._cached(digest)
        if cached is not None:
            return cached

        def _read(conn: Connection) -> Any:
            record = identity.find_token(conn, digest)
            if record is None or record.revoked:
                raise AuthError("invalid or revoked token", hint="log in again")
            if record.expiry <= utcnow():
                raise AuthError("the token has expired", hint="log in again")
            roles = self._roles(conn, record.user)
            return record, roles

        record, roles = await self.db.read(_read)
        principal = Principal(record.user, roles, "token", record.expiry)
        self._remember(digest, principal)
        return principal

    # --- API keys ---------------------------------------------------------------------------

    async def create_api_key(
        self, user: str, *, metadata: dict[str, str] | None = None
    ) -> tuple[str, identity.ApiKey]:
        key = secrets.token_urlsafe(36)
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

    async def check_api_key(self, key: str) -> Principal:
        digest = hash_secret(key)
        cached = self._cached(digest)
        if cached is not None:
            return cached

        def _read(conn: Connection) -> Any:
            record = identity.find_api_key(conn, digest)
            if record is None or not record.enabled:
                raise AuthError("invalid or disabled API key")
            roles = self._roles(conn, record.user)
            return record, roles

        record, roles = await self.db.read(_read)
        principal = Principal(record.user, roles, "api_key")
        self._remember(digest, principal)
        return principal
