"""Workflow engine throughput on ``squall up`` (SQLite), end to end with real child executions.

Every task runs ``core.noop`` as a real child execution (stored, scheduled, claimed by the
runner host, finished), and the workflow engine processes each completion in its own
transactions. Scenarios:

* a sequential workflow of 1,000 tasks: task transitions per second (target >= 500/s);
* with-items over 10,000 items at concurrency 50: total time (target < 30 s) and the time per
  item over the first and the last tenth of the items (constant cost: the two match);
* parallel branches joined by one ``join: all`` task, 50, 200 and 400 branches: time per
  branch (no quadratic slowdown: it stays flat as the branches multiply).

Usage: ``python bench/workflow_bench.py [--quick]`` (``--quick``: 200 tasks, 1,000 items,
20/80 branches, for CI). ``SQUALL_SQLITE_SYNCHRONOUS=NORMAL`` in the environment runs the
server with that setting (the default, FULL, pays an fsync per commit). Pure conductor
figures: ``bench/conductor_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import Server, emit, squall_up

TERMINAL = {"succeeded", "failed", "timeout", "abandoned", "canceled"}


def sequential(n: int) -> str:
    lines = ["version: 1.0", "tasks:"]
    for i in range(n):
        lines += [f"  t{i}:", "    action: core.noop"]
        if i + 1 < n:
            lines += ["    next:", "      - when: <% succeeded() %>", f"        do: t{i + 1}"]
    return "\n".join(lines) + "\n"


WITH_ITEMS = """\
version: 1.0
input:
  - n
  - concurrency
tasks:
  each:
    with:
      items: <% range(ctx(n)) %>
      concurrency: <% ctx(concurrency) %>
    action: core.noop
    next:
      - when: <% succeeded() %>
        publish: count=<% result().len() %>
output:
  - count: <% ctx(count) %>
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
            "        do: join",
        ]
    lines += ["  join:", "    join: all", "    action: core.noop"]
    return "\n".join(lines) + "\n"


def make_pack(root: Path, workflows: dict[str, str], params: dict[str, str]) -> Path:
    pack = root / "wfbench"
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "ref: wfbench\nname: wfbench\ndescription: workflow benchmarks\nversion: 0.1.0\n"
        "author: Squall\nemail: squall@example.com\n"
    )
    for name, text in workflows.items():
        meta = f"name: {name}\nrunner_type: orquesta\nentry_point: workflows/{name}.yaml\n"
        meta += params.get(name, "")
        (pack / "actions" / f"{name}.yaml").write_text(meta)
        (pack / "actions" / "workflows" / f"{name}.yaml").write_text(text)
    return root


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def run_workflow(
    client: httpx.AsyncClient, action: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/executions", json={"action": action, "parameters": params or {}}
    )
    resp.raise_for_status()
    execution_id = resp.json()["id"]
    while True:
        doc = (
            await client.get(
                f"/api/v1/executions/{execution_id}", params={"exclude_attributes": "result"}
            )
        ).json()
        if doc["status"] in TERMINAL:
            break
        await asyncio.sleep(0.05)
    if doc["status"] != "succeeded":
        full = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        raise RuntimeError(f"{action} ended {doc['status']}: {str(full.get('result'))[:500]}")
    return dict(doc)


def _elapsed(doc: dict[str, Any]) -> float:
    log = {e["status"]: _ts(e["timestamp"]) for e in doc["log"]}
    return (_ts(doc["end_timestamp"]) - log["running"]).total_seconds()


async def children_end_times(client: httpx.AsyncClient, execution_id: str) -> list[datetime]:
    """End timestamps of a workflow's children, in item order."""
    out: dict[int, datetime] = {}
    offset = 0
    while True:
        resp = await client.get(
            "/api/v1/executions",
            params={
                "parent": execution_id,
                "limit": 1000,
                "offset": offset,
                "sort_asc": "true",
                "include_attributes": "context,end_timestamp",
            },
        )
        page = resp.json()
        for doc in page:
            item = doc["context"]["orquesta"].get("item_id")
            if item is not None:
                out[int(item)] = _ts(doc["end_timestamp"])
        if len(page) < 1000:
            break
        offset += 1000
    return [out[i] for i in sorted(out)]


async def bench_sequential(server: Server, n: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        doc = await run_workflow(c, f"wfbench.seq{n}")
        kids = (await c.get("/api/v1/executions", params={"parent": doc["id"], "limit": 1})).headers
    if int(kids["x-total-count"]) != n:
        raise RuntimeError(f"expected {n} child executions, found {kids['x-total-count']}")
    seconds = _elapsed(doc)
    return {"tasks": n, "seconds": seconds, "transitions_per_s": n / seconds}


async def _peak_rss(server: Server, stop: asyncio.Event) -> float:
    """The server's largest resident memory (MB) seen until ``stop`` is set."""
    peak = server.own_rss_mb()
    while not stop.is_set():
        peak = max(peak, server.own_rss_mb())
        await asyncio.sleep(0.02)
    return peak


async def bench_items(server: Server, n: int, concurrency: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        baseline = server.own_rss_mb()
        stop = asyncio.Event()
        sampler = asyncio.create_task(_peak_rss(server, stop))
        started = time.perf_counter()
        doc = await run_workflow(c, "wfbench.items", {"n": n, "concurrency": concurrency})
        wall = time.perf_counter() - started
        stop.set()
        peak = await sampler
        ends = await children_end_times(c, doc["id"])
    tenth = max(2, n // 10)
    deciles = [
        (ends[min(len(ends) - 1, (k + 1) * tenth - 1)] - ends[k * tenth]).total_seconds()
        / (tenth - 1)
        * 1000
        for k in range(10)
    ]
    return {
        "items": n,
        "concurrency": concurrency,
        "seconds": _elapsed(doc),
        "wall_seconds": wall,
        "items_per_s": n / _elapsed(doc),
        # Memory the run needed above what the server held before it (MB).
        "rss_growth_mb": peak - baseline,
        # The first tenth includes the ramp-up (50 items start at once): compare the second
        # tenth with the last one.
        "ms_per_item_2nd_10pct": deciles[1],
        "ms_per_item_last_10pct": deciles[-1],
        "ms_per_item_by_tenth": " ".join(f"{d:.2f}" for d in deciles),
    }


async def bench_parallel(server: Server, n: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        doc = await run_workflow(c, f"wfbench.par{n}")
    seconds = _elapsed(doc)
    return {"branches": n, "seconds": seconds, "ms_per_branch": seconds / n * 1000}


async def main(quick: bool) -> None:
    seq_n = 200 if quick else 1000
    items_n = 1000 if quick else 10_000
    branches = (20, 80) if quick else (50, 200, 400)
    workflows = {f"seq{seq_n}": sequential(seq_n), "seq20": sequential(20), "items": WITH_ITEMS}
    workflows.update({f"par{b}": parallel(b) for b in branches})
    params = {
        "items": "parameters:\n  n: {type: integer, required: true}\n"
        "  concurrency: {type: integer, default: 50}\n"
    }
    with tempfile.TemporaryDirectory(prefix="squall-wfbench-") as tmp:
        packs = make_pack(Path(tmp), workflows, params)
        with squall_up(packs_path=[packs]) as server:
            await bench_sequential(server, 20)  # warm caches
            emit(
                f"sequential workflow, {seq_n} core.noop tasks",
                await bench_sequential(server, seq_n),
            )
            # Two sizes, smaller first: memory should grow with the items, linearly at most.
            for size in (items_n // 10, items_n):
                emit(
                    f"with-items over {size} items, concurrency 50",
                    await bench_items(server, size, 50),
                )
            for b in branches:
                emit(f"{b} parallel branches + join", await bench_parallel(server, b))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    asyncio.run(main(parser.parse_args().quick))
