"""Role-based access control as StackStorm defines it: the pure permission resolver.

Vocabulary:

* **Resource types** (``action``, ``pack``, ``execution``…) and their **permission types**
  (``action_view``, ``action_execute``, ``<type>_all``…), listed in :data:`PERMISSION_TYPES`.
* **Resource uids** name one resource: ``pack:examples``, ``action:core:local``,
  ``rule:examples:on_push``, ``key_value_pair:system:db.password``, ``webhook:github``,
  ``execution:<id>``.
* A **grant** gives permission types, either globally (no resource uid) or on one resource
  uid. A grant on ``pack:x`` is inherited by every resource of pack ``x`` (its actions, rules,
  sensors, aliases, policies, trigger types).
* A **role** is a named list of grants. The system roles are ``system_admin`` and ``admin``
  (everything) and ``observer`` (every ``*_list`` and ``*_view``, plus ``stream_view``).

Everything here is pure: :func:`has_permission` answers from the principal's roles and the
grants of its custom roles, which the authentication layer resolved when it built the
principal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from squall.errors import PermissionDenied

__all__ = [
    "ADMIN_ROLES",
    "PERMISSION_TYPES",
    "SYSTEM_ROLES",
    "Grant",
    "ListScope",
    "Role",
    "Subject",
    "all_permission_types",
    "deny",
    "execution_action_permission",
    "has_permission",
    "list_scope",
    "normalize_permission_type",
    "pack_of_uid",
    "require",
    "resource_type_of",
    "uid_for_ref",
]

#: Roles that may do everything.
ADMIN_ROLES = frozenset({"system_admin", "admin"})

#: The system roles, with their descriptions (they cannot be redefined by files).
SYSTEM_ROLES: Mapping[str, str] = {
    "system_admin": "Full access to everything, including RBAC and users.",
    "admin": "Full access to every resource.",
    "observer": "Read-only access (list and view) to every resource.",
}

#: Permission types of each resource type (StackStorm's, without the ``<type>_`` prefix).
PERMISSION_TYPES: Mapping[str, tuple[str, ...]] = {
    "runner_type": ("list", "view", "modify", "all"),
    "pack": (
        "list",
        "view",
        "create",
        "modify",
        "delete",
        "install",
        "uninstall",
        "register",
        "config",
        "search",
        "views_index_health",
        "all",
    ),
    "sensor_type": ("list", "view", "modify", "all"),
    "action": ("list", "view", "create", "modify", "delete", "execute", "all"),
    "action_alias": ("list", "view", "create", "modify", "match", "help", "delete", "all"),
    "rule": ("list", "view", "create", "modify", "delete", "all"),
    "rule_enforcement": ("list", "view", "all"),
    "policy_type": ("list", "view", "all"),
    "policy": ("list", "view", "create", "modify", "delete", "all"),
    "execution": ("list", "view", "re_run", "stop", "views_filters_list", "all"),
    "key_value_pair": ("list", "view", "set", "delete", "all"),
    "webhook": ("list", "view", "create", "send", "delete", "all"),
    "timer": ("list", "view", "all"),
    "api_key": ("list", "view", "create", "modify", "delete", "all"),
    "trace": ("list", "view", "all"),
    "trigger": ("list", "view", "all"),
    "stream": ("view",),
    "inquiry": ("list", "view", "respond", "all"),
}

#: Spellings accepted in role files for StackStorm's permission type names.
_ALIASES = {"execution_rerun": "execution_re_run"}

#: Resource uids whose second component is a pack (``<type>:<pack>:<name>``).
_PACKED = frozenset(
    {"action", "rule", "sensor_type", "action_alias", "policy", "trigger_type", "trigger"}
)


def all_permission_types() -> list[str]:
    """Every permission type, in a stable order."""
    return [f"{rt}_{suffix}" for rt, suffixes in PERMISSION_TYPES.items() for suffix in suffixes]


_KNOWN = frozenset(all_permission_types())


def resource_type_of(permission_type: str) -> str:
    """``action_execute`` -> ``action``; ``rule_enforcement_view`` -> ``rule_enforcement``."""
    best = ""
    for rt in PERMISSION_TYPES:
        if permission_type.startswith(rt + "_") and len(rt) > len(best):
            best = rt
    if not best:
        raise ValueError(f"unknown permission type {permission_type!r}")
    return best


def normalize_permission_type(name: str) -> str:
    """The canonical name of a permission type; raises ``ValueError`` for unknown ones."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _KNOWN:
        raise ValueError(f"unknown permission type {name!r}")
    return canonical


def pack_of_uid(uid: str | None) -> str | None:
    """The pack a resource uid belongs to (``action:core:local`` -> ``core``), if any."""
    if not uid:
        return None
    kind, _, rest = uid.partition(":")
    if kind == "pack":
        return rest or None
    if kind in _PACKED:
        pack, sep, _name = rest.partition(":")
        return pack if sep and pack else None
    return None


def uid_for_ref(resource_type: str, ref: str) -> str:
    """``uid_for_ref("action", "core.local")`` -> ``action:core:local``."""
    pack, sep, name = ref.partition(".")
    if not sep:
        return f"{resource_type}:{ref}"
    return f"{resource_type}:{pack}:{name}"


@dataclass(frozen=True)
class Grant:
    """Permission types given globally (``resource_uid`` None) or on one resource."""

    permission_types: frozenset[str]
    resource_uid: str | None = None

    def as_api(self) -> dict[str, object]:
        doc: dict[str, object] = {"permission_types": sorted(self.permission_types)}
        if self.resource_uid:
            doc["resource_uid"] = self.resource_uid
        return doc


@dataclass(frozen=True)
class Role:
    """A named set of grants; ``system`` roles are built in."""

    name: str
    description: str = ""
    grants: tuple[Grant, ...] = ()
    system: bool = False
    enabled: bool = True
    #: Where the role was defined (a file path), for ``GET /rbac/roles``.
    source: str = ""

    def as_api(self) -> dict[str, object]:
        return {
            "id": self.name,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "system": self.system,
            "permission_grants": [g.as_api() for g in self.grants],
            **({"metadata_file": self.source} if self.source else {}),
        }


class Subject(Protocol):
    """What the resolver needs of a principal (``squall.auth.service.Principal``)."""

    @property
    def user(self) -> str: ...

    @property
    def roles(self) -> tuple[str, ...]: ...

    @property
    def grants(self) -> tuple[Grant, ...]: ...


def _implies(granted: frozenset[str], permission_type: str) -> bool:
    if permission_type in granted:
        return True
    rt = resource_type_of(permission_type)
    return f"{rt}_all" in granted


def _is_read(permission_type: str) -> bool:
    return (
        permission_type.endswith(("_list", "_view"))
        or permission_type == "execution_views_filters_list"
    )


def has_permission(
    subject: Subject,
    permission_type: str,
    resource_uid: str | None = None,
    *,
    pack: str | None = None,
) -> bool:
    """Whether ``subject`` holds ``permission_type`` on ``resource_uid``.

    Args:
        subject: The principal (its roles and the grants of its custom roles).
        permission_type: e.g. ``action_execute``.
        resource_uid: The resource, or None for a global check (``action_list``).
        pack: The resource's pack when its uid does not say (an execution's action pack),
            so that ``pack:<pack>`` grants apply.
    """
    roles = subject.roles
    if ADMIN_ROLES.intersection(roles):
        return True
    permission_type = _ALIASES.get(permission_type, permission_type)
    if "observer" in roles and _is_read(permission_type):
        return True
    pack = pack or pack_of_uid(resource_uid)
    pack_uid = f"pack:{pack}" if pack else None
    for grant in subject.grants:
        if not _implies(grant.permission_types, permission_type):
            continue
        if grant.resource_uid is None:
            return True
        if resource_uid is not None and grant.resource_uid == resource_uid:
            return True
        if pack_uid is not None and grant.resource_uid == pack_uid:
            return True
    return False


def deny(subject: Subject, permission_type: str, resource_uid: str | None = None) -> None:
    """Raise the 403 naming the user, the permission type and the resource."""
    where = f" on '{resource_uid}'" if resource_uid else ""
    raise PermissionDenied(
        f"user '{subject.user}' lacks permission '{permission_type}'{where}",
        hint="ask an administrator for a role that grants it",
    )


def require(
    subject: Subject,
    permission_type: str,
    resource_uid: str | None = None,
    *,
    pack: str | None = None,
) -> None:
    """:func:`has_permission` or :class:`~squall.errors.PermissionDenied` (403)."""
    if not has_permission(subject, permission_type, resource_uid, pack=pack):
        deny(subject, permission_type, resource_uid)


@dataclass(frozen=True)
class ListScope:
    """How a list request is answered: everything, or filtered resource by resource."""

    everything: bool


def list_scope(
    subject: Subject, resource_type: str, *, also: Iterable[str] = ()
) -> ListScope | None:
    """Whether (and how) ``subject`` may list resources of ``resource_type``.

    A global ``<type>_list`` (or ``observer``/admin) lists everything. Without it, a subject
    whose grants give ``<type>_view``/``<type>_list`` — or one of ``also`` — on some
    resources lists those (the caller filters). None means no access at all (403).
    """
    list_perm = f"{resource_type}_list"
    if has_permission(subject, list_perm):
        return ListScope(everything=True)
    wanted = [list_perm, f"{resource_type}_view", *also]
    for grant in subject.grants:
        if grant.resource_uid is not None and any(
            _implies(grant.permission_types, p) for p in wanted
        ):
            return ListScope(everything=False)
    return None


def execution_action_permission(permission_type: str) -> str:
    """The action permission an execution permission is inherited from (StackStorm's rule):
    viewing an execution needs ``action_view`` on its action, stopping or re-running it
    ``action_execute``."""
    if permission_type in ("execution_view", "execution_list"):
        return "action_view"
    return "action_execute"
