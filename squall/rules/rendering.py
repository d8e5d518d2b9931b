"""The context a matched rule's action parameters are rendered with (StackStorm §6).

:func:`action_render_context` returns the template variables — ``trigger``, ``st2kv``,
``action_context`` and ``config_context`` — and :func:`render_action_parameters` renders the
rule's raw ``action.parameters`` with them. Casting to the action's parameter types and
resolving references between parameters is :mod:`squall.params`' job; pass it the same
context.

``action_context`` has StackStorm's shape: ``trigger_instance`` and ``rule`` as ``{id, name}``
references, ``user`` (rule-triggered executions run as the system user), ``pack`` (the
action's pack) and, when there is one, ``trace_context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.errors import DomainError, Issue, ParameterError
from squall.rules import _expr
from squall.rules.rule import CompiledRule

__all__ = ["action_render_context", "render_action_parameters"]


def action_render_context(
    rule: CompiledRule,
    payload: Any,
    *,
    trigger_instance_id: str | None,
    user: str,
    kv: Any = None,
    trace_context: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    trigger_instance_name: str | None = None,
) -> dict[str, Any]:
    """Build the variables a rule's action parameters see.

    Args:
        rule: The matched rule.
        payload: The trigger instance's payload.
        trigger_instance_id: The trigger instance's id.
        user: The user the execution runs as (the system user for rules).
        kv: A :class:`squall.expr.kv.KVSnapshot` for ``st2kv`` (None: an empty one).
        trace_context: ``{id, trace_tag}`` of the trace, if any.
        config: The action pack's config (``config_context``).
        trigger_instance_name: The trigger instance's name, if any.

    Returns:
        ``{"trigger", "st2kv", "action_context", "config_context"}``.
    """
    if kv is None:
        from squall.expr.kv import KVSnapshot

        kv = KVSnapshot(user=user)
    action_context: dict[str, Any] = {
        "trigger_instance": {"id": trigger_instance_id, "name": trigger_instance_name},
        "rule": {"id": rule.id, "name": rule.name},
        "user": user,
        "pack": rule.action_ref.split(".", 1)[0] if "." in rule.action_ref else rule.pack,
    }
    if trace_context is not None:
        action_context["trace_context"] = dict(trace_context)
    return {
        "trigger": {} if payload is None else payload,
        "st2kv": kv.root,
        "action_context": action_context,
        "config_context": dict(config or {}),
    }


def render_action_parameters(rule: CompiledRule, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render the rule's raw action parameters (templates become native values).

    Args:
        rule: The matched rule.
        context: From :func:`action_render_context`.

    Raises:
        ParameterError: a parameter failed to render; the issue path is
            ``action.parameters.<name>``.
    """
    rendered: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, value in rule.action_parameters.items():
        try:
            rendered[name] = _expr.render_value(value, context)
        except DomainError as exc:
            issues.append(Issue(exc.message, path=f"action.parameters.{name}"))
    if issues:
        raise ParameterError(
            f"rule {rule.ref}: cannot render action parameters: {issues[0].message}",
            issues=issues,
        )
    return rendered
