"""The rehearsal runner: spec loading, comparison and the CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.workflow.rehearsal import RehearsalError, compare, load_spec, main, rehearse

WORKFLOW = """
version: 1.0
tasks:
  task1:
    action: core.noop
    next:
      - when: <% succeeded() %>
        publish: x=<% result() %>
        do: task2
  task2:
    action: core.noop
output:
  - x: <% ctx().x %>
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    return tmp_path


def write(base: Path, text: str) -> Path:
    path = base / "spec.yaml"
    path.write_text(text)
    return path


def test_passing_spec(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        base,
        """
workflow: wf.yaml
mock_action_executions:
  - task_id: task1
    result: 42
expected_task_sequence: [task1, task2]
expected_output: {x: 42}
expected_term_tasks: [task2]
""",
    )
    spec = load_spec(path, base)
    assert compare(spec, rehearse(spec)) == []
    assert main(["-p", str(base), str(path)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_differences_are_readable(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        base,
        """
workflow: wf.yaml
mock_action_executions:
  - task_id: task1
    status: failed
expected_task_sequence: [task1, task2]
expected_errors: []
""",
    )
    spec = load_spec(path, base)
    diffs = compare(spec, rehearse(spec))
    text = "\n".join(diffs)
    assert "task sequence differ" in text and "expected 'task2', actual '<missing>'" in text
    assert "workflow status: expected 'succeeded', actual 'failed'" in text
    assert "errors differ" in text
    assert main(["-p", str(base), str(path)]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflow: wf.yaml\nexpected_task_sequence: []\nsurprise: 1\n", "surprise"),
        ("workflow: nope.yaml\nexpected_task_sequence: []\n", "Unable to open"),
        ("expected_task_sequence: []\n", "'workflow' is a required property"),
        (
            "workflow: wf.yaml\nexpected_task_sequence: []\nmock_action_executions:\n"
            "  - task_id: ghost\n",
            'names task "ghost"',
        ),
    ],
)
def test_invalid_specs_are_rejected(base: Path, text: str, message: str) -> None:
    with pytest.raises(RehearsalError, match=message):
        load_spec(write(base, text), base)


def test_seq_id_and_num_iter_select_mocks(base: Path) -> None:
    (base / "loop.yaml").write_text(
        """
version: 1.0
tasks:
  init:
    action: core.noop
    next: [{do: t}]
  t:
    action: core.noop
    next:
      - when: <% failed() %>
        do: t
"""
    )
    path = write(
        base,
        """
workflow: loop.yaml
mock_action_executions:
  - task_id: t
    status: failed
    num_iter: 2
  - task_id: t
    seq_id: 3
    status: failed
expected_task_sequence: [init, t, t, t, t]
""",
    )
    spec = load_spec(path, base)
    assert compare(spec, rehearse(spec)) == []
