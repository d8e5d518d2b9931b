"""Rule criteria, matching, storm protection and timer schedules (pure code, no I/O)."""

from __future__ import annotations

from squall.rules.criteria import (
    Criterion,
    EvalContext,
    RuleEvaluationError,
    compile_criteria,
    evaluate_criteria,
)
from squall.rules.matcher import (
    CompiledRule,
    MatchResult,
    RuleMatchError,
    RuleSet,
    TriggerSpec,
    compile_rule,
    trigger_key,
)
from squall.rules.operators import OPERATORS, get_operator, operator_names
from squall.rules.paths import MISSING, KeyPath, parse_key
from squall.rules.rendering import action_render_context, render_action_parameters
from squall.rules.storm import (
    DedupConfig,
    MemoryStormGate,
    StormBucket,
    ThrottleConfig,
    storm_buckets,
)
from squall.rules.timers import (
    TIMER_TRIGGER_TYPES,
    CronTimer,
    DateTimer,
    IntervalTimer,
    TickPlan,
    Timer,
    next_fire_after,
    parse_timer,
    plan_ticks,
)

__all__ = [
    "MISSING",
    "OPERATORS",
    "TIMER_TRIGGER_TYPES",
    "CompiledRule",
    "Criterion",
    "CronTimer",
    "DateTimer",
    "DedupConfig",
    "EvalContext",
    "IntervalTimer",
    "KeyPath",
    "MatchResult",
    "MemoryStormGate",
    "RuleEvaluationError",
    "RuleMatchError",
    "RuleSet",
    "StormBucket",
    "ThrottleConfig",
    "TickPlan",
    "Timer",
    "TriggerSpec",
    "action_render_context",
    "compile_criteria",
    "compile_rule",
    "evaluate_criteria",
    "get_operator",
    "next_fire_after",
    "operator_names",
    "parse_key",
    "parse_timer",
    "plan_ticks",
    "render_action_parameters",
    "storm_buckets",
    "trigger_key",
]
