"""Action-chain parsing and stepping."""

from __future__ import annotations

import pytest

from squall.errors import WorkflowError
from squall.workflow.chain import ChainStepper, parse_chain

CHAIN = """
vars:
  greeting: "hello {{ who }}"
chain:
  - name: c1
    ref: core.local
    parameters:
      cmd: "echo {{ greeting }}"
    publish:
      said: "{{ c1.stdout }}"
    on-success: c2
    on-failure: cleanup
  - name: c2
    ref: core.local
    params:
      cmd: "echo {{ said }} {{ __results.c1.stdout }}"
      args: ["{{ who }}", 2]
  - name: cleanup
    ref: core.noop
"""


def test_success_path_publishes_and_renders() -> None:
    chain = parse_chain(CHAIN)
    assert chain.default == "c1"
    stepper = ChainStepper(chain, {"who": "bob"})
    step = stepper.start()
    assert step is not None and (step.node, step.action) == ("c1", "core.local")
    assert step.parameters == {"cmd": "echo hello bob"}
    step = stepper.record("c1", "succeeded", {"stdout": "hello bob"})
    assert step is not None and step.parameters == {
        "cmd": "echo hello bob hello bob",
        "args": ["bob", 2],
    }
    saved = stepper.to_dict()
    restored = ChainStepper.from_dict(chain, saved)
    assert restored.record("c2", "succeeded", {"stdout": "done"}) is None
    assert restored.status == "succeeded"
    assert restored.result == {
        "tasks": [
            {"id": "c1", "name": "c1", "state": "succeeded", "result": {"stdout": "hello bob"}},
            {"id": "c2", "name": "c2", "state": "succeeded", "result": {"stdout": "done"}},
        ],
        "published": {"said": "hello bob"},
    }


def test_failure_path_runs_on_failure_and_chain_fails() -> None:
    stepper = ChainStepper(parse_chain(CHAIN), {"who": "x"})
    stepper.start()
    step = stepper.record("c1", "failed", {"stderr": "boom"})
    assert step is not None and step.node == "cleanup"
    assert stepper.status == "failed"
    assert stepper.record("cleanup", "succeeded") is None
    assert stepper.status == "succeeded"  # the last node decides, as in StackStorm


def test_pause_and_resume_the_same_node() -> None:
    stepper = ChainStepper(parse_chain(CHAIN), {"who": "x"})
    stepper.start()
    assert stepper.record("c1", "paused") is None and stepper.status == "paused"
    step = stepper.resume()
    assert step is not None and step.node == "c1" and stepper.tasks == []


def test_rendering_errors_fail_the_chain() -> None:
    stepper = ChainStepper(parse_chain(CHAIN), {})
    assert stepper.start() is None
    assert stepper.status == "failed"
    assert "Failed initializing ``vars``" in (stepper.error or "")


def test_validation_errors_are_precise() -> None:
    with pytest.raises(WorkflowError) as info:
        parse_chain(
            {
                "chain": [
                    {"name": "a", "ref": "core.noop", "on-success": "zz"},
                    {"name": "a", "ref": "core.noop"},
                ],
                "default": "nope",
            },
            source="chain.yaml",
        )
    text = str(info.value)
    assert 'Unable to find node with name "zz" referenced in "on-success" in task "a"' in text
    assert 'Node name "a" is used more than once' in text
    assert 'referenced in "default"' in text
    assert "chain.yaml" in text
    with pytest.raises(WorkflowError, match="required property"):
        parse_chain({"chain": [{"name": "x"}]})


def test_default_is_first_unreferenced_node() -> None:
    chain = parse_chain(
        {"chain": [{"name": "b", "ref": "x"}, {"name": "a", "ref": "x", "on-success": "b"}]}
    )
    assert chain.default == "a"
