"""Registration-time checks of a rule against what exists: its action and trigger type.

Pure: the caller passes the known action refs and trigger types. Every problem is an
:class:`~squall.errors.Issue` with a field path (``action.ref``, ``trigger.parameters.url``)
that pack registration maps to a file line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import jsonschema

from squall.errors import Issue, RuleError
from squall.rules.rule import CompiledRule, compile_rule

__all__ = ["check_rule"]


def _schema_issues(schema: Mapping[str, Any], value: Any, path: str) -> list[Issue]:
    validator = jsonschema.Draft4Validator(schema)
    issues = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        where = ".".join([path, *(str(p) for p in err.path)])
        issues.append(Issue(err.message, path=where))
    return issues


def check_rule(
    doc: Mapping[str, Any],
    *,
    actions: Collection[str],
    trigger_types: Mapping[str, Mapping[str, Any]],
    pack: str | None = None,
) -> tuple[CompiledRule | None, list[Issue]]:
    """Compile ``doc`` and check it against the known ``actions`` and ``trigger_types``.

    ``trigger_types`` maps a trigger type ref to its document (with ``parameters_schema``).
    Returns the compiled rule (``None`` when it does not compile) and every issue found.
    """
    issues: list[Issue] = []
    compiled: CompiledRule | None = None
    try:
        compiled = compile_rule(doc, id=doc.get("id"), pack=pack)
    except RuleError as exc:
        issues.extend(exc.issues or [Issue(exc.message)])
    action = doc.get("action")
    action_ref = action.get("ref") if isinstance(action, Mapping) else None
    if isinstance(action_ref, str) and action_ref and action_ref not in actions:
        issues.append(
            Issue(
                f"unknown action {action_ref!r}; register its pack first "
                "(`squall action list` shows the actions)",
                path="action.ref",
            )
        )
    trigger = doc.get("trigger")
    trigger_type = trigger.get("type") if isinstance(trigger, Mapping) else None
    if isinstance(trigger_type, str) and trigger_type:
        info = trigger_types.get(trigger_type)
        if info is None:
            issues.append(
                Issue(
                    f"unknown trigger type {trigger_type!r} "
                    "(`squall trigger list` shows the trigger types)",
                    path="trigger.type",
                )
            )
        else:
            schema = info.get("parameters_schema")
            params = trigger.get("parameters") if isinstance(trigger, Mapping) else None
            if schema:
                issues.extend(_schema_issues(schema, dict(params or {}), "trigger.parameters"))
            elif params:
                issues.append(
                    Issue(
                        f"trigger type {trigger_type} takes no parameters",
                        path="trigger.parameters",
                    )
                )
    # Several checks may report the same thing (timer fields): keep one of each.
    unique: dict[tuple[str | None, str], Issue] = {}
    for issue in issues:
        unique.setdefault((issue.path, issue.message), issue)
    return (compiled if not unique else None), list(unique.values())
