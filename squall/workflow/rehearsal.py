"""Rehearsals: run a workflow offline against canned action results and compare the outcome.

The simulation is Orquesta's (``orquesta-rehearse``), which the conformance corpus pins
down: in rounds, the ready tasks (sorted by name, then route) are first all marked
``running``, then completed one by one with their mock; a with-items task finishes one item
per round. The mock for a dispatched task is the one whose ``seq_id`` is the task's position
in the sequence, else the task's first unused mock unless that one waits for a ``seq_id``.

``squall workflow rehearse`` delegates to :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall.errors import SquallError
from squall.workflow import statuses as st
from squall.workflow.conductor import WorkflowConductor
from squall.workflow.inspect import inspect_spec
from squall.workflow.rehearsal_spec import MockExecution, RehearsalError, RehearsalSpec, load_spec
from squall.workflow.requests import TaskRequest
from squall.workflow.workflow import Workflow

__all__ = [
    "RehearsalError",
    "RehearsalResult",
    "RehearsalSpec",
    "compare",
    "load_spec",
    "main",
    "rehearse",
]


@dataclass
class RehearsalResult:
    """What a rehearsal produced."""

    task_sequence: list[tuple[str, int]] = field(default_factory=list)
    routes: list[list[str]] = field(default_factory=list)
    workflow_status: str = st.UNSET
    errors: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, Any] | None = None
    term_tasks: list[tuple[str, int]] = field(default_factory=list)
    inspection_errors: dict[str, Any] = field(default_factory=dict)


def _choose_mock(spec: RehearsalSpec, task_id: str, seq_id: int) -> MockExecution | None:
    candidates = [m for m in spec.mocks if m.task_id == task_id and m.usable]
    for mock in candidates:
        if mock.seq_id == seq_id:
            return mock
    if candidates and candidates[0].seq_id is None:
        return candidates[0]
    return None


def rehearse(spec: RehearsalSpec) -> RehearsalResult:
    """Run the spec's workflow with its mocks (mocks are consumed: load again to rerun)."""
    result = RehearsalResult()
    result.inspection_errors = inspect_spec(spec.workflow_spec)
    if spec.expected_inspection_errors or result.inspection_errors:
        return result
    conductor = WorkflowConductor(Workflow.from_spec(spec.workflow_spec), spec.inputs)
    if conductor.status != st.FAILED:
        conductor.request_workflow_status(st.RUNNING)
    item_results: dict[tuple[str, int, int], int] = {}
    tasks = conductor.get_next_tasks()
    while tasks:
        dispatched: list[tuple[TaskRequest, int]] = []
        for task in tasks:
            conductor.update_task_state(task.task_id, task.route, st.RUNNING)
            dispatched.append((task, len(conductor.sequence) - 1))
        for task, seq_id in dispatched:
            _complete(spec, conductor, task, seq_id, item_results)
        tasks = conductor.get_next_tasks()
    if conductor.status in st.COMPLETED_STATUSES:
        conductor.render_workflow_output()
    result.task_sequence = [(e.task_id, e.route) for e in conductor.sequence]
    result.routes = [list(r) for r in conductor.routes]
    result.workflow_status = conductor.status
    result.errors = list(conductor.errors)
    result.output = conductor.output
    result.term_tasks = [(e.task_id, e.route) for e in conductor.get_terminal_tasks()]
    return result


def _complete(
    spec: RehearsalSpec,
    conductor: WorkflowConductor,
    task: TaskRequest,
    seq_id: int,
    item_results: dict[tuple[str, int, int], int],
) -> None:
    mock = _choose_mock(spec, task.task_id, seq_id)
    if mock is not None:
        mock.used += 1
    status = mock.status if mock is not None else st.SUCCEEDED
    value = mock.result if mock is not None else None
    if task.items_count is None:
        conductor.update_task_state(task.task_id, task.route, status, value)
        return
    if task.items_count == 0:
        conductor.update_task_state(task.task_id, task.route, st.SUCCEEDED, [])
        return
    # Items reported so far for this run of the task (a task re-entered through a cycle
    # starts over; Orquesta's harness keeps counting and runs past the last item).
    entry = conductor.get_task_entry(task.task_id, task.route)
    key = (task.task_id, task.route, entry.idx if entry is not None else -1)
    reported = item_results.get(key, 0)
    item_id = mock.item_id if mock is not None and mock.item_id is not None else reported
    item_results[key] = max(reported, item_id + 1)
    conductor.update_task_state(task.task_id, task.route, status, value, item_id=item_id)


def _name(task_id: str, route: int) -> str:
    return task_id if route == 0 else f"{task_id}__r{route}"


def _normalize(names: list[str]) -> list[str]:
    return [n if "__r" in n else f"{n}__r0" for n in names]


def compare(spec: RehearsalSpec, result: RehearsalResult) -> list[str]:
    """Differences between what the spec expects and what the rehearsal did (empty = pass)."""
    diffs: list[str] = []
    if spec.expected_inspection_errors:
        if result.inspection_errors != spec.expected_inspection_errors:
            diffs.append(
                "inspection errors differ:\n"
                f"  expected: {spec.expected_inspection_errors}\n"
                f"  actual:   {result.inspection_errors}"
            )
        return diffs
    if result.inspection_errors:
        diffs.append(f"the workflow fails inspection: {result.inspection_errors}")
        return diffs
    actual_seq = [f"{t}__r{r}" for t, r in result.task_sequence]
    if actual_seq != _normalize(spec.expected_task_sequence):
        friendly = [_name(t, r) for t, r in result.task_sequence]
        diffs.append(_list_diff("task sequence", spec.expected_task_sequence, friendly))
    if result.routes != spec.expected_routes:
        diffs.append(
            f"routes differ:\n  expected: {spec.expected_routes}\n  actual:   {result.routes}"
        )
    if result.workflow_status != spec.expected_workflow_status:
        diffs.append(
            f"workflow status: expected {spec.expected_workflow_status!r}, "
            f"actual {result.workflow_status!r}"
        )
    if spec.expected_errors is not None and result.errors != spec.expected_errors:
        diffs.append(_list_diff("errors", spec.expected_errors, result.errors))
    if spec.expected_output is not None and result.output != spec.expected_output:
        diffs.append(
            f"output differs:\n  expected: {spec.expected_output}\n  actual:   {result.output}"
        )
    if spec.expected_term_tasks is not None:
        actual_terms = sorted(f"{t}__r{r}" for t, r in result.term_tasks)
        if actual_terms != sorted(_normalize(spec.expected_term_tasks)):
            friendly = sorted(_name(t, r) for t, r in result.term_tasks)
            diffs.append(
                f"terminal tasks differ:\n  expected: {sorted(spec.expected_term_tasks)}\n"
                f"  actual:   {friendly}"
            )
    return diffs


def _list_diff(what: str, expected: list[Any], actual: list[Any]) -> str:
    lines = [f"{what} differ:"]
    for i in range(max(len(expected), len(actual))):
        exp = expected[i] if i < len(expected) else "<missing>"
        act = actual[i] if i < len(actual) else "<missing>"
        mark = "  " if exp == act or _normalize([str(exp)]) == _normalize([str(act)]) else "! "
        lines.append(f"  {mark}[{i}] expected {exp!r}, actual {act!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Rehearse spec files; prints PASS/FAIL per spec with differences. Exit 0 if all pass."""
    parser = argparse.ArgumentParser(
        prog="squall workflow rehearse", description="Run Orquesta rehearsal specs."
    )
    parser.add_argument(
        "-p",
        "--base-path",
        type=Path,
        default=None,
        help="folder that relative workflow and result paths are joined to (default: .)",
    )
    parser.add_argument("specs", nargs="+", type=Path, help="rehearsal spec file(s)")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.specs:
        try:
            spec = load_spec(path, args.base_path)
            diffs = compare(spec, rehearse(spec))
        except SquallError as exc:
            diffs = [f"error: {exc}"]
        except Exception as exc:  # a bug, but one spec must not hide the others' results
            diffs = [f"error: {type(exc).__name__}: {exc}"]
        if diffs:
            failed += 1
            print(f"FAIL {path}")
            for diff in diffs:
                print("  " + diff.replace("\n", "\n  "))
        else:
            print(f"PASS {path}")
    total = len(args.specs)
    print(f"{total - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
