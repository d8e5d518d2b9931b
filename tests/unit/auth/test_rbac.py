"""The pure permission resolver, role files, login throttling, proxy trust, template refs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from squall.auth.kvaccess import static_kv_references
from squall.auth.login_guard import LoginThrottle, ProxyTrust
from squall.auth.rbac import (
    Grant,
    has_permission,
    list_scope,
    normalize_permission_type,
    pack_of_uid,
    require,
    resource_type_of,
    uid_for_ref,
)
from squall.auth.rbac_files import load_definitions
from squall.errors import PermissionDenied, ValidationError


@dataclass(frozen=True)
class Who:
    user: str = "alice"
    roles: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()


def grant(uid: str | None, *types: str) -> Grant:
    return Grant(frozenset(types), uid)


def test_system_roles() -> None:
    for role in ("admin", "system_admin"):
        assert has_permission(Who(roles=(role,)), "pack_uninstall", "pack:core")
    observer = Who(roles=("observer",))
    assert has_permission(observer, "action_list")
    assert has_permission(observer, "execution_view", "execution:1")
    assert has_permission(observer, "stream_view")
    assert not has_permission(observer, "action_execute", "action:core:local")
    assert not has_permission(observer, "key_value_pair_set", "key_value_pair:system:x")


def test_pack_grants_are_inherited_and_all_implies_every_type() -> None:
    who = Who(grants=(grant("pack:alpha", "action_execute"), grant("pack:beta", "rule_all")))
    assert has_permission(who, "action_execute", "action:alpha:say")
    assert not has_permission(who, "action_execute", "action:beta:say")
    assert not has_permission(who, "action_view", "action:alpha:say")
    assert has_permission(who, "rule_delete", "rule:beta:r")
    assert not has_permission(who, "action_execute")  # no global grant
    assert has_permission(who, "execution_view", "execution:1", pack="beta") is False
    global_grant = Who(grants=(grant(None, "execution_list"),))
    assert has_permission(global_grant, "execution_list")


def test_resource_grants_and_aliases() -> None:
    who = Who(grants=(grant("action:core:local", "action_view"),))
    assert has_permission(who, "action_view", "action:core:local")
    assert not has_permission(who, "action_view", "action:core:remote")
    assert normalize_permission_type("execution_rerun") == "execution_re_run"
    with pytest.raises(ValueError, match="unknown permission type"):
        normalize_permission_type("action_fly")
    assert resource_type_of("rule_enforcement_view") == "rule_enforcement"
    assert resource_type_of("key_value_pair_set") == "key_value_pair"


def test_uids() -> None:
    assert uid_for_ref("action", "core.local") == "action:core:local"
    assert pack_of_uid("action:core:local") == "core"
    assert pack_of_uid("pack:core") == "core"
    assert pack_of_uid("execution:abc") is None
    assert pack_of_uid("key_value_pair:system:a") is None


def test_list_scope() -> None:
    assert list_scope(Who(roles=("observer",)), "action").everything  # type: ignore[union-attr]
    scoped = list_scope(Who(grants=(grant("pack:alpha", "action_view"),)), "action")
    assert scoped is not None and not scoped.everything
    assert list_scope(Who(grants=(grant("pack:alpha", "rule_view"),)), "action") is None
    assert list_scope(Who(), "action") is None


def test_denial_names_user_permission_and_resource() -> None:
    with pytest.raises(PermissionDenied) as exc:
        require(Who(), "action_execute", "action:core:local")
    assert (
        exc.value.message == "user 'alice' lacks permission 'action_execute' on 'action:core:local'"
    )
    assert exc.value.http_status == 403


def test_role_and_assignment_files(tmp_path: Path) -> None:
    (tmp_path / "roles").mkdir()
    (tmp_path / "assignments").mkdir()
    (tmp_path / "roles" / "ops.yaml").write_text(
        "---\nname: ops\ndescription: Operators\nenabled: true\npermission_grants:\n"
        "  - resource_uid: pack:ops\n    permission_types: [action_execute, execution_rerun]\n"
        "  - permission_types: [execution_list]\n"
    )
    (tmp_path / "assignments" / "alice.yaml").write_text(
        "---\nusername: alice\ndescription: on call\nenabled: true\nroles: [ops, observer]\n"
    )
    (tmp_path / "assignments" / "old.yaml").write_text(
        "username: old\nenabled: false\nroles: [ops]\n"
    )
    defs = load_definitions(tmp_path)
    (role,) = defs.roles
    assert role.name == "ops" and role.source == "roles/ops.yaml"
    assert role.grants[0] == Grant(frozenset({"action_execute", "execution_re_run"}), "pack:ops")
    assert role.grants[1] == Grant(frozenset({"execution_list"}), None)
    assert sorted((a.user, a.role) for a in defs.assignments) == [
        ("alice", "observer"),
        ("alice", "ops"),
    ]


def test_role_file_errors_carry_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "admin.yaml").write_text("name: admin\n")
    (tmp_path / "roles" / "typo.yaml").write_text("name: typo\npermision_grants: []\n")
    (tmp_path / "roles" / "uid.yaml").write_text(
        "name: uid\npermission_grants:\n  - resource_uid: nocolon\n"
        "    permission_types: [action_view]\n"
    )
    with pytest.raises(ValidationError) as exc:
        load_definitions(tmp_path)
    text = str(exc.value)
    assert "roles/admin.yaml:1: name: 'admin' is a system role" in text
    assert "roles/typo.yaml:2: permision_grants: unknown field" in text
    assert "roles/uid.yaml:3: permission_grants[0].resource_uid" in text
    assert load_definitions(tmp_path / "missing").roles == []


def test_login_throttle_sliding_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, 60.0, clock=lambda: now[0])
    keys = ["user:a", "addr:1.2.3.4"]
    for _ in range(3):
        assert throttle.retry_after(keys) is None
        throttle.failed(keys)
        now[0] += 1
    wait = throttle.retry_after(keys)
    assert wait is not None and 55 <= wait <= 60
    assert throttle.retry_after(["user:b"]) is None
    now[0] += 58
    assert throttle.retry_after(keys) is None  # the oldest failure left the window
    assert LoginThrottle(0).retry_after(keys) is None


def test_proxy_trust() -> None:
    trust = ProxyTrust("X-Forwarded-User", ["10.0.0.0/8", "192.168.1.5"])
    headers = {"x-forwarded-user": "erin", "x-forwarded-for": "203.0.113.9, 10.0.0.3"}
    assert trust.user(headers, "10.2.3.4") == "erin"
    assert trust.user(headers, "192.168.1.5") == "erin"
    assert trust.user(headers, "192.168.1.6") is None
    assert trust.user(headers, None) is None
    assert trust.client_address(headers, "10.2.3.4") == "10.0.0.3"
    assert trust.client_address(headers, "8.8.8.8") == "8.8.8.8"
    assert not ProxyTrust("X-Forwarded-User", []).enabled
    with pytest.raises(ValidationError, match="not an IP address"):
        ProxyTrust("X", ["proxy.local"])


def test_static_kv_references() -> None:
    refs = static_kv_references("{{ st2kv.system.db.host }} {{ st2kv.user.mine }}")
    assert refs.system == {"db.host"} and refs.user == {"mine"}
    assert not refs.decrypts and not refs.dynamic
    assert static_kv_references("{{ st2kv.system.x | decrypt_kv }}").decrypts
    assert static_kv_references("{{ st2kv.system['a:b'] }}").dynamic
    assert static_kv_references("{{ st2kv.system.a['b'] }}").dynamic
    assert static_kv_references("{% set k = st2kv %}{{ k.system.x }}").dynamic
