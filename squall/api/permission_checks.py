"""Resource resolvers and body-based checks used by the route permission table.

A resolver turns a path value into the :class:`~squall.api.authz.Target` a permission is
checked on (looking the resource up when its pack or owner matters); ``None`` means the
resource does not exist and the handler answers 404. Custom checks look at the request body
(rules, pack operations) or at the resource's own access list (inquiries).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import Connection

from squall.api.authz import Target, body_json, check_target
from squall.api.deps import get_runtime
from squall.auth.kvaccess import static_kv_references
from squall.auth.rbac import (
    deny,
    execution_action_permission,
    pack_of_uid,
    require,
    uid_for_ref,
)
from squall.auth.service import Principal
from squall.errors import NotFoundError, PermissionDenied
from squall.store import content, events

__all__ = [
    "action",
    "check_rule_document",
    "config_write",
    "create_rule",
    "document",
    "enforcement",
    "execution",
    "inquiry_respond",
    "inquiry_view",
    "pack",
    "packed",
    "packs_in_body",
    "rule",
    "rule_target",
    "rule_trial",
    "runner_type",
    "trigger_instance",
    "uid",
    "update_rule",
]


# --- resolvers ----------------------------------------------------------------------------------


async def action(request: Request, value: str, _permission: str) -> Target | None:
    rt = get_runtime(request)
    record = await rt.db.read(lambda conn: content.get_action(conn, value))
    if record is None:
        return None
    return Target(uid_for_ref("action", record.ref), pack=record.pack)


async def pack(_request: Request, value: str, _permission: str) -> Target | None:
    return Target(f"pack:{value}", pack=value)


async def runner_type(_request: Request, value: str, _permission: str) -> Target | None:
    return Target(f"runner_type:{value}")


def packed(resource_type: str) -> Any:
    """A resolver for ``<type>:<pack>:<name>`` resources named by their ref."""

    async def resolve(_request: Request, value: str, _permission: str) -> Target | None:
        return Target(uid_for_ref(resource_type, value))

    return resolve


def uid(resource_type: str) -> Any:
    """A resolver for resources whose uid is ``<type>:<value>``."""

    async def resolve(_request: Request, value: str, _permission: str) -> Target | None:
        return Target(f"{resource_type}:{value}")

    return resolve


async def execution(request: Request, value: str, permission: str) -> Target | None:
    rt = get_runtime(request)
    try:
        ex = await rt.executions.get(value, with_result=False)
    except NotFoundError:
        return None
    action_uid = uid_for_ref("action", ex.action_ref)
    return Target(
        f"execution:{ex.id}",
        pack=pack_of_uid(action_uid),
        owner=ex.user,
        also=((execution_action_permission(permission), action_uid),),
        isolated=True,
    )


def rule_target(doc: dict[str, Any]) -> Target:
    """The permission target of a rule document (its owner is who created it via the API)."""
    rule_pack = str(doc.get("pack") or "default")
    context = doc.get("context") if isinstance(doc.get("context"), dict) else {}
    owner = context.get("user") if isinstance(context, dict) else None
    return Target(
        f"rule:{rule_pack}:{doc.get('name')}",
        pack=rule_pack,
        owner=owner if isinstance(owner, str) else None,
        isolated=True,
    )


async def rule(request: Request, value: str, _permission: str) -> Target | None:
    try:
        doc = await get_runtime(request).rules.get(value)
    except NotFoundError:
        return None
    return rule_target(doc)


async def enforcement(request: Request, value: str, _permission: str) -> Target | None:
    from squall.store.schema import rule_enforcements

    def _read(conn: Connection) -> str | None:
        row = conn.execute(
            rule_enforcements.select().where(rule_enforcements.c.id == value)
        ).first()
        return str(row.rule_ref) if row is not None else None

    rule_ref = await get_runtime(request).db.read(_read)
    if rule_ref is None:
        return None
    rule_uid = uid_for_ref("rule", rule_ref)
    return Target(
        f"rule_enforcement:{value}", pack=pack_of_uid(rule_uid), also=(("rule_view", rule_uid),)
    )


async def trigger_instance(request: Request, value: str, _permission: str) -> Target | None:
    ti = await get_runtime(request).db.read(lambda conn: events.get_instance(conn, value))
    if ti is None:
        return None
    return Target(
        f"trigger_instance:{value}", pack=pack_of_uid(uid_for_ref("trigger", ti.trigger_type))
    )


# --- custom checks ------------------------------------------------------------------------------


def _check_kv_templates(principal: Principal, doc: Any, what: str) -> None:
    """Templates Squall renders as the system user (rules) may only read datastore keys the
    author may view, by name, and never decrypt (only admins may)."""
    if principal.is_admin:
        return
    text = orjson.dumps(doc).decode()
    refs = static_kv_references(text)
    if refs.decrypts or refs.dynamic:
        raise PermissionDenied(
            f"user '{principal.user}' may not "
            + ("use decrypt_kv" if refs.decrypts else "read datastore keys by computed names")
            + f" in {what}: they run as the system user",
            hint="only administrators may; put the secret in the pack config instead",
        )
    for name in refs.system:
        require(principal, "key_value_pair_view", f"key_value_pair:system:{name}")
    if refs.user:
        raise PermissionDenied(
            f"user '{principal.user}' may not read st2kv.user keys in {what}: "
            "they run as the system user, not as you"
        )


#: The built-in pack whose actions (``packs.install``, ``packs.squall_install``) install
#: packs: admin-only, also through a rule.
_ADMIN_ONLY_RULE_PACK = "packs"


async def check_rule_document(
    request: Request,
    principal: Principal,
    doc: dict[str, Any],
    permission: str,
) -> None:
    """A rule runs its action as the system user, so writing one needs the rule permission
    *and* ``action_execute`` on its action (and ``webhook_create`` for a webhook trigger).
    A rule running an action of the built-in ``packs`` pack (``packs.install`` installs any
    git URL as the system user) needs an administrator, as installing does."""
    require(principal, permission, rule_target(doc).uid)
    action_doc = doc.get("action")
    action_ref = action_doc.get("ref") if isinstance(action_doc, dict) else None
    if isinstance(action_ref, str):
        if action_ref.partition(".")[0] == _ADMIN_ONLY_RULE_PACK and not principal.is_admin:
            raise PermissionDenied(
                f"user '{principal.user}' may not write a rule running {action_ref!r}: rules "
                f"run as the system user, and the actions of the "
                f"'{_ADMIN_ONLY_RULE_PACK}' pack install packs, which only administrators may",
                hint="ask an administrator to create the rule",
            )
        require(principal, "action_execute", uid_for_ref("action", action_ref))
    trigger = doc.get("trigger")
    if isinstance(trigger, dict) and trigger.get("type") == "core.st2.webhook":
        params = trigger.get("parameters")
        url = params.get("url") if isinstance(params, dict) else None
        require(principal, "webhook_create", f"webhook:{url}")
    _check_kv_templates(principal, {k: doc.get(k) for k in ("criteria", "action")}, "rules")


async def create_rule(request: Request, principal: Principal) -> None:
    body = await body_json(request)
    if not isinstance(body, dict):
        require(principal, "rule_create")
        return
    await check_rule_document(request, principal, body, "rule_create")


async def update_rule(request: Request, principal: Principal) -> None:
    value = next(iter(request.path_params.values()), "")
    current = await rule(request, str(value), "rule_modify")
    if current is None:
        return
    isolation = get_runtime(request).settings.rbac_isolation
    if not check_target(principal, "rule_modify", current, isolation=isolation):
        deny(principal, "rule_modify", current.uid)
    body = await body_json(request)
    if isinstance(body, dict):
        doc = await get_runtime(request).rules.get(str(value))
        await check_rule_document(request, principal, {**doc, **body}, "rule_modify")


async def rule_trial(request: Request, principal: Principal) -> None:
    """``rules/test`` and ``rules/backtest`` render a rule as the system user would."""
    body = await body_json(request)
    doc = body.get("rule") if isinstance(body, dict) else None
    if not isinstance(doc, dict):
        require(principal, "rule_view")
        return
    require(principal, "rule_view", rule_target(doc).uid)
    _check_kv_templates(principal, {k: doc.get(k) for k in ("criteria", "action")}, "rules")


async def config_write(request: Request, principal: Principal) -> None:
    """Writing a pack config: ``pack_config`` on the pack, and its templates (rendered for
    every action of the pack, whoever runs it) may not decrypt or read unviewable keys."""
    value = str(next(iter(request.path_params.values()), ""))
    require(principal, "pack_config", f"pack:{value}")
    _check_kv_templates(principal, await body_json(request), "pack configs")


def document(resource_type: str, permission: str) -> Any:
    """Creating pack content (``{"pack": ..., "name": ...}``): the permission on its uid, so a
    grant on the pack covers it."""

    async def check(request: Request, principal: Principal) -> None:
        body = await body_json(request)
        if not isinstance(body, dict) or not body.get("pack") or not body.get("name"):
            require(principal, permission)
            return
        require(principal, permission, f"{resource_type}:{body['pack']}:{body['name']}")

    return check


def packs_in_body(permission: str) -> Any:
    """``{"packs": [...]}`` bodies: the permission on every pack named (global when none)."""

    async def check(request: Request, principal: Principal) -> None:
        body = await body_json(request)
        names = body.get("packs") if isinstance(body, dict) else None
        if not isinstance(names, list) or not names:
            require(principal, permission)
            return
        for name in names:
            ref = str(name).rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
            ref = ref.removeprefix("stackstorm-")
            require(principal, permission, f"pack:{ref}")

    return check


async def _inquiry_check(request: Request, principal: Principal, permission: str) -> None:
    value = str(next(iter(request.path_params.values()), ""))
    try:
        inquiry = await get_runtime(request).workflows.inquiries.get(value)
    except NotFoundError:
        return
    # The users and roles an inquiry names are its own access list (StackStorm's).
    if principal.user in inquiry.users or set(principal.roles) & set(inquiry.roles):
        return
    require(principal, permission, f"inquiry:{value}")


async def inquiry_view(request: Request, principal: Principal) -> None:
    await _inquiry_check(request, principal, "inquiry_view")


async def inquiry_respond(request: Request, principal: Principal) -> None:
    await _inquiry_check(request, principal, "inquiry_respond")
