"""Squall's workflow conductor against upstream Orquesta's, same workflows, one run.

The peer is the conductor of ``orquesta`` 1.2.0 (the newest release on PyPI, 2020; the
engine StackStorm runs), in its own virtualenv ``.venv-orquesta`` pinned by
``constraints-orquesta.txt`` and built on first use by ``scripts/peer-orquesta-venv``. It runs
on Python 3.11 only with three runtime shims (no file of it is modified; see
``bench/peers/orquesta_upstream.py``). Both engines run the scenarios of
``bench/conductor_bench.py`` — its workflow generators and, for Squall, its driving loops —
on byte-identical definitions (the YAML text is handed to the peer on stdin), pure and in
memory, in one process each, one after the other:

* a sequential workflow (``when: <% succeeded() %>`` and a publish on every transition):
  cost per transition in memory, and with the whole state through JSON between events
  (Squall: ``serialize`` → JSON → ``from_state``; Orquesta: ``serialize`` → JSON →
  ``WorkflowConductor.deserialize``, which StackStorm does for every event; its state
  carries the spec and the graph, rebuilt each time, where Squall's ``from_state`` reuses
  the compiled workflow);
* with-items at concurrency 50: cost per item (its ``succeeded`` event, releasing and
  starting the next item);
* parallel branches joined by one ``join: all`` task: cost per branch;

and, for each, the time to start a run: parse, inspect and compile the definition (Orquesta
composes its graph here), request ``running``, fetch the first tasks.

The ratio is Orquesta's mean over Squall's mean on the same steps. Upstream runs have a
time cap (its costs grow with the size of the run); a capped run is reported as such, with
its mean and the ratio taken over the steps it completed (Squall's mean over the same first
steps). Squall keeps the best of 3 runs after a warm-up (like conductor_bench); Orquesta
the best of 3 only where a run takes seconds, else one run.

Usage: ``python bench/orquesta_peer_bench.py [--quick]`` (``--quick``: small sizes, under
~30 s including building ``.venv-orquesta``; without network it skips the peer with a note).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from conductor_bench import (
    best_of,
    edges,
    json_round_trip,
    mean_us,
    median_us,
    memory,
    parallel,
    run_items,
    run_parallel,
    run_sequential,
    sequential,
    with_items,
)
from harness import ROOT, emit

from squall.workflow import WorkflowConductor, compile_workflow, parse_workflow
from squall.workflow.spec import load_definition

PEER = ROOT / "bench" / "peers" / "orquesta_upstream.py"
PEER_PYTHON = ROOT / ".venv-orquesta" / "bin" / "python"
BUILD = ROOT / "scripts" / "peer-orquesta-venv"
CONCURRENCY = 50


@dataclass
class Upstream:
    """One run of the peer script: its seconds per step, or why there are none."""

    times: list[float]
    total: int
    start: float = 0.0
    capped: bool = False
    deadline: float | None = None
    skipped: str = ""
    shims: tuple[str, ...] = ()


def build_peer_venv(quick: bool) -> str:
    """Build ``.venv-orquesta`` if missing or stale; return why the peer is skipped, or ""."""
    print("==> upstream Orquesta peer: checking .venv-orquesta (scripts/peer-orquesta-venv)")
    started = time.monotonic()
    env = {**os.environ, "PYTHON": sys.executable}  # the peer runs on Squall's Python
    if quick:  # offline, fail fast instead of pip's minutes of retries
        env = {"PIP_TIMEOUT": "10", "PIP_RETRIES": "1", **env}
    proc = subprocess.run([str(BUILD)], env=env, check=False, timeout=600)
    if proc.returncode != 0:
        if quick:
            reason = f"could not build .venv-orquesta (exit {proc.returncode}; no network?)"
            print(f"note: {reason}; skipping the upstream peer", file=sys.stderr)
            return reason
        raise SystemExit(f"scripts/peer-orquesta-venv failed (exit {proc.returncode})")
    print(f"    ready in {time.monotonic() - started:.1f} s")
    return ""


def upstream(
    scenario: str,
    text: str,
    size: int,
    *,
    reload: str = "memory",
    repeat: int = 1,
    deadline: float,
    skip: str = "",
) -> Upstream:
    """Run ``scenario`` on upstream Orquesta in ``.venv-orquesta``; the definition on stdin."""
    if skip:
        return Upstream([], size, skipped=skip)
    cmd = [str(PEER_PYTHON), str(PEER), scenario, "--size", str(size), "--reload", reload]
    cmd += ["--concurrency", str(CONCURRENCY), "--repeat", str(repeat)]
    cmd += ["--deadline", str(deadline)]
    # The cap is checked between steps: allow the step in flight (seconds for a large
    # with-items task) and the import before killing the run outright.
    try:
        proc = subprocess.run(
            cmd,
            input=text,
            capture_output=True,
            text=True,
            timeout=deadline * repeat + 120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Upstream([], size, skipped=f"killed after {deadline * repeat + 120:.0f} s")
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"upstream Orquesta peer failed on {scenario} {size}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return Upstream(
        data["times"],
        data["total"],
        data["start_seconds"],
        data["capped"],
        deadline,
        shims=tuple(data["shims"]),
    )


def squall_start(text: str, inputs: dict[str, object] | None = None) -> float:
    """Seconds to start a run (best of 3): parse, inspect and compile the YAML, request
    ``running``, fetch the first tasks.

    The counterpart of the peer's ``start_seconds`` (parse, inspect, compose the graph).
    Through a parsed spec, so compile_workflow's by-content cache of compiled definitions
    does not answer; the process is warm (expression caches), as a running engine is.
    """
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        workflow = compile_workflow(parse_workflow(load_definition(text)))
        conductor = WorkflowConductor(workflow, inputs)
        conductor.request_workflow_status("running")
        conductor.get_next_tasks()
        best = min(best, time.perf_counter() - began)
    return best


def compare(name: str, squall: list[float], start: float, peer: Upstream | None) -> tuple[str, ...]:
    """Emit one scenario (per-step µs, both engines, and the ratio); return a summary row."""
    s_first, s_last = edges(squall)
    results: dict[str, object] = {
        "squall start ms": start * 1e3,
        "squall mean µs": mean_us(squall),
        "squall first 10% µs (median)": s_first,
        "squall last 10% µs (median)": s_last,
        "squall steps": len(squall),
    }
    row: tuple[str, ...]
    if peer is None:
        results["orquesta"] = "not run at this size (too slow)"
        row = (name, f"{mean_us(squall):.1f}", "", "", f"{start * 1e3:.1f}", "", "not run")
    elif peer.skipped:
        results["orquesta"] = f"skipped: {peer.skipped}"
        row = (name, f"{mean_us(squall):.1f}", "", "", f"{start * 1e3:.1f}", "", "skipped")
    else:
        done = len(peer.times)
        k = max(1, peer.total // 10)
        # Like for like: over the steps the peer completed when its run was capped.
        ratio = mean_us(peer.times) / mean_us(squall[:done])
        results["orquesta start ms"] = peer.start * 1e3
        results["orquesta mean µs"] = mean_us(peer.times)
        if done >= k:
            results["orquesta first 10% µs (median)"] = median_us(peer.times[:k])
        if not peer.capped:
            results["orquesta last 10% µs (median)"] = edges(peer.times)[1]
        results["orquesta steps"] = f"{done}/{peer.total}" + (
            f" (capped at {peer.deadline:.0f} s)" if peer.capped else ""
        )
        results["ratio orquesta/squall (mean)"] = ratio
        if peer.capped:
            results["ratio over"] = f"the first {done} steps on both engines"
        row = (
            name,
            f"{mean_us(squall[:done]) if peer.capped else mean_us(squall):.1f}",
            f"{mean_us(peer.times):.1f}",
            f"×{ratio:.0f}",
            f"{start * 1e3:.1f}",
            f"{peer.start * 1e3:.1f}",
            f"capped: first {done}/{peer.total} steps" if peer.capped else "",
        )
    emit(f"conductor vs upstream Orquesta 1.2.0: {name}", results)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under ~30 s")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = 1 if quick else 3
    cap = 5.0 if quick else 60.0
    skip = build_peer_venv(quick)
    rows: list[tuple[str, ...]] = []
    peers: list[Upstream] = []

    def peer_run(
        scenario: str, text: str, size: int, reload: str = "memory", repeat: int = 1
    ) -> Upstream:
        run = upstream(scenario, text, size, reload=reload, repeat=repeat, deadline=cap, skip=skip)
        peers.append(run)
        return run

    for n in (20,) if quick else (100, 1000):
        text = sequential(n)
        start = squall_start(text, {"seed": 1})
        workflow = compile_workflow(text)
        run_sequential(workflow, memory)  # warm caches
        mem = best_of(repeat, functools.partial(run_sequential, workflow, memory))
        rows.append(
            compare(
                f"sequential {n} tasks, in memory, per transition",
                mem,
                start,
                peer_run("sequential", text, n, repeat=repeat if n <= 100 else 1),
            )
        )
        rt = best_of(1, functools.partial(run_sequential, workflow, json_round_trip(workflow)))
        rows.append(
            compare(
                f"sequential {n} tasks, full JSON round trip, per transition",
                rt,
                start,
                peer_run("sequential", text, n, reload="json") if n <= 100 else None,
            )
        )

    for count in (60,) if quick else (1000, 10000):
        text = with_items(CONCURRENCY)
        start = squall_start(text, {"xs": list(range(count))})
        times = best_of(repeat, functools.partial(run_items, count, CONCURRENCY))
        peer = peer_run("with-items", text, count) if count <= 1000 else None
        name = f"with-items {count} items, concurrency 50, per item"
        rows.append(compare(name, times, start, peer))

    branches = 20 if quick else 200
    text = parallel(branches)
    start = squall_start(text)
    times = best_of(repeat, functools.partial(run_parallel, branches))
    peer = peer_run("parallel", text, branches, repeat=repeat)
    rows.append(compare(f"{branches} branches joined, per branch", times, start, peer))

    print("\n== summary: upstream Orquesta 1.2.0 vs Squall, same workflows, this run")
    header = (
        "scenario",
        "Squall µs/step",
        "Orquesta µs/step",
        "ratio",
        "Squall start ms",
        "Orquesta start ms",
        "",
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
    print(
        f"µs/step: mean per transition, item or branch. start: parse, inspect and compile the"
        f" definition (graph included), request running, first tasks. Upstream runs capped"
        f" at {cap:.0f} s each, start included; a capped run's mean and ratio cover the steps"
        " it completed, Squall's over the same steps."
    )
    shims = next((p.shims for p in peers if p.shims), ())
    if shims:
        print("orquesta 1.2.0 ran on Python 3.11 with these runtime shims (its files untouched):")
        for shim in shims:
            print(f"  - {shim}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
