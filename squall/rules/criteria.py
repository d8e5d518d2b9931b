"""Rule criteria: compiled once, evaluated per trigger instance.

``criteria`` maps a key path (see :mod:`squall.rules.paths`) to ``{type, pattern}``; all
criteria must hold (logical AND). Compilation rejects bad rules with a
:class:`~squall.errors.RuleError` whose issues point at ``criteria.<key>.type``,
``criteria.<key>.pattern`` or ``criteria.<key>.condition``. Evaluation never raises for a
missing value: a path that does not resolve makes the criterion false (``nexists``: true).

A string pattern containing Jinja is rendered per evaluation with ``trigger`` (the payload),
``st2kv`` (the datastore snapshot) and, inside ``search``, ``item``. Rendering or operator
failures raise :class:`RuleEvaluationError`, which the rules engine records as a failed rule
enforcement with its message.

``search`` applies child criteria (keys rooted at ``item``) to each element of a list (an
object is treated as a one-element list). ``condition``: ``any`` — some element matches all
children; ``all`` — every element matches all children; ``all2any`` — every element matches
at least one child; ``any2any`` — some element matches some child. As in StackStorm an empty
list satisfies ``all`` and ``all2any``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from squall.errors import DomainError, Issue, RuleError
from squall.rules import _expr
from squall.rules.operators import (
    SEARCH,
    SEARCH_CONDITIONS,
    Operator,
    PatternError,
    get_operator,
)
from squall.rules.paths import MISSING, KeyPath, KeyPathError, parse_key

__all__ = [
    "Check",
    "Criterion",
    "EvalContext",
    "RuleEvaluationError",
    "compile_criteria",
    "evaluate_criteria",
]


class RuleEvaluationError(RuleError):
    """A criterion could not be evaluated (pattern render failure, operator type error).

    Attributes:
        key: The criterion key as written in the rule.
        operator: The operator name as written.
        reason: What went wrong.
        rule_ref: The rule, when known (the matcher fills it in).
    """

    def __init__(self, key: str, operator: str, reason: str, *, rule_ref: str | None = None):
        where = f"rule {rule_ref}: " if rule_ref else ""
        super().__init__(
            f"{where}criterion {key!r} ({operator}): {reason}",
            issues=[Issue(reason, path=f"criteria.{key}")],
        )
        self.key = key
        self.operator = operator
        self.reason = reason
        self.rule_ref = rule_ref

    def for_rule(self, rule_ref: str) -> RuleEvaluationError:
        """The same error, naming the rule."""
        return RuleEvaluationError(self.key, self.operator, self.reason, rule_ref=rule_ref)


class EvalContext:
    """Per-event evaluation state: the payload, datastore snapshot and a fixed ``now``.

    Args:
        payload: The trigger payload.
        kv: A :class:`squall.expr.kv.KVSnapshot` for ``st2kv`` in patterns (None: empty).
        now: The time ``timediff_*`` measures against (None: the clock, read once).
    """

    __slots__ = ("_now", "_template_context", "kv", "payload")

    def __init__(self, payload: Any, *, kv: Any = None, now: datetime | None = None) -> None:
        self.payload = payload
        self.kv = kv
        self._now = now
        self._template_context: dict[str, Any] | None = None

    @property
    def now(self) -> datetime:
        """The evaluation time (aware, UTC), fixed for the whole event."""
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    def template_context(self) -> dict[str, Any]:
        """The Jinja context for patterns: ``trigger``, ``st2kv`` (and legacy ``system``)."""
        if self._template_context is None:
            if self.kv is None:
                from squall.expr.kv import KVSnapshot

                self.kv = KVSnapshot()
            root = self.kv.root
            self._template_context = {
                "trigger": self.payload,
                "st2kv": root,
                "system": root.lookup_attr("system"),
            }
        return self._template_context


#: A compiled criterion: ``(root_value, ctx) -> bool``; raises :class:`RuleEvaluationError`.
Check = Callable[[Any, EvalContext], bool]


@dataclass(frozen=True, slots=True, eq=False)
class Criterion:
    """One compiled criterion.

    Attributes:
        key: The key as written (with any ``#tag``).
        path: The parsed key path.
        operator: The operator.
        type: The operator name as written in the rule.
        pattern: The pattern as written (unrendered).
        templated: Whether the pattern is rendered per event.
        condition: The ``search`` condition, else None.
        children: The ``search`` child criteria.
        check: The compiled evaluation function.
    """

    key: str
    path: KeyPath
    operator: Operator
    type: str
    pattern: Any
    templated: bool
    condition: str | None
    children: tuple[Criterion, ...]
    check: Check

    def __repr__(self) -> str:
        return f"Criterion({self.key!r}, {self.type!r}, {self.pattern!r})"

    @property
    def cost(self) -> int:
        """Relative evaluation cost, used to evaluate cheap criteria first."""
        if self.templated:
            return 2
        return 1 if self.children else 0

    def evaluate(self, payload: Any, ctx: EvalContext | None = None) -> bool:
        """Evaluate against a payload.

        Raises:
            RuleEvaluationError: the pattern failed to render or the operator failed.
        """
        return self.check(payload, ctx or EvalContext(payload))


def _failure(key: str, op: str, exc: BaseException) -> RuleEvaluationError:
    if isinstance(exc, RuleEvaluationError):
        return RuleEvaluationError(key, op, f"{exc.key} ({exc.operator}): {exc.reason}")
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return RuleEvaluationError(key, op, text)


def _static_check(path: KeyPath, op: Operator, type_: str, pattern: Any) -> Check:
    get = path.getter
    test = op.bind(pattern)
    when_missing = op.when_missing
    key = path.key

    def check(root: Any, ctx: EvalContext, _missing: Any = MISSING) -> bool:
        value = get(root)
        if value is _missing:
            return when_missing
        try:
            return test(value, ctx)
        except Exception as exc:
            raise _failure(key, type_, exc) from exc

    return check


def _templated_check(path: KeyPath, op: Operator, type_: str, template: str) -> Check:
    get = path.getter
    bind = op.bind
    when_missing = op.when_missing
    key = path.key
    root_name = path.root

    def check(root: Any, ctx: EvalContext, _missing: Any = MISSING) -> bool:
        value = get(root)
        if value is _missing:
            return when_missing
        try:
            context = ctx.template_context()
            if root_name != "trigger":
                context = {**context, root_name: root}
            pattern = _expr.render_native(template, context)
            return bind(pattern)(value, ctx)
        except Exception as exc:
            raise _failure(key, type_, exc) from exc

    return check


def _search_check(
    path: KeyPath, type_: str, condition: str, children: tuple[Criterion, ...]
) -> Check:
    get = path.getter
    over_items, over_children = SEARCH_CONDITIONS[condition]
    checks = tuple(c.check for c in children)
    key = path.key

    def check(root: Any, ctx: EvalContext, _missing: Any = MISSING) -> bool:
        value = get(root)
        if value is _missing or value is None:
            return False
        if isinstance(value, Mapping):
            items: Any = (value,)
        elif isinstance(value, list | tuple):
            items = value
        else:
            raise RuleEvaluationError(
                key, type_, f"search needs a list or an object, got {value!r:.80}"
            )
        try:
            return over_items(over_children(c(item, ctx) for c in checks) for item in items)
        except RuleEvaluationError as exc:
            raise _failure(key, type_, exc) from exc

    return check


def compile_criteria(
    raw: Any, *, path: str = "criteria", roots: tuple[str, ...] = ("trigger",)
) -> tuple[Criterion, ...]:
    """Compile a rule's ``criteria`` mapping.

    Args:
        raw: The ``criteria`` value from the rule (None or a mapping).
        path: The field path prefix for issues.
        roots: Allowed key roots (``trigger``; ``item`` inside ``search``).

    Returns:
        The compiled criteria in declaration order.

    Raises:
        RuleError: one issue per bad criterion (unknown operator, malformed key, bad regex,
            template syntax error, ``search`` without ``condition`` or ``pattern``).
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise RuleError(
            "criteria must be a mapping of key → {type, pattern}",
            issues=[Issue(f"expected a mapping, got {type(raw).__name__}", path=path)],
        )
    issues: list[Issue] = []
    compiled: list[Criterion] = []
    for key, spec in raw.items():
        criterion = _compile_one(key, spec, path, roots, issues)
        if criterion is not None:
            compiled.append(criterion)
    if issues:
        summary = issues[0].message if len(issues) == 1 else f"{len(issues)} problems"
        raise RuleError(f"invalid criteria: {summary}", issues=issues)
    return tuple(compiled)


def _compile_one(
    key: Any, spec: Any, base: str, roots: tuple[str, ...], issues: list[Issue]
) -> Criterion | None:
    here = f"{base}.{key}"
    if not isinstance(key, str):
        issues.append(Issue(f"criteria keys must be strings, got {key!r}", path=here))
        return None
    try:
        kpath = parse_key(key, roots=roots)
    except KeyPathError as exc:
        issues.append(Issue(str(exc), path=here))
        return None
    if not isinstance(spec, Mapping) or "type" not in spec:
        issues.append(
            Issue(
                f"criterion {key!r} needs a mapping with 'type' (and 'pattern')",
                path=f"{here}.type",
            )
        )
        return None
    type_ = spec["type"]
    try:
        op = get_operator(type_)
    except KeyError as exc:
        issues.append(Issue(str(exc.args[0]), path=f"{here}.type"))
        return None
    pattern = spec.get("pattern")
    if op.name == SEARCH:
        return _compile_search(kpath, type_, op, spec, here, issues)
    if op.needs_pattern and pattern is None:
        issues.append(Issue(f"operator {type_!r} needs a pattern", path=f"{here}.pattern"))
        return None
    templated = isinstance(pattern, str) and _expr.is_template(pattern)
    try:
        if isinstance(pattern, str) and templated:
            _expr.check_template(pattern)
            check = _templated_check(kpath, op, type_, pattern)
        else:
            check = _static_check(kpath, op, type_, pattern)
    except PatternError as exc:
        issues.append(Issue(str(exc), path=f"{here}.pattern"))
        return None
    except DomainError as exc:  # a template syntax error (ExpressionError)
        issues.append(Issue(exc.message, path=f"{here}.pattern"))
        return None
    return Criterion(key, kpath, op, type_, pattern, templated, None, (), check)


def _compile_search(
    kpath: KeyPath,
    type_: str,
    op: Operator,
    spec: Mapping[str, Any],
    here: str,
    issues: list[Issue],
) -> Criterion | None:
    conditions = ", ".join(SEARCH_CONDITIONS)
    condition = spec.get("condition")
    ok = True
    if condition is None:
        issues.append(Issue(f"search needs a 'condition' ({conditions})", path=f"{here}.type"))
        ok = False
    elif not isinstance(condition, str) or condition.lower() not in SEARCH_CONDITIONS:
        issues.append(
            Issue(
                f"unknown search condition {condition!r}; use one of {conditions}",
                path=f"{here}.condition",
            )
        )
        ok = False
    pattern = spec.get("pattern")
    if not isinstance(pattern, Mapping) or not pattern:
        issues.append(
            Issue(
                "search needs a 'pattern' mapping of item.* child criteria", path=f"{here}.pattern"
            )
        )
        return None
    before = len(issues)
    children = tuple(
        c
        for k, v in pattern.items()
        if (c := _compile_one(k, v, f"{here}.pattern", ("item",), issues)) is not None
    )
    if not ok or len(issues) > before:
        return None
    assert isinstance(condition, str)
    cond = condition.lower()
    check = _search_check(kpath, type_, cond, children)
    return Criterion(kpath.key, kpath, op, type_, pattern, False, cond, children, check)


def evaluate_criteria(
    criteria: tuple[Criterion, ...],
    payload: Any,
    *,
    kv: Any = None,
    now: datetime | None = None,
) -> bool:
    """Evaluate compiled criteria (AND) against a payload.

    Args:
        criteria: From :func:`compile_criteria`.
        payload: The trigger payload.
        kv: Datastore snapshot for ``st2kv`` in patterns.
        now: Reference time for ``timediff_*``.

    Raises:
        RuleEvaluationError: a criterion could not be evaluated.
    """
    ctx = EvalContext(payload, kv=kv, now=now)
    return all(c.check(payload, ctx) for c in criteria)
