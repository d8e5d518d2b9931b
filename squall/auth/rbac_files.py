"""RBAC definitions from YAML files, in StackStorm's formats.

``<dir>/roles/*.yaml`` — one role per file::

    name: event_responder
    description: Runs the chatops pack's actions
    enabled: true
    permission_grants:
      - resource_uid: pack:chatops          # inherited by the pack's actions, rules…
        permission_types: [action_execute, action_view]
      - permission_types: [execution_list]  # no resource_uid: a global grant

``<dir>/assignments/<user>.yaml`` — the roles of one user::

    username: alice
    description: On-call engineer
    enabled: true
    roles: [observer, event_responder]

Every problem is reported together, each with its file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall.auth.rbac import SYSTEM_ROLES, Grant, Role, normalize_permission_type
from squall.errors import Issue, ValidationError
from squall.packs.yamlfile import YamlDocument, YamlFileError, load_yaml_file

__all__ = ["RbacDefinitions", "RoleAssignment", "load_definitions"]

_ROLE_KEYS = {"name", "description", "enabled", "permission_grants"}
_ASSIGNMENT_KEYS = {"username", "description", "enabled", "roles", "is_remote", "file_path"}


@dataclass(frozen=True)
class RoleAssignment:
    """``user`` holds ``role``, as declared by ``source`` (a file, or ``local``)."""

    user: str
    role: str
    source: str
    description: str = ""
    is_remote: bool = False

    @property
    def id(self) -> str:
        return f"{self.user}:{self.role}:{self.source}"

    def as_api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.user,
            "role": self.role,
            "source": self.source,
            "description": self.description,
            "is_remote": self.is_remote,
        }


@dataclass
class RbacDefinitions:
    """Roles and assignments read from one RBAC directory."""

    roles: list[Role] = field(default_factory=list)
    assignments: list[RoleAssignment] = field(default_factory=list)


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _load(path: Path, base: Path, issues: list[Issue]) -> YamlDocument | None:
    try:
        doc = load_yaml_file(path, display_name=str(path.relative_to(base)))
    except YamlFileError as exc:
        issues.append(exc.issue)
        return None
    if not isinstance(doc.data, dict):
        issues.append(doc.issue((), "expected a mapping"))
        return None
    return doc


def _string_list(doc: YamlDocument, key: str, issues: list[Issue]) -> list[str]:
    raw = doc.data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        issues.append(doc.issue((key,), "expected a list of names"))
        return []
    return list(raw)


def _unknown_keys(doc: YamlDocument, allowed: set[str], issues: list[Issue]) -> None:
    for key in doc.data:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            issues.append(doc.issue((key,), f"unknown field {key!r} (known: {known})"))


def _parse_grant(doc: YamlDocument, index: int, raw: Any, issues: list[Issue]) -> Grant | None:
    where: tuple[Any, ...] = ("permission_grants", index)
    if not isinstance(raw, dict):
        issues.append(doc.issue(where, "a grant must be a mapping"))
        return None
    extra = set(raw) - {"resource_uid", "permission_types"}
    if extra:
        issues.append(doc.issue(where, f"unknown grant field {sorted(extra)[0]!r}"))
    uid = raw.get("resource_uid")
    if uid is not None and (not isinstance(uid, str) or ":" not in uid):
        issues.append(
            doc.issue((*where, "resource_uid"), "expected a resource uid such as pack:examples")
        )
        return None
    types = raw.get("permission_types")
    if not isinstance(types, list) or not types:
        issues.append(doc.issue((*where, "permission_types"), "expected a non-empty list"))
        return None
    names: set[str] = set()
    for i, name in enumerate(types):
        try:
            names.add(normalize_permission_type(str(name)))
        except ValueError as exc:
            issues.append(doc.issue((*where, "permission_types", i), str(exc)))
    return Grant(frozenset(names), uid) if names else None


def _parse_role(doc: YamlDocument, issues: list[Issue]) -> Role | None:
    data = doc.data
    _unknown_keys(doc, _ROLE_KEYS, issues)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        issues.append(doc.issue(("name",), "a role needs a name"))
        return None
    if name in SYSTEM_ROLES:
        issues.append(doc.issue(("name",), f"{name!r} is a system role and cannot be redefined"))
        return None
    raw_grants = data.get("permission_grants") or []
    if not isinstance(raw_grants, list):
        issues.append(doc.issue(("permission_grants",), "expected a list of grants"))
        raw_grants = []
    grants = [g for i, raw in enumerate(raw_grants) if (g := _parse_grant(doc, i, raw, issues))]
    return Role(
        name=name,
        description=str(data.get("description") or ""),
        grants=tuple(grants),
        enabled=data.get("enabled", True) is not False,
        source=doc.file,
    )


def _parse_assignment(doc: YamlDocument, issues: list[Issue]) -> list[RoleAssignment]:
    data = doc.data
    _unknown_keys(doc, _ASSIGNMENT_KEYS, issues)
    user = data.get("username")
    if not isinstance(user, str) or not user:
        issues.append(doc.issue(("username",), "an assignment needs a username"))
        return []
    if data.get("enabled", True) is False:
        return []
    return [
        RoleAssignment(
            user=user,
            role=role,
            source=doc.file,
            description=str(data.get("description") or ""),
            is_remote=bool(data.get("is_remote", False)),
        )
        for role in _string_list(doc, "roles", issues)
    ]


def load_definitions(directory: Path) -> RbacDefinitions:
    """Read ``roles/*.yaml`` and ``assignments/*.yaml`` under ``directory``.

    A missing directory holds no definitions. Assignments may only name system roles and
    roles defined in ``roles/``.

    Raises:
        ValidationError: any file is malformed; every issue is listed with file and line.
    """
    issues: list[Issue] = []
    out = RbacDefinitions()
    docs: dict[str, YamlDocument] = {}
    for path in _yaml_files(directory / "roles"):
        doc = _load(path, directory, issues)
        if doc is None:
            continue
        role = _parse_role(doc, issues)
        if role is None:
            continue
        if role.name in docs:
            issues.append(
                doc.issue(
                    ("name",), f"role {role.name!r} is also defined in {docs[role.name].file}"
                )
            )
            continue
        docs[role.name] = doc
        out.roles.append(role)
    known = set(SYSTEM_ROLES) | {r.name for r in out.roles}
    users: dict[str, str] = {}
    for path in _yaml_files(directory / "assignments"):
        doc = _load(path, directory, issues)
        if doc is None:
            continue
        assignments = _parse_assignment(doc, issues)
        for i, assignment in enumerate(assignments):
            if assignment.role not in known:
                issues.append(doc.issue(("roles", i), f"unknown role {assignment.role!r}"))
        user = doc.data.get("username")
        if isinstance(user, str) and user in users:
            issues.append(
                doc.issue(("username",), f"user {user!r} is also assigned in {users[user]}")
            )
            continue
        if isinstance(user, str):
            users[user] = doc.file
        out.assignments.extend(a for a in assignments if a.role in known)
    if issues:
        raise ValidationError(
            f"invalid RBAC definitions in {directory} ({len(issues)} problem"
            f"{'s' if len(issues) > 1 else ''})",
            issues=issues,
        )
    return out
