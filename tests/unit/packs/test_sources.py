"""Parsing ``pack install`` specs (StackStorm's ``<name or URL>[=<version>]``)."""

from __future__ import annotations

import pytest

from squall.errors import ValidationError
from squall.packs.sources import (
    PackSpec,
    parse_pack_spec,
    redact_spec,
    redact_url,
    strip_userinfo,
)


@pytest.mark.parametrize(
    ("spec", "kind", "location", "version"),
    [
        ("https://github.com/acme/ops.git", "git", "https://github.com/acme/ops.git", None),
        (
            "https://github.com/acme/ops.git=v1.2.0",
            "git",
            "https://github.com/acme/ops.git",
            "v1.2.0",
        ),
        ("http://git.local/ops=main", "git", "http://git.local/ops", "main"),
        (
            "ssh://git@host:2222/acme/ops.git=feature/x",
            "git",
            "ssh://git@host:2222/acme/ops.git",
            "feature/x",
        ),
        ("git://host/ops", "git", "git://host/ops", None),
        ("git@github.com:acme/ops.git=3f2c1a9", "git", "git@github.com:acme/ops.git", "3f2c1a9"),
        ("acme/ops", "git", "https://github.com/acme/ops", None),
        ("acme/stackstorm-ops=1.0.0", "git", "https://github.com/acme/stackstorm-ops", "1.0.0"),
        ("file:///srv/packs/ops", "local", "/srv/packs/ops", None),
        ("file:///srv/packs/ops.git=v2", "local", "/srv/packs/ops.git", "v2"),
        ("/srv/packs/ops", "local", "/srv/packs/ops", None),
        ("./ops=dev", "local", "./ops", "dev"),
        ("../ops", "local", "../ops", None),
        ("ops", "name", "ops", None),
        ("ops=1.0.0", "name", "ops", "1.0.0"),
        ("  ops  ", "name", "ops", None),
    ],
)
def test_spec_forms(spec: str, kind: str, location: str, version: str | None) -> None:
    parsed = parse_pack_spec(spec)
    assert (parsed.kind, parsed.location, parsed.version) == (kind, location, version)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "empty"),
        ("--upload-pack=touch /tmp/x", "cannot begin with '-'"),
        ("-oops", "cannot begin with '-'"),
        ("https://host/x.git=--upload-pack=x", "cannot begin with '-'"),
        ("https://host/x.git=-b", "cannot begin with '-'"),
        ("https://host/x.git=", "nothing after '='"),
        ("=v1", "nothing before '='"),
        ("https://host/x.git=v1..v2", "not a valid branch"),
        ("https://host/x.git=v1;rm", "not a valid branch"),
        ("https://host/x.git=a@{1}", "not a valid branch"),
        ("ext::sh -c touch% /tmp/x", "spaces"),
        ("ext::sh", "'::'"),
        ("fd::17", "'::'"),
        ("ftp://host/x.git", "unsupported URL scheme 'ftp://'"),
        ("https:///x.git", "has no host"),
        ("ssh://-oProxyCommand/x", "cannot begin with '-'"),
        ("ssh://git@-oProxyCommand/x", "cannot begin with '-'"),
        ("git@-oProxyCommand:x", "cannot begin with '-'"),
        ("file://relative/path", "absolute path"),
        ("https://host/x.git#v1", "'#' does not select a version"),
        ("Not A Pack", "spaces"),
        ("a/b/c", "not a git URL, a local path or a pack name"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_pack_spec(spec)
    assert reason in str(caught.value)


def test_user_info_is_masked_in_what_is_shown() -> None:
    spec = parse_pack_spec("https://bob:s3cr3t@git.local:8443/ops.git=v1")
    assert spec.location == "https://bob:s3cr3t@git.local:8443/ops.git"
    assert spec.display == "https://***@git.local:8443/ops.git=v1"
    assert "s3cr3t" not in spec.source and "bob" not in spec.source
    # A token as the user name is as secret as a password.
    token = parse_pack_spec("https://ghp_T0KEN@github.com/o/r.git=v2")
    assert token.display == "https://***@github.com/o/r.git=v2"
    assert redact_url("ssh://deploy:pw@git.local/ops.git") == "ssh://***@git.local/ops.git"
    assert redact_url("https://host/x?q=a@b") == "https://host/x?q=a@b"
    assert redact_url("git@host:x.git") == "git@host:x.git"


def test_ipv6_hosts_keep_their_brackets() -> None:
    assert redact_url("https://bob:pw@[::1]:8443/ops.git") == "https://***@[::1]:8443/ops.git"
    assert redact_url("https://tok@[fe80::1]/ops.git") == "https://***@[fe80::1]/ops.git"
    assert strip_userinfo("https://bob:pw@[::1]:8443/ops.git") == "https://[::1]:8443/ops.git"
    assert strip_userinfo("https://[::1]/ops.git") == "https://[::1]/ops.git"


def test_specs_are_redacted_for_storing_and_errors() -> None:
    assert redact_spec("https://ghp_T0KEN@github.com/o/r.git=v1") == (
        "https://***@github.com/o/r.git=v1"
    )
    assert redact_spec("ops=1.0.0") == "ops=1.0.0"
    with pytest.raises(ValidationError) as caught:
        parse_pack_spec("https://ghp_T0KEN@github.com/o/r.git=-x")
    assert "ghp_T0KEN" not in str(caught.value)
    assert "https://***@github.com/o/r.git=-x" in str(caught.value)


def test_local_sources_keep_the_form_given() -> None:
    assert parse_pack_spec("file:///srv/ops=v1").display == "file:///srv/ops=v1"
    assert parse_pack_spec("/srv/ops").source == "/srv/ops"
    assert isinstance(parse_pack_spec("ops"), PackSpec)
