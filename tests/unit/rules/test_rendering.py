"""The action-parameter rendering context of a matched rule."""

from __future__ import annotations

import pytest

from squall.errors import ParameterError
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot
from squall.rules import action_render_context, compile_rule, render_action_parameters

RULE = compile_rule(
    {
        "name": "restart",
        "pack": "ops",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": "alert"}},
        "action": {
            "ref": "linux.service",
            "parameters": {
                "host": "{{ trigger.body.host }}",
                "count": "{{ trigger.body.count }}",
                "message": "{{ action_context.user }} via {{ action_context.rule.name }}",
                "token": "{{ st2kv.system.api_token }}",
                "region": "{{ config_context.region }}",
                "nested": {"ids": ["{{ trigger.body.count + 1 }}", "static"]},
                "literal": 5,
            },
        },
    },
    id="r1",
)


def test_context_shape() -> None:
    ctx = action_render_context(
        RULE,
        {"body": {"host": "web1"}},
        trigger_instance_id="ti9",
        user="stanley",
        trace_context={"id": "tr1", "trace_tag": "deploy-42"},
        config={"region": "eu"},
    )
    assert set(ctx) == {"trigger", "st2kv", "action_context", "config_context"}
    assert ctx["action_context"] == {
        "trigger_instance": {"id": "ti9", "name": None},
        "rule": {"id": "r1", "name": "restart"},
        "user": "stanley",
        "pack": "linux",  # the action's pack, as StackStorm
        "trace_context": {"id": "tr1", "trace_tag": "deploy-42"},
    }
    assert ctx["config_context"] == {"region": "eu"}


def test_render_parameters() -> None:
    kv = KVSnapshot({KeyRef("system", None, "api_token"): KVEntry("s3cret")})
    ctx = action_render_context(
        RULE,
        {"body": {"host": "web1", "count": 2}},
        trigger_instance_id="ti9",
        user="stanley",
        kv=kv,
        config={"region": "eu"},
    )
    assert render_action_parameters(RULE, ctx) == {
        "host": "web1",
        "count": 2,  # a lone expression keeps its type
        "message": "stanley via restart",
        "token": "s3cret",
        "region": "eu",
        "nested": {"ids": [3, "static"]},
        "literal": 5,
    }


def test_render_failure_names_the_parameter() -> None:
    ctx = action_render_context(
        RULE, {"body": {"host": "web1"}}, trigger_instance_id=None, user="stanley"
    )
    with pytest.raises(ParameterError) as info:
        render_action_parameters(RULE, ctx)
    paths = {i.path for i in info.value.issues}
    assert "action.parameters.region" in paths  # config_context has no region
    assert "action.parameters.nested" in paths  # count + 1 on an undefined count
