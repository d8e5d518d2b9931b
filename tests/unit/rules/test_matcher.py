"""Rule compilation, the trigger index, backstop semantics and evaluation errors."""

from __future__ import annotations

import random
from typing import Any

import pytest

from squall.errors import RuleError
from squall.expr.kv import KeyRef, KVEntry, render_with_kv
from squall.rules import CompiledRule, RuleSet, compile_rule, trigger_key

WEBHOOK = "core.st2.webhook"


def rule(name: str, criteria: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "pack": "test",
        "trigger": {
            "type": extra.pop("trigger_type", "acme.alert"),
            "parameters": extra.pop("params", {}),
        },
        "action": {"ref": "core.noop"},
        "criteria": criteria or {},
    }
    doc.update(extra)
    return doc


def refs(result: Any) -> list[str]:
    return [r.ref for r in result.matched]


# --- compile_rule -----------------------------------------------------------------------------


def test_compile_rule_fields() -> None:
    compiled = compile_rule(
        {
            "name": "r1",
            "pack": "ops",
            "description": "d",
            "enabled": True,
            "trigger": {"type": WEBHOOK, "parameters": {"url": "/hooks/a/"}},
            "criteria": {"trigger.body.x": {"type": "eq", "pattern": 1}},
            "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.x }}"}},
            "type": {"ref": "backstop"},
            "throttle": {"count": 5, "window": "1m"},
            "tags": ["a"],
        },
        id="abc",
    )
    assert compiled.ref == "ops.r1"
    assert compiled.id == "abc"
    assert compiled.trigger.key == trigger_key(WEBHOOK, {"url": "hooks/a"})
    assert compiled.is_backstop
    assert compiled.throttle is not None and compiled.throttle.window == 60
    assert compiled.action_parameters == {"cmd": "echo {{ trigger.body.x }}"}
    assert compiled.matches({"body": {"x": 1}}) is True
    assert compiled.matches({"body": {"x": 2}}) is False


def test_compile_rule_collects_every_issue() -> None:
    with pytest.raises(RuleError) as info:
        compile_rule(
            {
                "trigger": {"type": "core.st2.CronTimer", "parameters": {"hour": "25"}},
                "criteria": {"trigger.x": {"type": "nope"}},
                "action": {"parameters": {"a": "{{ oops"}},
                "type": {"ref": "sometimes"},
                "dedup": {"key": "{{ trigger.id }}"},
            }
        )
    paths = {i.path for i in info.value.issues}
    assert paths == {
        "name",
        "trigger.parameters.hour",
        "criteria.trigger.x.type",
        "action.ref",
        "action.parameters.a",
        "type.ref",
        "dedup.window",
    }


def test_rule_defaults() -> None:
    compiled = compile_rule({"name": "r", "trigger": {"type": "t"}, "action": {"ref": "a.b"}})
    assert compiled.ref == "default.r"
    assert compiled.enabled and compiled.rule_type == "standard"
    assert compiled.criteria == () and compiled.matches({}) is True


# --- indexing by trigger ----------------------------------------------------------------------


def test_only_rules_of_the_trigger_type_are_considered() -> None:
    rs = RuleSet.build([rule("a"), rule("b", trigger_type="other.type")])
    assert refs(rs.match("acme.alert", {})) == ["test.a"]
    assert refs(rs.match("other.type", {})) == ["test.b"]
    assert refs(rs.match("unknown.type", {})) == []


def test_webhook_rules_are_keyed_by_url() -> None:
    rs = RuleSet.build(
        [
            rule("deploy", trigger_type=WEBHOOK, params={"url": "deploy"}),
            rule("deploy2", trigger_type=WEBHOOK, params={"url": "/deploy"}),
            rule("alert", trigger_type=WEBHOOK, params={"url": "alert"}),
        ]
    )
    assert refs(rs.match(WEBHOOK, {}, trigger_parameters={"url": "deploy"})) == [
        "test.deploy",
        "test.deploy2",
    ]
    assert refs(rs.match(WEBHOOK, {}, trigger_parameters={"url": "alert/"})) == ["test.alert"]
    assert refs(rs.match(WEBHOOK, {}, trigger_parameters={"url": "nothing"})) == []
    assert len(refs(rs.match(WEBHOOK, {}))) == 3  # no parameters: every rule of the type


def test_timer_rules_are_keyed_by_their_own_schedule() -> None:
    every_minute = {"unit": "minutes", "delta": 1}
    rs = RuleSet.build(
        [
            rule("t1", trigger_type="core.st2.IntervalTimer", params=every_minute),
            rule(
                "t2", trigger_type="core.st2.IntervalTimer", params={"delta": 1, "unit": "minutes"}
            ),
            rule("t3", trigger_type="core.st2.IntervalTimer", params={"unit": "hours", "delta": 1}),
        ]
    )
    triggers = rs.triggers("core.st2.IntervalTimer")
    assert len(triggers) == 2  # t1 and t2 share one trigger
    key = trigger_key("core.st2.IntervalTimer", every_minute)
    assert refs(rs.match("core.st2.IntervalTimer", {}, trigger=key)) == ["test.t1", "test.t2"]
    assert rs.get("test.t3") is not None and rs.get("test.t3").timer is not None  # type: ignore[union-attr]


def test_disabled_rules_never_match_but_stay_known() -> None:
    rs = RuleSet.build([rule("on"), rule("off", enabled=False)])
    assert refs(rs.match("acme.alert", {})) == ["test.on"]
    assert "test.off" in rs and len(rs) == 2
    assert [t.key for t in rs.triggers()] == ["acme.alert"]


def test_add_remove_replace() -> None:
    rs = RuleSet.build([rule("a", {"trigger.x": {"type": "eq", "pattern": 1}})])
    assert refs(rs.match("acme.alert", {"x": 2})) == []
    rs.replace(rule("a", {"trigger.x": {"type": "eq", "pattern": 2}}))
    assert refs(rs.match("acme.alert", {"x": 2})) == ["test.a"]
    rs.add(rule("a", trigger_type="moved.type"))
    assert refs(rs.match("acme.alert", {"x": 2})) == []
    assert refs(rs.match("moved.type", {})) == ["test.a"]
    removed = rs.remove("test.a")
    assert isinstance(removed, CompiledRule)
    assert refs(rs.match("moved.type", {})) == [] and rs.remove("test.a") is None


def test_duplicate_refs_are_rejected() -> None:
    with pytest.raises(RuleError, match="duplicate"):
        RuleSet.build([rule("a"), rule("a")])


# --- backstop ---------------------------------------------------------------------------------


def backstop_set() -> RuleSet:
    return RuleSet.build(
        [
            rule("critical", {"trigger.severity": {"type": "eq", "pattern": "critical"}}),
            rule("warning", {"trigger.severity": {"type": "eq", "pattern": "warning"}}),
            rule("catch_all", type={"ref": "backstop"}),
            rule("catch_some", {"trigger.team": {"type": "exists"}}, type={"ref": "backstop"}),
        ]
    )


def test_backstop_fires_only_when_no_standard_rule_matched() -> None:
    rs = backstop_set()
    result = rs.match("acme.alert", {"severity": "critical", "team": "x"})
    assert refs(result) == ["test.critical"] and not result.backstop
    result = rs.match("acme.alert", {"severity": "info"})
    assert refs(result) == ["test.catch_all"] and result.backstop
    result = rs.match("acme.alert", {"severity": "info", "team": "x"})
    assert refs(result) == ["test.catch_all", "test.catch_some"]


def test_backstop_fires_when_the_standard_rule_failed_to_evaluate() -> None:
    rs = RuleSet.build(
        [
            rule("broken", {"trigger.n": {"type": "startswith", "pattern": "x"}}),
            rule("fallback", type={"ref": "backstop"}),
        ]
    )
    result = rs.match("acme.alert", {"n": 5})
    assert refs(result) == ["test.fallback"]
    assert [e.rule.ref for e in result.errors] == ["test.broken"]
    assert result.errors[0].error.rule_ref == "test.broken"
    assert "startswith" in str(result.errors[0].error)


# --- evaluation -------------------------------------------------------------------------------


def test_errors_are_per_rule_and_do_not_stop_other_rules() -> None:
    rs = RuleSet.build(
        [
            rule("bad", {"trigger.x": {"type": "equals", "pattern": "{{ trigger.missing.deep }}"}}),
            rule("good", {"trigger.x": {"type": "equals", "pattern": 1}}),
        ]
    )
    result = rs.match("acme.alert", {"x": 1})
    assert refs(result) == ["test.good"]
    assert [e.rule.ref for e in result.errors] == ["test.bad"]
    assert result.errors[0].error.key == "trigger.x"


def test_matched_rules_are_ordered_by_ref() -> None:
    names = ["zeta", "alpha", "mid"]
    rs = RuleSet.build(
        [rule(n, {"trigger.k": {"type": "eq", "pattern": "v"}}) for n in names] + [rule("beta")]
    )
    assert refs(rs.match("acme.alert", {"k": "v"})) == [
        "test.alpha",
        "test.beta",
        "test.mid",
        "test.zeta",
    ]


def test_none_payload_is_an_empty_payload() -> None:
    rs = RuleSet.build([rule("n", {"trigger.x": {"type": "nexists"}})])
    assert refs(rs.match("acme.alert", None)) == ["test.n"]


def test_unhashable_value_on_an_indexed_key() -> None:
    rs = RuleSet.build(
        [rule(f"r{i}", {"trigger.k": {"type": "eq", "pattern": f"v{i}"}}) for i in range(3)]
        + [rule("list", {"trigger.k": {"type": "eq", "pattern": ["a"]}})]
    )
    assert refs(rs.match("acme.alert", {"k": ["a"]})) == ["test.list"]
    assert refs(rs.match("acme.alert", {"k": "v1"})) == ["test.r1"]
    assert refs(rs.match("acme.alert", {"k": 1.0})) == []


def test_index_agrees_with_evaluating_every_rule() -> None:
    """The equality index is an optimisation: results equal evaluating each rule."""
    rnd = random.Random(7)
    values: list[Any] = ["a", "b", "c", 1, 1.0, True, 0, None, ["a"]]
    ops = ["eq", "equals", "neq", "contains", "exists", "nexists", "inside", "gt"]
    docs = []
    for i in range(120):
        criteria: dict[str, Any] = {}
        for j in range(rnd.randint(0, 3)):
            op = rnd.choice(ops)
            key = f"trigger.{rnd.choice('kkkxy')}#{j}"
            pattern: Any = rnd.choice(["a", "b", "c", 1, True, 0])
            if op == "inside":
                pattern = rnd.sample(["a", "b", "c", 1], 2)
            criteria[key] = {"type": op, "pattern": pattern}
        docs.append(rule(f"r{i:03}", criteria, type={"ref": rnd.choice(["standard", "backstop"])}))
    rs = RuleSet.build(docs)
    compiled = list(rs)
    for _ in range(400):
        payload = {k: rnd.choice(values) for k in "kxy" if rnd.random() < 0.8}
        result = rs.match("acme.alert", payload)
        standard, backstop, errors = [], [], []
        for r in compiled:
            try:
                if r.matches(payload):
                    (backstop if r.is_backstop else standard).append(r.ref)
            except RuleError:
                errors.append(r.ref)
        expected = standard or backstop
        assert refs(result) == expected, payload
        assert result.backstop == (not standard and bool(backstop))
        reported = {e.rule.ref for e in result.errors}
        assert reported <= set(errors)


async def test_datastore_values_are_prefetched_in_two_passes() -> None:
    """The engine matches under render_with_kv: a pass records missing keys, then re-matches."""
    rs = RuleSet.build(
        [
            rule(
                "newer",
                {"trigger.build": {"type": "gt", "pattern": "{{ st2kv.system.last_build }}"}},
            ),
            rule("plain", {"trigger.build": {"type": "gt", "pattern": 1}}),
        ]
    )
    key = KeyRef("system", None, "last_build")
    fetched: list[set[KeyRef]] = []

    async def fetch(keys: set[KeyRef]) -> dict[KeyRef, KVEntry]:
        fetched.append(set(keys))
        return {key: KVEntry("41")}

    result = await render_with_kv(
        lambda kv: rs.match("acme.alert", {"build": 42}, kv=kv), fetch=fetch
    )
    assert refs(result) == ["test.newer", "test.plain"]
    assert result.errors == ()
    assert fetched == [{key}]
