"""Every Orquesta rehearsal spec of the shared conformance corpus must pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from squall.workflow.rehearsal import compare, load_spec, rehearse

REPO = Path(__file__).resolve().parents[3]
_CANDIDATES = [
    REPO.parent / "shared" / "conformance" / "orquesta",
    Path("/work/shared/conformance/orquesta"),
]
CORPUS = Path(
    os.environ.get("SQUALL_CONFORMANCE_DIR")
    or next((c for c in _CANDIDATES if (c / "specs").is_dir()), _CANDIDATES[0])
)
SPECS = sorted((CORPUS / "specs").glob("*.yaml")) if (CORPUS / "specs").is_dir() else []


def test_corpus_is_present() -> None:
    if not SPECS:
        message = (
            f"Orquesta conformance corpus not found at {CORPUS} "
            "(set SQUALL_CONFORMANCE_DIR; CI has it at ../shared/conformance/orquesta)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert len(SPECS) >= 96


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_rehearsal_spec_passes(spec_path: Path) -> None:
    spec = load_spec(spec_path, CORPUS)
    differences = compare(spec, rehearse(spec))
    assert not differences, "\n".join(differences)


# Corpus workflows that have no spec upstream (README: "Squall must run them correctly all the
# same"), with the outcome Orquesta's semantics give.
EXTRA_SPECS = {
    "publish_error": """
workflow: workflows/inline-publish-error.yaml
expected_task_sequence: [task1]
expected_workflow_status: failed
expected_errors:
  - type: error
    message: 'YaqlEvaluationException: Unable to evaluate expression ''<% ctx().foobar.fubar %>''.
      NoFunctionRegisteredException: Unknown function "#property#fubar"'
    task_id: task1
    route: 0
    task_transition_id: task2__t0
""",
    "with_items_cycle": """
workflow: workflows/inline-with-items-cycle.yaml
mock_action_executions:
  - task_id: task1
    item_id: 0
    status: failed
expected_task_sequence: [init, task1, task1]
expected_errors:
  - type: error
    message: Execution failed. See result for details.
    task_id: task1
""",
    "splits_nested_fail_in_one_route": """
workflow: workflows/splits-nested.yaml
mock_action_executions:
  - task_id: task9
    seq_id: 17
    status: failed
expected_task_sequence: [task1, task2, task3, task4__r1, task4__r2, task5__r1, task5__r2,
  task6__r1, task6__r2, task7__r3, task7__r4, task7__r5, task7__r6, task8__r3, task8__r4,
  task8__r5, task8__r6, task9__r3, task9__r4, task9__r5, task9__r6]
expected_routes: [[], [task2__t0], [task3__t0], [task2__t0, task5__t0],
  [task3__t0, task5__t0], [task2__t0, task6__t0], [task3__t0, task6__t0]]
expected_workflow_status: failed
expected_errors:
  - {type: error, message: Execution failed. See result for details., task_id: task9}
  - type: error
    message: 'UnreachableJoinError: The join task|route "task10|3" is partially satisfied but
      unreachable.'
    task_id: task10
    route: 3
  - type: error
    message: 'UnreachableJoinError: The join task|route "task10|4" is partially satisfied but
      unreachable.'
    task_id: task10
    route: 4
  - type: error
    message: 'UnreachableJoinError: The join task|route "task10|5" is partially satisfied but
      unreachable.'
    task_id: task10
    route: 5
  - type: error
    message: 'UnreachableJoinError: The join task|route "task10|6" is partially satisfied but
      unreachable.'
    task_id: task10
    route: 6
""",
    "multi_items_fail_inspection": """
workflow: workflows/with-multi-items.yaml
expected_task_sequence: []
expected_inspection_errors:
  expressions:
    - type: yaql
      expression: <% item(member), item(message) %>
      message: "Parse error: unexpected ',' at position 12 of expression
        'item(member), item(message)'"
      spec_path: tasks.task1.input
      schema_path: properties.tasks.patternProperties.^\\w+$.properties.input
""",
}


@pytest.mark.parametrize("name", sorted(EXTRA_SPECS))
def test_corpus_workflows_without_upstream_specs(name: str, tmp_path: Path) -> None:
    if not SPECS:
        pytest.skip(f"Orquesta conformance corpus not found at {CORPUS}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(EXTRA_SPECS[name])
    spec = load_spec(path, CORPUS)
    differences = compare(spec, rehearse(spec))
    assert not differences, "\n".join(differences)
