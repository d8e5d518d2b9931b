"""Workflow conductor cost per state change, pure and in memory (no database).

Scenarios:

* sequential workflows of 100 and 1,000 tasks (``when: <% succeeded() %>`` plus a publish on
  every transition): cost per transition — report ``running``, report ``succeeded``, fetch
  the next task — in memory; with incremental change sets encoded to JSON after each event
  (``pop_changes``: what an engine persisting per-task rows writes — constant per event);
  and with the whole state going through JSON between events (``serialize`` → ``json`` →
  ``from_state``: grows with the history, which is why engines should persist
  incrementally and keep conductors warm);
* with-items over 1,000 and 10,000 items (concurrency 50): cost per item over the first
  and the last 10% of the items (constant cost per item means the two match);
* 200 parallel branches joined by one ``join: all`` task: cost per branch, first vs last
  branches.

Usage: ``python bench/conductor_bench.py [--quick]`` (``--quick`` runs small sizes in a few
seconds for CI). Targets: < 50 µs per transition on the 100-task workflow (upstream
Orquesta: 4.4 ms), per-item and per-branch costs flat from start to end.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import time
from collections.abc import Callable

from squall.workflow import WorkflowConductor, compile_workflow
from squall.workflow.workflow import Workflow

US = 1e6


def sequential(n: int) -> str:
    lines = ["version: 1.0", "input:", "  - seed: 0", "tasks:"]
    for i in range(n):
        lines += [f"  t{i}:", "    action: core.noop"]
        if i + 1 < n:
            lines += [
                "    next:",
                "      - when: <% succeeded() %>",
                "        publish: last=<% result() %>",
                f"        do: t{i + 1}",
            ]
    lines += ["output:", "  - last: <% ctx().last %>"]
    return "\n".join(lines) + "\n"


def with_items(concurrency: int) -> str:
    return f"""
version: 1.0
input:
  - xs
tasks:
  each:
    with:
      items: x in <% ctx(xs) %>
      concurrency: {concurrency}
    action: core.echo message=<% item(x) %>
    next:
      - when: <% succeeded() %>
        publish: count=<% result().len() %>
output:
  - count: <% ctx().count %>
"""


def parallel(n: int) -> str:
    lines = ["version: 1.0", "tasks:", "  start:", "    action: core.noop", "    next:"]
    lines.append("      - do: " + ", ".join(f"b{i}" for i in range(n)))
    for i in range(n):
        lines += [
            f"  b{i}:",
            "    action: core.noop",
            "    next:",
            "      - when: <% succeeded() %>",
            f"        publish: v{i}=<% result() %>",
            "        do: done",
        ]
    lines += ["  done:", "    join: all", "    action: core.noop"]
    return "\n".join(lines) + "\n"


Reload = Callable[[WorkflowConductor], WorkflowConductor]


def memory(c: WorkflowConductor) -> WorkflowConductor:
    return c


def run_sequential(workflow: Workflow, reload: Reload) -> list[float]:
    """Seconds per transition (event pair + next-task fetch) along a sequential run."""
    conductor = WorkflowConductor(workflow, {"seed": 1})
    conductor.request_workflow_status("running")
    conductor.pop_changes()
    requests = conductor.get_next_tasks()
    times = []
    while requests:
        (request,) = requests
        start = time.perf_counter()
        conductor.update_task_state(request.task_id, request.route, "running")
        conductor = reload(conductor)
        conductor.update_task_state(request.task_id, request.route, "succeeded", {"n": 1})
        requests = conductor.get_next_tasks()
        conductor = reload(conductor)
        times.append(time.perf_counter() - start)
    assert conductor.status == "succeeded", conductor.errors
    return times


def json_round_trip(workflow: Workflow) -> Reload:
    def reload(c: WorkflowConductor) -> WorkflowConductor:
        return WorkflowConductor.from_state(workflow, json.loads(json.dumps(c.serialize())))

    return reload


def incremental(c: WorkflowConductor) -> WorkflowConductor:
    json.dumps(c.pop_changes())  # what a per-row store writes for this event
    return c


def run_items(count: int, concurrency: int) -> list[float]:
    """Seconds per item: report it done, start the next one."""
    conductor = WorkflowConductor(
        compile_workflow(with_items(concurrency)), {"xs": list(range(count))}
    )
    conductor.request_workflow_status("running")
    running: list[int] = []

    def dispatch() -> None:
        for request in conductor.get_next_tasks():
            for action in request.actions:
                conductor.update_task_state("each", 0, "running", item_id=action.item_id)
                running.append(action.item_id or 0)

    dispatch()
    times = []
    while running:
        item_id = running.pop(0)
        start = time.perf_counter()
        conductor.update_task_state("each", 0, "succeeded", item_id * 2, item_id=item_id)
        dispatch()
        times.append(time.perf_counter() - start)
    assert conductor.status == "succeeded", conductor.errors
    return times


def run_parallel(n: int) -> list[float]:
    """Seconds per branch completion into the join."""
    conductor = WorkflowConductor(compile_workflow(parallel(n)))
    conductor.request_workflow_status("running")
    conductor.get_next_tasks()
    conductor.update_task_state("start", 0, "running")
    conductor.update_task_state("start", 0, "succeeded")
    branches = conductor.get_next_tasks()
    for request in branches:
        conductor.update_task_state(request.task_id, request.route, "running")
    times = []
    for request in branches:
        start = time.perf_counter()
        conductor.update_task_state(request.task_id, request.route, "succeeded", 1)
        conductor.get_next_tasks()
        times.append(time.perf_counter() - start)
    (join,) = conductor.get_next_tasks()
    assert join.task_id == "done"
    return times


def mean_us(values: list[float]) -> float:
    return sum(values) / len(values) * US if values else 0.0


def median_us(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] * US if ordered else 0.0


def edges(values: list[float]) -> tuple[float, float]:
    """Median of the first and of the last 10% (at least one value each)."""
    k = max(1, len(values) // 10)
    return median_us(values[:k]), median_us(values[-k:])


def best_of(repeat: int, fn: Callable[[], list[float]]) -> list[float]:
    runs = []
    for _ in range(repeat):
        gc.collect()
        runs.append(fn())
    return min(runs, key=lambda r: sum(r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = 1 if quick else 3
    rows: list[tuple[str, str, str, str]] = []

    for n in (100,) if quick else (100, 1000):
        workflow = compile_workflow(sequential(n))
        run_sequential(workflow, memory)  # warm caches
        mem = best_of(repeat, functools.partial(run_sequential, workflow, memory))
        inc = best_of(repeat, functools.partial(run_sequential, workflow, incremental))
        rt = best_of(1, functools.partial(run_sequential, workflow, json_round_trip(workflow)))
        for label, times in (
            ("in memory", mem),
            ("incremental changes", inc),
            ("full JSON round trip", rt),
        ):
            first, last = edges(times)
            rows.append(
                (
                    f"sequential {n} tasks, {label}",
                    f"{mean_us(times):.1f}",
                    f"{first:.1f}",
                    f"{last:.1f}",
                )
            )

    for count in (1000,) if quick else (1000, 10000):
        times = best_of(repeat, functools.partial(run_items, count, 50))
        first, last = edges(times)
        rows.append(
            (
                f"with-items {count} items, per item",
                f"{mean_us(times):.1f}",
                f"{first:.1f}",
                f"{last:.1f}",
            )
        )

    branches = 50 if quick else 200
    times = best_of(repeat, functools.partial(run_parallel, branches))
    first, last = edges(times)
    rows.append(
        (
            f"{branches} branches joined, per branch",
            f"{mean_us(times):.1f}",
            f"{first:.1f}",
            f"{last:.1f}",
        )
    )

    header = ("scenario", "mean µs", "first 10% (median)", "last 10% (median)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
