"""Allow and deny lists of HTTP hosts, for the ``http-request`` runner.

An entry is a host name or IP address (``example.com``, ``10.0.0.1``, ``::1``), optionally
with a port (``example.com:8443``, ``[::1]:8080``), or a suffix pattern (``*.example.com``,
which matches sub-domains but not ``example.com`` itself). Matching is case-insensitive and
done on the URL as written — no DNS resolution. An entry without a port matches every port.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

__all__ = ["HostRule", "HostRules", "parse_host_entry"]


@dataclass(frozen=True)
class HostRule:
    """One parsed list entry."""

    host: str
    port: int | None = None
    suffix: bool = False

    def matches(self, host: str, port: int) -> bool:
        """True when ``host:port`` is covered by this entry."""
        if self.port is not None and self.port != port:
            return False
        if self.suffix:
            return host.endswith("." + self.host)
        return host == self.host


def parse_host_entry(entry: str) -> HostRule:
    """Parse ``host``, ``host:port``, ``[v6]:port``, ``v6`` or ``*.suffix``."""
    text = entry.strip().lower()
    if not text:
        raise ValueError("empty host entry")
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host = text
    suffix = host.startswith("*.")
    if suffix:
        host = host[2:]
    return HostRule(host=host.rstrip("."), port=port, suffix=suffix)


def _port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


class HostRules:
    """A deny list and an allow list (an empty allow list allows every host).

    Args:
        allow: entries that are allowed; when given, every other host is denied.
        deny: entries that are denied.
        deny_name: how the deny list is named in error messages.
        allow_name: how the allow list is named in error messages.

    Raises:
        ValueError: an entry cannot be parsed.
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        allow_name: str = "url_hosts_whitelist",
        deny_name: str = "url_hosts_blacklist",
    ) -> None:
        self.allow: Sequence[HostRule] = [parse_host_entry(e) for e in allow if str(e).strip()]
        self.deny: Sequence[HostRule] = [parse_host_entry(e) for e in deny if str(e).strip()]
        self.allow_name = allow_name
        self.deny_name = deny_name

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def refusal(self, url: httpx.URL) -> str | None:
        """Why ``url`` may not be requested, or ``None`` when it may."""
        host = (url.host or "").lower().rstrip(".")
        port = _port(url)
        if any(rule.matches(host, port) for rule in self.deny):
            return f"host {host!r} is denied by {self.deny_name}"
        if self.allow and not any(rule.matches(host, port) for rule in self.allow):
            return f"host {host!r} is not allowed by {self.allow_name}"
        return None
