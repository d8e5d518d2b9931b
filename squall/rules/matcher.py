"""Compiled rules indexed by trigger, matched per trigger instance.

A :class:`RuleSet` indexes enabled rules by trigger type, then by trigger identity (type +
parameters: a webhook's ``url``, a timer's schedule), so matching an event only evaluates the
rules listening to that trigger.

Within a trigger, rules sharing a static ``equals`` criterion on the same key are bucketed by
its pattern: an event evaluates only the rules whose pattern equals its value, plus the rules
without such a criterion. Cheap criteria are evaluated before ``search`` and templated ones.
Evaluation short-circuits, so a criterion after a failing one is not evaluated and cannot
report an error.

Backstop rules (``type: {ref: backstop}``) are evaluated only when no standard rule matched.
A rule whose evaluation failed counts as not matched (as in StackStorm) and is reported in
:attr:`MatchResult.errors` for the engine to record as a failed enforcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from squall.errors import Issue, RuleError
from squall.rules.criteria import Check, Criterion, EvalContext, RuleEvaluationError
from squall.rules.paths import MISSING
from squall.rules.rule import (
    BACKSTOP,
    STANDARD,
    WEBHOOK_TRIGGER,
    CompiledRule,
    TriggerSpec,
    compile_rule,
    trigger_key,
)

__all__ = [
    "BACKSTOP",
    "STANDARD",
    "WEBHOOK_TRIGGER",
    "CompiledRule",
    "MatchResult",
    "RuleMatchError",
    "RuleSet",
    "TriggerSpec",
    "compile_rule",
    "trigger_key",
]

_INDEXABLE = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class RuleMatchError:
    """A rule whose criteria could not be evaluated for this event."""

    rule: CompiledRule
    error: RuleEvaluationError


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The outcome of matching one event.

    Attributes:
        matched: The rules to enforce, ordered by ref.
        errors: Rules that failed to evaluate (record a failed enforcement each).
        backstop: True when ``matched`` are backstop rules (no standard rule matched).
    """

    matched: tuple[CompiledRule, ...] = ()
    errors: tuple[RuleMatchError, ...] = ()
    backstop: bool = False

    def __bool__(self) -> bool:
        return bool(self.matched)


_Entry = tuple[int, CompiledRule, tuple[Check, ...]]


class _Partition:
    """Rules of one kind (standard or backstop) for one trigger, with an equality index."""

    __slots__ = ("get", "index", "rest")

    def __init__(self, rules: list[CompiledRule]) -> None:
        ordered = sorted(rules, key=lambda r: r.ref)
        counts: dict[str, int] = {}
        for rule in ordered:
            for path in {c.path.path for c in rule.criteria if _indexable(c)}:
                counts[path] = counts.get(path, 0) + 1
        best = max(counts, key=lambda p: counts[p], default=None)
        self.get: Any = None
        self.index: dict[Any, list[_Entry]] = {}
        self.rest: list[_Entry] = []
        if best is not None and counts[best] < 2:
            best = None
        for ordinal, rule in enumerate(ordered):
            pivot = None
            if best is not None:
                pivot = next(
                    (c for c in rule.criteria if _indexable(c) and c.path.path == best), None
                )
            if pivot is None:
                self.rest.append((ordinal, rule, rule.checks))
                continue
            self.get = pivot.path.getter
            checks = tuple(ch for ch in rule.checks if ch is not pivot.check)
            self.index.setdefault(pivot.pattern, []).append((ordinal, rule, checks))

    def run(self, payload: Any, ctx: EvalContext, errors: list[RuleMatchError]) -> list[_Entry]:
        found: list[_Entry] = []
        hit: list[_Entry] | None = None
        if self.get is not None:
            value = self.get(payload)
            if value is not MISSING:
                try:
                    hit = self.index.get(value)
                except TypeError:  # unhashable value: equals no indexed (scalar) pattern
                    hit = None
        for group in (hit, self.rest):
            if not group:
                continue
            for entry in group:
                try:
                    for check in entry[2]:
                        if not check(payload, ctx):
                            break
                    else:
                        found.append(entry)
                except RuleEvaluationError as exc:
                    errors.append(RuleMatchError(entry[1], exc.for_rule(entry[1].ref)))
        if hit and self.rest and len(found) > 1:
            found.sort(key=lambda e: e[0])
        return found


def _indexable(c: Criterion) -> bool:
    return (
        c.operator.name == "equals"
        and not c.templated
        and isinstance(c.pattern, _INDEXABLE)
        and c.pattern == c.pattern  # not NaN
    )


class _Group:
    __slots__ = ("backstop", "rules", "standard")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        self.standard = _Partition([r for r in rules if not r.is_backstop])
        self.backstop = _Partition([r for r in rules if r.is_backstop])


class _TypeIndex:
    __slots__ = ("all", "by_key")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.all = _Group(rules)
        keyed: dict[str, list[CompiledRule]] = {}
        for rule in rules:
            keyed.setdefault(rule.trigger.key, []).append(rule)
        self.by_key = {k: _Group(v) for k, v in keyed.items()}


class RuleSet:
    """Compiled rules indexed for matching. Not thread-safe; mutate between matches."""

    def __init__(self) -> None:
        self._rules: dict[str, CompiledRule] = {}
        self._types: dict[str, _TypeIndex] = {}

    @classmethod
    def build(cls, rules: Iterable[CompiledRule | Mapping[str, Any]]) -> RuleSet:
        """Compile (if needed) and index rules.

        Raises:
            RuleError: a rule document is invalid, or two rules share a ref.
        """
        ruleset = cls()
        for rule in rules:
            compiled = rule if isinstance(rule, CompiledRule) else compile_rule(rule)
            if compiled.ref in ruleset._rules:
                raise RuleError(
                    f"duplicate rule {compiled.ref}", issues=[Issue("duplicate ref", path="name")]
                )
            ruleset._rules[compiled.ref] = compiled
        for trigger_type in {r.trigger.type for r in ruleset._rules.values()}:
            ruleset._reindex(trigger_type)
        return ruleset

    def _reindex(self, trigger_type: str) -> None:
        rules = [r for r in self._rules.values() if r.enabled and r.trigger.type == trigger_type]
        if rules:
            self._types[trigger_type] = _TypeIndex(rules)
        else:
            self._types.pop(trigger_type, None)

    def add(self, rule: CompiledRule | Mapping[str, Any]) -> CompiledRule:
        """Add or replace (by ref) one rule; only its trigger type is re-indexed."""
        compiled = rule if isinstance(rule, CompiledRule) else compile_rule(rule)
        old = self._rules.get(compiled.ref)
        self._rules[compiled.ref] = compiled
        if old is not None and old.trigger.type != compiled.trigger.type:
            self._reindex(old.trigger.type)
        self._reindex(compiled.trigger.type)
        return compiled

    replace = add

    def remove(self, ref: str) -> CompiledRule | None:
        """Remove a rule by ref; returns it (None if absent)."""
        old = self._rules.pop(ref, None)
        if old is not None:
            self._reindex(old.trigger.type)
        return old

    def get(self, ref: str) -> CompiledRule | None:
        """The rule with this ref, enabled or not."""
        return self._rules.get(ref)

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(sorted(self._rules.values(), key=lambda r: r.ref))

    def __contains__(self, ref: object) -> bool:
        return ref in self._rules

    def triggers(self, trigger_type: str | None = None) -> list[TriggerSpec]:
        """The distinct triggers enabled rules listen to (e.g. the timers to schedule)."""
        seen: dict[str, TriggerSpec] = {}
        for rule in self._rules.values():
            if rule.enabled and (trigger_type is None or rule.trigger.type == trigger_type):
                seen.setdefault(rule.trigger.key, rule.trigger)
        return [seen[k] for k in sorted(seen)]

    def rules_for(
        self,
        trigger_type: str,
        trigger_parameters: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> list[CompiledRule]:
        """Enabled rules listening to a trigger type (and to these parameters when given)."""
        group = self._group(trigger_type, trigger_parameters, key)
        return sorted(group.rules, key=lambda r: r.ref) if group else []

    def _group(
        self, trigger_type: str, params: Mapping[str, Any] | None, key: str | None
    ) -> _Group | None:
        index = self._types.get(trigger_type)
        if index is None:
            return None
        if key is None and params is None:
            return index.all
        return index.by_key.get(key if key is not None else trigger_key(trigger_type, params))

    def match(
        self,
        trigger_type: str,
        payload: Any,
        *,
        trigger_parameters: Mapping[str, Any] | None = None,
        trigger: str | None = None,
        kv: Any = None,
        now: datetime | None = None,
    ) -> MatchResult:
        """Match one trigger instance.

        Args:
            trigger_type: The trigger type ref (``core.st2.webhook``).
            payload: The trigger payload.
            trigger_parameters: The instance's trigger parameters (``{"url": "deploy"}``):
                only rules listening to exactly these parameters are considered. None: every
                rule of the type.
            trigger: Alternatively, the trigger identity (:attr:`TriggerSpec.key`).
            kv: A :class:`squall.expr.kv.KVSnapshot` for ``st2kv`` in patterns.
            now: Reference time for ``timediff_*`` (default: the clock, read once).

        Returns:
            The matched rules (standard ones, or backstop ones when no standard rule
            matched) and the evaluation errors.
        """
        group = self._group(trigger_type, trigger_parameters, trigger)
        if group is None:
            return _NO_MATCH
        payload = {} if payload is None else payload
        ctx = EvalContext(payload, kv=kv, now=now)
        errors: list[RuleMatchError] = []
        found = group.standard.run(payload, ctx, errors)
        backstop = False
        if not found and (group.backstop.rest or group.backstop.index):
            found = group.backstop.run(payload, ctx, errors)
            backstop = bool(found)
        if not found and not errors:
            return _NO_MATCH
        return MatchResult(tuple(e[1] for e in found), tuple(errors), backstop)


_NO_MATCH = MatchResult()
