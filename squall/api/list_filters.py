"""List filtering by permission: what a list shows a caller whose grants cover only some
resources (pack or resource grants), and permission isolation.

Executions are filtered in SQL (the list can hold millions): a caller sees its own executions
and those of the actions and packs its grants cover. Other lists are small and filtered in
memory before paging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

import sqlalchemy as sa
from fastapi import Request

from squall.api.authz import Target, can_see, check_target, list_scope_of
from squall.api.deps import get_runtime
from squall.auth.rbac import has_permission, pack_of_uid, uid_for_ref
from squall.auth.service import Principal
from squall.store.executions import ExecutionFilter
from squall.store.schema import executions
from squall.store.util import like_prefix

__all__ = [
    "ScopedExecutionFilter",
    "execution_visible",
    "packed_target",
    "scoped_execution_filter",
    "stream_visibility",
    "visibility_limited",
    "visible",
]

T = TypeVar("T")

#: Grants that make an execution visible, besides ownership.
_EXECUTION_VIEW = frozenset(
    {"execution_view", "execution_list", "execution_all", "action_view", "action_all"}
)


@dataclass
class ScopedExecutionFilter(ExecutionFilter):
    """An :class:`ExecutionFilter` limited to what one caller may see."""

    visible_to: str | None = None
    own_only: bool = False
    visible_packs: tuple[str, ...] = ()
    visible_actions: tuple[str, ...] = ()

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        out = super().clauses()
        if self.visible_to is None:
            return out
        c = executions.c
        if self.own_only:
            out.append(c.user == self.visible_to)
            return out
        allowed: list[sa.ColumnElement[bool]] = [c.user == self.visible_to]
        if self.visible_actions:
            allowed.append(c.action_ref.in_(list(self.visible_actions)))
        allowed.extend(like_prefix(c.action_ref, f"{p}.") for p in self.visible_packs)
        out.append(sa.or_(*allowed))
        return out


def scoped_execution_filter(
    request: Request, principal: Principal, flt: ExecutionFilter
) -> ExecutionFilter:
    """``flt`` narrowed to the executions ``principal`` may see."""
    if principal.is_admin:
        return flt
    isolation = get_runtime(request).settings.rbac_isolation
    if list_scope_of(request).everything and not isolation:
        return flt
    packs: set[str] = set()
    actions: set[str] = set()
    for grant in principal.grants:
        if grant.resource_uid is None or not grant.permission_types & _EXECUTION_VIEW:
            continue
        kind, _, rest = grant.resource_uid.partition(":")
        if kind == "pack":
            packs.add(rest)
        elif kind == "action" and ":" in rest:
            actions.add(rest.replace(":", ".", 1))
    base = {f.name: getattr(flt, f.name) for f in fields(ExecutionFilter)}
    return ScopedExecutionFilter(
        **base,
        visible_to=principal.user,
        own_only=isolation,
        visible_packs=tuple(sorted(packs)),
        visible_actions=tuple(sorted(actions)),
    )


def visibility_limited(request: Request, principal: Principal) -> bool:
    """Whether lists must be filtered for ``principal`` (neither an admin nor holding the
    global list permission, or permission isolation is on)."""
    if principal.is_admin:
        return False
    return not list_scope_of(request).everything or get_runtime(request).settings.rbac_isolation


def execution_visible(request: Request, principal: Principal, user: str, action_ref: str) -> bool:
    """Whether ``principal`` may see an execution of ``action_ref`` run by ``user`` (for
    streams and other per-event filtering)."""
    if principal.is_admin:
        return True
    if get_runtime(request).settings.rbac_isolation:
        return user == principal.user
    if user == principal.user or list_scope_of(request).everything:
        return True
    action_uid = uid_for_ref("action", action_ref)
    target = Target(
        None, pack=pack_of_uid(action_uid), owner=user, also=(("action_view", action_uid),)
    )
    return check_target(principal, "execution_view", target)


def stream_visibility(
    principal: Principal, *, isolation: bool
) -> Callable[[str, str | None, str], bool] | None:
    """A predicate ``(execution id, its user or None, action ref) -> visible`` for stream
    events, or None when ``principal`` sees every event (admins; ``execution_list`` holders
    without permission isolation). The user of an output event is the one learned from the
    execution's own events (unknown: judged by the action alone, or hidden under isolation).
    """
    if principal.is_admin or (not isolation and has_permission(principal, "execution_list")):
        return None
    owners: dict[str, str] = {}

    def visible(execution_id: str, user: str | None, action_ref: str) -> bool:
        if user is not None:
            if len(owners) > 10_000:
                owners.clear()
            owners[execution_id] = user
        else:
            user = owners.get(execution_id)
        if user == principal.user:
            return True
        if isolation:
            return False
        action_uid = uid_for_ref("action", action_ref)
        return has_permission(
            principal, "execution_view", f"execution:{execution_id}", pack=pack_of_uid(action_uid)
        ) or has_permission(principal, "action_view", action_uid)

    return visible


def visible(
    request: Request,
    principal: Principal,
    resource_type: str,
    items: Sequence[T],
    target_of: Callable[[T], Target],
) -> list[T]:
    """The ``items`` a list shows ``principal`` (all of them for admins and global lists)."""
    if not visibility_limited(request, principal):
        return list(items)
    return [i for i in items if can_see(request, principal, resource_type, target_of(i))]


def packed_target(resource_type: str, pack: str | None, name: str | None) -> Target:
    """The target of pack content listed by pack and name."""
    uid = f"{resource_type}:{pack}:{name}"
    return Target(uid, pack=pack or pack_of_uid(uid))
