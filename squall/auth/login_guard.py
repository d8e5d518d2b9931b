"""Login protection: throttling failed logins, and trusting an authenticating proxy.

Throttling is kept in memory, per process: with several API processes an attacker gets the
allowance once per process, and a restart forgets it. That bounds online guessing (Argon2
already makes each guess slow) without a shared store.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from squall.errors import ValidationError

__all__ = ["LoginThrottle", "ProxyTrust"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class LoginThrottle:
    """At most ``max_failures`` failed logins per key (user, client address) per ``window``.

    Args:
        max_failures: Failures allowed in the window; 0 disables throttling.
        window: Length of the sliding window, in seconds.
        clock: Monotonic time source (tests pass a fake one).
    """

    #: Keys remembered at most (oldest dropped beyond that), so a flood of distinct user
    #: names cannot exhaust memory.
    MAX_KEYS = 100_000

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        stamps = self._failures.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
            return None
        return stamps

    def retry_after(self, keys: Iterable[str]) -> int | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        if self.max_failures <= 0:
            return None
        now = self._clock()
        wait = 0.0
        for key in keys:
            stamps = self._recent(key, now)
            if stamps is not None and len(stamps) >= self.max_failures:
                # Allowed again when enough old failures leave the window.
                oldest_blocking = stamps[len(stamps) - self.max_failures]
                wait = max(wait, oldest_blocking + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> None:
        """Record one failed login for each key."""
        if self.max_failures <= 0:
            return
        now = self._clock()
        for key in keys:
            stamps = self._recent(key, now)
            if stamps is None:
                if len(self._failures) >= self.MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))
                stamps = self._failures[key] = deque()
            stamps.append(now)
            # Only the newest ``max_failures`` matter for the decision.
            while len(stamps) > self.max_failures:
                stamps.popleft()


class ProxyTrust:
    """Trust a user header, and ``X-Forwarded-For``, only from configured proxy addresses.

    Args:
        header: The header carrying the authenticated user (e.g. ``X-Forwarded-User``);
            empty disables proxy authentication.
        addresses: The proxies' addresses or networks (``10.0.0.5``, ``10.0.0.0/24``).

    Raises:
        ValidationError: an address is not an IP address or network.
    """

    def __init__(self, header: str, addresses: Sequence[str]) -> None:
        self.header = header.strip().lower()
        self.networks: tuple[_Network, ...] = tuple(self._parse(a) for a in addresses)

    @staticmethod
    def _parse(address: str) -> _Network:
        try:
            return ipaddress.ip_network(address.strip(), strict=False)
        except ValueError:
            raise ValidationError(
                f"SQUALL_AUTH_PROXY_ADDRESSES: {address!r} is not an IP address or network",
                hint="e.g. 10.0.0.5 or 10.0.0.0/24, comma-separated",
            ) from None

    @property
    def enabled(self) -> bool:
        return bool(self.header and self.networks)

    def is_proxy(self, peer: str | None) -> bool:
        """Whether the direct peer ``peer`` is one of the trusted proxies."""
        if not peer or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def user(self, headers: Mapping[str, str], peer: str | None) -> str | None:
        """The proxy-authenticated user, or None (no header, or not from a trusted proxy)."""
        if not self.enabled or not self.is_proxy(peer):
            return None
        value = headers.get(self.header, "").strip()
        return value or None

    def client_address(self, headers: Mapping[str, str], peer: str | None) -> str:
        """The client's address: the last ``X-Forwarded-For`` hop when the peer is a trusted
        proxy (the proxy appends the address it saw), the peer itself otherwise."""
        if self.is_proxy(peer):
            forwarded = headers.get("x-forwarded-for", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-1]
        return peer or "unknown"
