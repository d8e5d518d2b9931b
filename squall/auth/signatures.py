"""Webhook signature verification (pure): GitHub, Standard Webhooks and Slack.

Every comparison is constant-time. Timestamped schemes (Standard Webhooks, Slack) reject
requests outside a tolerance (5 minutes) so captured requests cannot be replayed later;
Standard Webhooks deliveries also carry an id that the caller records to refuse replays
inside the tolerance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from squall.errors import AuthError

__all__ = ["SCHEMES", "TOLERANCE_SECONDS", "Verified", "verify_signature"]

SCHEMES = ("github", "standard", "slack")
TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class Verified:
    """A valid signature; ``delivery_id`` must be recorded once (replay protection)."""

    scheme: str
    delivery_id: str | None = None


def _hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _timestamp(raw: str | None, now: float, header: str) -> int:
    if not raw:
        raise AuthError(f"missing {header} header")
    try:
        ts = int(raw)
    except ValueError:
        raise AuthError(f"invalid {header} header") from None
    if abs(now - ts) > TOLERANCE_SECONDS:
        raise AuthError(
            f"{header} is more than {TOLERANCE_SECONDS // 60} minutes from the server's clock",
            hint="a stale or replayed request, or a sender with a wrong clock",
        )
    return ts


def _github(secret: str, headers: Mapping[str, str], body: bytes) -> Verified:
    given = headers.get("x-hub-signature-256", "")
    if not given.startswith("sha256="):
        raise AuthError("missing or malformed X-Hub-Signature-256 header")
    expected = "sha256=" + _hmac_hex(secret.encode(), body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("invalid webhook signature")
    # GitHub signs no timestamp and re-deliveries reuse their id: nothing to record.
    return Verified("github")


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :])
        except (binascii.Error, ValueError):
            raise AuthError("the webhook secret is not valid base64 after 'whsec_'") from None
    return secret.encode()


def _standard(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
    msg_id = headers.get("webhook-id", "")
    if not msg_id:
        raise AuthError("missing webhook-id header")
    ts = _timestamp(headers.get("webhook-timestamp"), now, "webhook-timestamp")
    signed = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(_standard_key(secret), signed, hashlib.sha256).digest())
    candidates = headers.get("webhook-signature", "").split()
    ok = False
    for candidate in candidates:
        version, _, sig = candidate.partition(",")
        # Compare every candidate (no early exit) so timing does not reveal which matched.
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            ok = True
    if not ok:
        raise AuthError("invalid webhook signature")
    return Verified("standard", f"standard:{msg_id}")


def _slack(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
    raw_ts = headers.get("x-slack-request-timestamp")
    ts = _timestamp(raw_ts, now, "X-Slack-Request-Timestamp")
    given = headers.get("x-slack-signature", "")
    expected = "v0=" + _hmac_hex(secret.encode(), f"v0:{ts}:".encode() + body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("invalid webhook signature")
    return Verified("slack")


def verify_signature(
    scheme: str, secret: str, headers: Mapping[str, str], body: bytes, *, now: float
) -> Verified:
    """Check a request's signature; :class:`AuthError` (401) when it is missing or wrong.

    ``headers`` must have lower-case names; ``body`` is the raw request body.
    """
    if scheme == "github":
        return _github(secret, headers, body)
    if scheme == "standard":
        return _standard(secret, headers, body, now)
    if scheme == "slack":
        return _slack(secret, headers, body, now)
    raise AuthError(f"unknown signature scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
