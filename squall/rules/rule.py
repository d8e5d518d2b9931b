"""Rule documents compiled into :class:`CompiledRule`.

:func:`compile_rule` validates a rule document (StackStorm's rule format plus Squall's
``throttle``/``dedup``): trigger, criteria, action (parameter templates are syntax-checked),
rule type, timer parameters for timer triggers. Every problem is reported at once, each with a
field path the pack loader maps to ``file:line``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from squall.errors import DomainError, Issue, RuleError
from squall.rules import _expr
from squall.rules.criteria import (
    Check,
    Criterion,
    EvalContext,
    RuleEvaluationError,
    compile_criteria,
)
from squall.rules.storm import (
    DedupConfig,
    StormBucket,
    ThrottleConfig,
    parse_dedup,
    parse_throttle,
    storm_buckets,
)
from squall.rules.timers import TIMER_TRIGGER_TYPES, Timer, parse_timer

__all__ = [
    "BACKSTOP",
    "STANDARD",
    "WEBHOOK_TRIGGER",
    "CompiledRule",
    "TriggerSpec",
    "compile_rule",
    "parse_trigger_key",
    "trigger_key",
    "trigger_ref",
]

STANDARD = "standard"
BACKSTOP = "backstop"
WEBHOOK_TRIGGER = "core.st2.webhook"


def trigger_key(trigger_type: str, parameters: Mapping[str, Any] | None = None) -> str:
    """A trigger's identity: its type, plus its parameters in canonical JSON when it has any.

    A webhook's ``url`` is normalised without surrounding slashes, as StackStorm does.
    """
    params = dict(parameters or {})
    if trigger_type == WEBHOOK_TRIGGER:
        # A webhook is identified by its URL alone; other parameters (Squall's signature
        # settings) configure how it is received, not which events it gets.
        url = params.get("url")
        params = {"url": url.strip("/") if isinstance(url, str) else url}
    if not params:
        return trigger_type
    return (
        f"{trigger_type}:{json.dumps(params, sort_keys=True, separators=(',', ':'), default=str)}"
    )


def trigger_ref(trigger_type: str, parameters: Mapping[str, Any] | None) -> str:
    """The ref of a trigger (type + parameters): the type itself when it has no parameters,
    else the type with a short hash of the parameters (``core.st2.webhook.3f2a…``)."""
    if not parameters:
        return trigger_type
    digest = hashlib.sha1(trigger_key(trigger_type, parameters).encode()).hexdigest()[:12]
    return f"{trigger_type}.{digest}"


def parse_trigger_key(key: str) -> tuple[str, dict[str, Any]]:
    """Inverse of :func:`trigger_key`: ``(type, parameters)``."""
    trigger_type, sep, params = key.partition(":")
    if not sep:
        return key, {}
    return trigger_type, dict(json.loads(params))


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """The trigger a rule listens to: type, parameters and identity key."""

    type: str
    parameters: Mapping[str, Any]
    key: str


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A validated rule, ready to match.

    Attributes:
        ref: ``pack.name``.
        name: The rule name.
        pack: The pack.
        id: The database id, if any.
        trigger: The trigger it listens to.
        criteria: Compiled criteria, as declared.
        action_ref: The action to run.
        action_parameters: The action parameters, unrendered.
        rule_type: ``standard`` or ``backstop``.
        enabled: Disabled rules never match.
        throttle: Storm protection, or None.
        dedup: Duplicate suppression, or None.
        timer: The parsed schedule when the trigger is a timer.
        context: The rule's ``context`` mapping.
        description: The description.
        tags: The tags as given.
        checks: The criteria's evaluation functions, cheapest first.
    """

    ref: str
    name: str
    pack: str
    id: str | None
    trigger: TriggerSpec
    criteria: tuple[Criterion, ...]
    action_ref: str
    action_parameters: Mapping[str, Any]
    rule_type: str
    enabled: bool
    throttle: ThrottleConfig | None
    dedup: DedupConfig | None
    timer: Timer | None
    context: Mapping[str, Any]
    description: str | None
    tags: tuple[Any, ...]
    checks: tuple[Check, ...]

    def __repr__(self) -> str:
        return f"CompiledRule({self.ref!r}, trigger={self.trigger.key!r}, type={self.rule_type!r})"

    @property
    def is_backstop(self) -> bool:
        """Whether this is a backstop rule."""
        return self.rule_type == BACKSTOP

    def matches(self, payload: Any, *, kv: Any = None, now: datetime | None = None) -> bool:
        """Evaluate this rule's criteria against a payload (ignores ``enabled``).

        Raises:
            RuleEvaluationError: a criterion could not be evaluated.
        """
        payload = {} if payload is None else payload
        ctx = EvalContext(payload, kv=kv, now=now)
        try:
            return all(check(payload, ctx) for check in self.checks)
        except RuleEvaluationError as exc:
            raise exc.for_rule(self.ref) from exc

    def storm_buckets(self, payload: Any, *, now: datetime, kv: Any = None) -> list[StormBucket]:
        """The throttle/dedup buckets a match of this rule must pass (see :mod:`.storm`).

        Raises:
            RuleEvaluationError: the dedup key template failed to render.
        """
        return storm_buckets(self.ref, self.throttle, self.dedup, payload, now=now, kv=kv)


def _check_templates(value: Any, path: str, issues: list[Issue]) -> None:
    if isinstance(value, str):
        if _expr.is_template(value):
            try:
                _expr.check_template(value)
            except DomainError as exc:
                issues.append(Issue(exc.message, path=path))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_templates(v, f"{path}.{k}", issues)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(v, f"{path}.{i}", issues)


def _text(doc: Mapping[str, Any], name: str, issues: list[Issue], path: str | None = None) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        issues.append(
            Issue(f"{name} is required and must be a non-empty string", path=path or name)
        )
        return ""
    return value


def compile_rule(
    doc: Mapping[str, Any], *, id: str | None = None, pack: str | None = None
) -> CompiledRule:
    """Validate and compile one rule document.

    Args:
        doc: The rule (``name``, ``pack``, ``enabled``, ``trigger``, ``criteria``, ``action``,
            ``type``, ``context``, ``tags``, ``throttle``, ``dedup``). A missing ``enabled``
            means enabled: the pack loader and the API apply StackStorm's defaults.
        id: The database id, if known (else ``doc["id"]``).
        pack: The pack when the document does not say (else ``default``).

    Raises:
        RuleError: every problem found, each with a field path (``criteria.<key>.type``,
            ``trigger.parameters.hour``, ``action.ref`` …).
    """
    if not isinstance(doc, Mapping):
        raise RuleError("a rule must be a mapping", issues=[Issue("expected a mapping", path="")])
    issues: list[Issue] = []
    name = _text(doc, "name", issues)
    pack_name = doc.get("pack") or pack or "default"
    ref = f"{pack_name}.{name}"

    trigger = doc.get("trigger")
    trigger_type, trigger_params = "", {}
    if not isinstance(trigger, Mapping):
        issues.append(Issue("trigger is required: {type, parameters}", path="trigger"))
    else:
        trigger_type = _text(trigger, "type", issues, "trigger.type")
        raw_params = trigger.get("parameters") or {}
        if not isinstance(raw_params, Mapping):
            issues.append(Issue("trigger parameters must be a mapping", path="trigger.parameters"))
        else:
            trigger_params = dict(raw_params)
    timer: Timer | None = None
    if trigger_type in TIMER_TRIGGER_TYPES:
        try:
            timer = parse_timer(trigger_type, trigger_params)
        except RuleError as exc:
            issues.extend(exc.issues)

    action = doc.get("action")
    action_ref, action_params = "", {}
    if not isinstance(action, Mapping):
        issues.append(Issue("action is required: {ref, parameters}", path="action"))
    else:
        action_ref = _text(action, "ref", issues, "action.ref")
        raw_params = action.get("parameters") or {}
        if not isinstance(raw_params, Mapping):
            issues.append(Issue("action parameters must be a mapping", path="action.parameters"))
        else:
            action_params = dict(raw_params)
            _check_templates(action_params, "action.parameters", issues)

    rule_type = STANDARD
    type_doc = doc.get("type")
    if type_doc is not None:
        raw_type = type_doc.get("ref") if isinstance(type_doc, Mapping) else type_doc
        if raw_type not in (STANDARD, BACKSTOP):
            issues.append(
                Issue(f"rule type must be standard or backstop, got {raw_type!r}", path="type.ref")
            )
        else:
            rule_type = raw_type

    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.append(Issue(f"enabled must be true or false, got {enabled!r}", path="enabled"))

    criteria: tuple[Criterion, ...] = ()
    throttle = dedup = None
    for step in ("criteria", "throttle", "dedup"):
        try:
            if step == "criteria":
                criteria = compile_criteria(doc.get("criteria"))
            elif step == "throttle":
                throttle = parse_throttle(doc.get("throttle"))
            else:
                dedup = parse_dedup(doc.get("dedup"))
        except RuleError as exc:
            issues.extend(exc.issues)

    if issues:
        summary = issues[0].message if len(issues) == 1 else f"{len(issues)} problems"
        raise RuleError(f"invalid rule {ref}: {summary}", issues=issues)
    tags = doc.get("tags") or ()
    context = doc.get("context")
    return CompiledRule(
        ref=ref,
        name=name,
        pack=pack_name,
        id=id if id is not None else (str(doc["id"]) if doc.get("id") is not None else None),
        trigger=TriggerSpec(
            trigger_type, trigger_params, trigger_key(trigger_type, trigger_params)
        ),
        criteria=criteria,
        action_ref=action_ref,
        action_parameters=action_params,
        rule_type=rule_type,
        enabled=bool(enabled),
        throttle=throttle,
        dedup=dedup,
        timer=timer,
        context=dict(context) if isinstance(context, Mapping) else {},
        description=doc.get("description"),
        tags=tuple(tags) if isinstance(tags, list | tuple) else (tags,),
        checks=tuple(c.check for c in sorted(criteria, key=lambda c: c.cost)),
    )
