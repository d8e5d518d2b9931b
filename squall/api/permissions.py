"""What every API route needs: the permission table :func:`squall.api.authz.authorize` enforces.

Keys are ``(METHOD, path)`` with path parameters written ``{}``. Routes of StackStorm's API that
Squall does not serve yet are listed too, so they are protected the day they arrive. A route
missing from this table is open to administrators only (a test lists the routes of the app
and checks each one against this table).

``docs/security.md`` explains the rules; :func:`describe` renders this table for it.
"""

from __future__ import annotations

import re

from squall.api import permission_checks as pc
from squall.api.authz import Access, Resolver

__all__ = ["ROUTES", "describe", "lookup", "normalize_path"]

_PUBLIC = Access(public=True)
_AUTHENTICATED = Access()
_ADMIN = Access(admin=True)


def _list(resource_type: str, *, filtered: bool = False) -> Access:
    return Access(listing=resource_type, filtered=filtered)


def _one(permission: str, resolve: Resolver, *, owner_ok: bool = False) -> Access:
    return Access(permission=permission, resolve=resolve, owner_ok=owner_ok)


def _global(permission: str) -> Access:
    return Access(permission=permission)


def _crud(
    base: str, resource_type: str, resolve: Resolver, *, filtered: bool = False
) -> dict[tuple[str, str], Access]:
    """``GET/POST base`` and ``GET/PUT/DELETE base/{}`` of a pack content type."""
    return {
        ("GET", base): _list(resource_type, filtered=filtered),
        ("POST", base): Access(custom=pc.document(resource_type, f"{resource_type}_create")),
        ("GET", base + "/{}"): _one(f"{resource_type}_view", resolve),
        ("PUT", base + "/{}"): _one(f"{resource_type}_modify", resolve),
        ("DELETE", base + "/{}"): _one(f"{resource_type}_delete", resolve),
    }


_EXECUTION = pc.execution

ROUTES: dict[tuple[str, str], Access] = {
    # --- public and self-service -----------------------------------------------------------
    ("GET", "/healthz"): _PUBLIC,
    ("GET", "/readyz"): _PUBLIC,
    ("GET", "/metrics"): _PUBLIC,
    ("POST", "/auth/v1/tokens"): _PUBLIC,
    ("POST", "/auth/v1/tokens/validate"): _PUBLIC,
    ("GET", "/auth/v1/sso"): _PUBLIC,
    # Revoking a token: your own (the handler checks the owner of a token named by id).
    ("DELETE", "/auth/v1/tokens"): _AUTHENTICATED,
    ("DELETE", "/auth/v1/tokens/{}"): _AUTHENTICATED,
    ("GET", "/api/v1"): _AUTHENTICATED,
    ("GET", "/api/v1/"): _AUTHENTICATED,
    ("GET", "/api/v1/user"): _AUTHENTICATED,
    # Named webhooks authenticate by signature or credentials; the handler checks
    # webhook_send for credentialed callers (the fast path bypasses dependencies).
    ("POST", "/api/v1/webhooks/{}"): _PUBLIC,
    # API keys: your own keys without a grant; the handler checks api_key_* for others'.
    ("GET", "/api/v1/apikeys"): _AUTHENTICATED,
    ("POST", "/api/v1/apikeys"): _AUTHENTICATED,
    ("GET", "/api/v1/apikeys/{}"): _AUTHENTICATED,
    ("PUT", "/api/v1/apikeys/{}"): _AUTHENTICATED,
    ("DELETE", "/api/v1/apikeys/{}"): _AUTHENTICATED,
    # RBAC definitions are not secret; assignments are filtered by the handler.
    ("GET", "/api/v1/rbac/roles"): _AUTHENTICATED,
    ("GET", "/api/v1/rbac/roles/{}"): _AUTHENTICATED,
    ("GET", "/api/v1/rbac/permission_types"): _AUTHENTICATED,
    ("GET", "/api/v1/rbac/permission_types/{}"): _AUTHENTICATED,
    ("GET", "/api/v1/rbac/role_assignments"): _AUTHENTICATED,
    ("GET", "/api/v1/rbac/role_assignments/{}"): _AUTHENTICATED,
    ("POST", "/api/v1/rbac/load"): _ADMIN,
    # Squall: user management (a user may change their own password).
    ("GET", "/api/v1/users"): _ADMIN,
    ("POST", "/api/v1/users"): _ADMIN,
    ("GET", "/api/v1/users/{}"): _ADMIN,
    ("PUT", "/api/v1/users/{}"): _ADMIN,
    ("DELETE", "/api/v1/users/{}"): _ADMIN,
    ("PUT", "/api/v1/users/{}/password"): _AUTHENTICATED,
    # --- actions and runners -----------------------------------------------------------------
    ("GET", "/api/v1/actions"): _list("action", filtered=True),
    # Writing actions writes code into a pack (and installing packs installs code): that is
    # administrator-equivalent, so these stay with administrators.
    ("POST", "/api/v1/actions"): _ADMIN,
    ("GET", "/api/v1/actions/{}"): _one("action_view", pc.action),
    ("PUT", "/api/v1/actions/{}"): _ADMIN,
    ("DELETE", "/api/v1/actions/{}"): _ADMIN,
    ("POST", "/api/v1/actions/{}/clone"): _ADMIN,
    ("GET", "/api/v1/actions/views/parameters/{}"): _one("action_view", pc.action),
    ("GET", "/api/v1/actions/views/overview"): _list("action", filtered=True),
    ("GET", "/api/v1/actions/views/overview/{}"): _one("action_view", pc.action),
    ("GET", "/api/v1/actions/views/entry_point/{}"): _one("action_view", pc.action),
    ("GET", "/api/v1/runnertypes"): _list("runner_type"),
    ("GET", "/api/v1/runnertypes/{}"): _one("runner_type_view", pc.runner_type),
    ("PUT", "/api/v1/runnertypes/{}"): _one("runner_type_modify", pc.runner_type),
    ("GET", "/api/v1/sensortypes"): _list("sensor_type"),
    ("GET", "/api/v1/sensortypes/{}"): _one("sensor_type_view", pc.packed("sensor_type")),
    ("PUT", "/api/v1/sensortypes/{}"): _one("sensor_type_modify", pc.packed("sensor_type")),
    # --- executions (action_execute is checked by the execution service) ---------------------
    ("POST", "/api/v1/executions"): _AUTHENTICATED,
    ("GET", "/api/v1/executions"): _list("execution", filtered=True),
    ("GET", "/api/v1/executions/views/filters"): _global("execution_views_filters_list"),
    ("GET", "/api/v1/executions/{}"): _one("execution_view", _EXECUTION, owner_ok=True),
    ("PUT", "/api/v1/executions/{}"): _one("execution_stop", _EXECUTION, owner_ok=True),
    ("DELETE", "/api/v1/executions/{}"): _one("execution_stop", _EXECUTION, owner_ok=True),
    ("POST", "/api/v1/executions/{}/re_run"): _one("execution_re_run", _EXECUTION, owner_ok=True),
    ("GET", "/api/v1/executions/{}/result"): _one("execution_view", _EXECUTION, owner_ok=True),
    ("GET", "/api/v1/executions/{}/children"): _one("execution_view", _EXECUTION, owner_ok=True),
    ("GET", "/api/v1/executions/{}/output"): _one("execution_view", _EXECUTION, owner_ok=True),
    ("GET", "/api/v1/executions/{}/output/chunks"): _one(
        "execution_view", _EXECUTION, owner_ok=True
    ),
    ("GET", "/api/v1/executions/{}/attribute/{}"): _one(
        "execution_view", _EXECUTION, owner_ok=True
    ),
    ("GET", "/stream/v1/stream"): _global("stream_view"),
    ("GET", "/stream/v1/executions/{}/output"): _one("execution_view", _EXECUTION, owner_ok=True),
    # --- datastore (the datastore service checks key_value_pair_* per key) --------------------
    ("GET", "/api/v1/keys"): _AUTHENTICATED,
    ("GET", "/api/v1/keys/{}"): _AUTHENTICATED,
    ("PUT", "/api/v1/keys/{}"): _AUTHENTICATED,
    ("DELETE", "/api/v1/keys/{}"): _AUTHENTICATED,
    # --- packs -----------------------------------------------------------------------------------
    ("GET", "/api/v1/packs"): _list("pack", filtered=True),
    ("GET", "/api/v1/packs/{}"): _one("pack_view", pc.pack),
    ("DELETE", "/api/v1/packs/{}"): _one("pack_uninstall", pc.pack),
    ("POST", "/api/v1/packs/install"): _ADMIN,
    ("POST", "/api/v1/packs/uninstall"): Access(custom=pc.packs_in_body("pack_uninstall")),
    ("POST", "/api/v1/packs/register"): Access(custom=pc.packs_in_body("pack_register")),
    ("GET", "/api/v1/packs/index"): _global("pack_search"),
    ("POST", "/api/v1/packs/index/search"): _global("pack_search"),
    ("GET", "/api/v1/packs/index/health"): _global("pack_views_index_health"),
    ("GET", "/api/v1/packs/views/files/{}"): _one("pack_view", pc.pack),
    ("GET", "/api/v1/packs/views/file/{}/{}"): _one("pack_view", pc.pack),
    ("GET", "/api/v1/configs"): _list("pack"),
    ("GET", "/api/v1/configs/{}"): _one("pack_view", pc.pack),
    ("PUT", "/api/v1/configs/{}"): Access(custom=pc.config_write),
    ("GET", "/api/v1/config_schemas"): _list("pack"),
    ("GET", "/api/v1/config_schemas/{}"): _one("pack_view", pc.pack),
    # --- rules, enforcements, triggers -----------------------------------------------------------
    ("GET", "/api/v1/rules"): _list("rule", filtered=True),
    ("GET", "/api/v1/rules/views"): _list("rule", filtered=True),
    ("POST", "/api/v1/rules"): Access(custom=pc.create_rule),
    ("GET", "/api/v1/rules/{}"): _one("rule_view", pc.rule),
    ("GET", "/api/v1/rules/views/{}"): _one("rule_view", pc.rule),
    ("PUT", "/api/v1/rules/{}"): Access(custom=pc.update_rule),
    ("DELETE", "/api/v1/rules/{}"): _one("rule_delete", pc.rule),
    ("POST", "/api/v1/rules/test"): Access(custom=pc.rule_trial),
    ("POST", "/api/v1/rules/backtest"): Access(custom=pc.rule_trial),
    ("GET", "/api/v1/ruletypes"): _AUTHENTICATED,
    ("GET", "/api/v1/ruletypes/{}"): _AUTHENTICATED,
    ("GET", "/api/v1/ruleenforcements"): _list("rule_enforcement", filtered=True),
    ("GET", "/api/v1/ruleenforcements/views"): _list("rule_enforcement", filtered=True),
    ("GET", "/api/v1/ruleenforcements/{}"): _one("rule_enforcement_view", pc.enforcement),
    ("GET", "/api/v1/ruleenforcements/views/{}"): _one("rule_enforcement_view", pc.enforcement),
    ("GET", "/api/v1/triggertypes"): _list("trigger"),
    ("POST", "/api/v1/triggertypes"): _ADMIN,
    ("GET", "/api/v1/triggertypes/{}"): _one("trigger_view", pc.packed("trigger_type")),
    ("PUT", "/api/v1/triggertypes/{}"): _ADMIN,
    ("DELETE", "/api/v1/triggertypes/{}"): _ADMIN,
    ("GET", "/api/v1/triggers"): _list("trigger"),
    ("POST", "/api/v1/triggers"): _ADMIN,
    ("GET", "/api/v1/triggers/{}"): _one("trigger_view", pc.packed("trigger")),
    ("PUT", "/api/v1/triggers/{}"): _ADMIN,
    ("DELETE", "/api/v1/triggers/{}"): _ADMIN,
    ("GET", "/api/v1/triggerinstances"): _list("trigger"),
    ("GET", "/api/v1/triggerinstances/{}"): _one("trigger_view", pc.trigger_instance),
    # Re-emitting makes rules act (as the system user) on an old event: administrators only.
    ("POST", "/api/v1/triggerinstances/{}/re_emit"): _ADMIN,
    ("GET", "/api/v1/timers"): _list("timer"),
    ("GET", "/api/v1/timers/{}"): _one("timer_view", pc.uid("timer")),
    ("GET", "/api/v1/webhooks"): _list("webhook", filtered=True),
    ("GET", "/api/v1/webhooks/{}"): _one("webhook_view", pc.uid("webhook")),
    ("POST", "/api/v1/webhooks/st2"): _one("webhook_send", pc.uid("webhook")),
    # --- policies, aliases, inquiries, traces, workflows -------------------------------------
    **_crud("/api/v1/policies", "policy", pc.packed("policy")),
    ("GET", "/api/v1/policytypes"): _list("policy_type"),
    ("GET", "/api/v1/policytypes/{}"): _one("policy_type_view", pc.uid("policy_type")),
    **_crud("/api/v1/actionalias", "action_alias", pc.packed("action_alias")),
    ("POST", "/api/v1/actionalias/match"): _global("action_alias_match"),
    ("GET", "/api/v1/actionalias/help"): _global("action_alias_help"),
    # The alias's action is then requested on the caller's behalf (action_execute).
    ("POST", "/api/v1/aliasexecution"): _global("action_alias_match"),
    ("POST", "/api/v1/aliasexecution/match_and_execute"): _global("action_alias_match"),
    ("GET", "/api/v1/inquiries"): _list("inquiry"),
    ("GET", "/api/v1/inquiries/{}"): Access(custom=pc.inquiry_view),
    ("PUT", "/api/v1/inquiries/{}"): Access(custom=pc.inquiry_respond),
    ("GET", "/api/v1/traces"): _list("trace"),
    ("GET", "/api/v1/traces/{}"): _one("trace_view", pc.uid("trace")),
    ("POST", "/api/v1/workflows/inspect"): _AUTHENTICATED,
    # --- operations --------------------------------------------------------------------------
    ("GET", "/api/v1/service_registry/groups"): _ADMIN,
    ("GET", "/api/v1/service_registry/groups/{}/members"): _ADMIN,
    ("GET", "/api/v1/service_registry/processes"): _ADMIN,
}

# The webhook "st2" route is a literal path; the generic entry must not shadow it.
assert ("POST", "/api/v1/webhooks/st2") in ROUTES

_PARAM = re.compile(r"\{[^}]*\}")


def normalize_path(path: str) -> str:
    """``/api/v1/keys/{name:path}`` -> ``/api/v1/keys/{}``."""
    return _PARAM.sub("{}", path)


def lookup(method: str, path: str) -> Access | None:
    """The access rule of a route (``path`` as declared, parameters in braces)."""
    return ROUTES.get((method.upper(), normalize_path(path)))


def describe(access: Access) -> str:
    """A one-line description of ``access`` (for the docs and error messages)."""
    if access.public:
        return "public"
    if access.admin:
        return "administrators"
    if access.listing:
        how = ", filtered per resource" if access.filtered else ""
        return f"{access.listing}_list{how}"
    if access.custom is not None:
        return f"custom ({access.custom.__name__})"
    if access.permission is None:
        return "authenticated"
    return access.permission + (" (or owner)" if access.owner_ok else "")
