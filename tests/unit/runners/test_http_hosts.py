"""Host allow/deny list matching."""

from __future__ import annotations

import httpx
import pytest

from squall.runners.http_hosts import HostRules, parse_host_entry


@pytest.mark.parametrize(
    ("entry", "host", "port", "suffix"),
    [
        ("Example.COM", "example.com", None, False),
        ("example.com:8443", "example.com", 8443, False),
        ("::1", "::1", None, False),
        ("[::1]:8080", "::1", 8080, False),
        ("*.corp.internal", "corp.internal", None, True),
    ],
)
def test_parse(entry, host, port, suffix):
    rule = parse_host_entry(entry)
    assert (rule.host, rule.port, rule.suffix) == (host, port, suffix)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://example.com/x", True),
        ("https://EXAMPLE.com:443/", True),
        ("http://api.corp.internal/", True),
        ("http://corp.internal/", False),
        ("http://[::1]:9000/", True),
        ("http://other.org/", False),
        ("http://10.0.0.1:8080/", True),
        ("http://10.0.0.1:8081/", False),
    ],
)
def test_deny(url, refused):
    rules = HostRules(deny=["example.com", "*.corp.internal", "::1", "10.0.0.1:8080"])
    assert (rules.refusal(httpx.URL(url)) is not None) is refused


def test_allow_denies_the_rest():
    rules = HostRules(allow=["127.0.0.1"])
    assert rules.refusal(httpx.URL("http://127.0.0.1:5000/")) is None
    message = rules.refusal(httpx.URL("http://localhost:5000/"))
    assert message and "localhost" in message


def test_empty_rules_allow_everything():
    rules = HostRules()
    assert not rules
    assert rules.refusal(httpx.URL("http://anything/")) is None
