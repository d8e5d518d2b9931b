"""Execution throughput and latency on ``squall up`` (SQLite), end to end over HTTP.

Measures:
* ``core.noop`` through the full path (request → scheduled → run → result stored), executions/s;
* a trivial Python action with warm workers, executions/s;
* request-to-start latency (p50/p99) at a fixed request rate;
* idle RSS of ``squall up`` and its start-to-ready time.

Usage: ``python bench/executions_bench.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import httpx
from harness import Server, emit, percentile, squall_up

PACKS = Path(__file__).resolve().parent / "packs"
TERMINAL = "succeeded,failed,timeout,abandoned,canceled"


async def _count_done(client: httpx.AsyncClient, action: str) -> int:
    resp = await client.get(
        "/api/v1/executions",
        params={"action": action, "status": TERMINAL, "limit": 1, "exclude_attributes": "result"},
    )
    resp.raise_for_status()
    return int(resp.headers["x-total-count"])


def _wrk_script(action: str, token: str) -> Path:
    import tempfile

    body = json.dumps({"action": action, "parameters": {}})
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Auth-Token"] = "{token}"\n'
    )
    fd, path = tempfile.mkstemp(suffix=".lua")
    with os.fdopen(fd, "w") as fh:
        fh.write(script)
    return Path(path)


async def sustained(
    server: Server, action: str, seconds: float, connections: int
) -> dict[str, float]:
    """Load with wrk (a C load generator) for ``seconds``; then wait until all complete."""
    script = _wrk_script(action, server.token)
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as client:
        before = await _count_all(client, action)
        done_before = await _count_done(client, action)
        ok_before = await _count_status(client, action, "succeeded")
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"{server.url}/api/v1/executions",
            stdout=asyncio.subprocess.PIPE,
        )
        await proc.communicate()
        accepted = time.perf_counter() - started
        # wrk stops with requests in flight: count once the number created stops changing
        # and every one of them has finished.
        total = -1
        while True:
            created = await _count_all(client, action) - before
            if created == total and await _count_done(client, action) - done_before >= total:
                break
            total = created
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        ok = await _count_status(client, action, "succeeded") - ok_before
    script.unlink()
    return {
        "executions": float(total),
        "accepted_per_s": total / accepted,
        "completed_per_s": total / elapsed,
        "drain_after_load_s": elapsed - accepted,
        "not_succeeded": float(total - ok),
    }


async def _count_status(client: httpx.AsyncClient, action: str, status: str) -> int:
    resp = await client.get(
        "/api/v1/executions",
        params={"action": action, "status": status, "limit": 1, "exclude_attributes": "result"},
    )
    resp.raise_for_status()
    return int(resp.headers["x-total-count"])


async def _count_all(client: httpx.AsyncClient, action: str) -> int:
    resp = await client.get(
        "/api/v1/executions",
        params={"action": action, "limit": 1, "exclude_attributes": "result"},
    )
    resp.raise_for_status()
    return int(resp.headers["x-total-count"])


async def throughput(server: Server, action: str, total: int, concurrency: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, limits=limits, timeout=60
    ) as client:
        before = await _count_done(client, action)
        queue = iter(range(total))

        async def worker() -> None:
            for _ in queue:
                resp = await client.post(
                    "/api/v1/executions", json={"action": action, "parameters": {}}
                )
                if resp.status_code != 201:
                    raise RuntimeError(resp.text)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        accepted = time.perf_counter() - started
        while await _count_done(client, action) - before < total:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {
        "executions": float(total),
        "accept_per_s": total / accepted,
        "complete_per_s": total / elapsed,
        "seconds": elapsed,
    }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def latency(server: Server, rate: float, seconds: float) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as client:
        ids: list[str] = []
        http_ms: list[float] = []
        tasks = []

        async def one() -> None:
            t0 = time.perf_counter()
            resp = await client.post("/api/v1/executions", json={"action": "core.noop"})
            http_ms.append((time.perf_counter() - t0) * 1000)
            ids.append(resp.json()["id"])

        n = int(rate * seconds)
        start = time.perf_counter()
        for i in range(n):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        start_ms: list[float] = []
        for execution_id in ids:
            while True:
                doc = (await client.get(f"/api/v1/executions/{execution_id}")).json()
                if doc["status"] in TERMINAL.split(","):
                    break
                await asyncio.sleep(0.05)
            stamps = {entry["status"]: _ts(entry["timestamp"]) for entry in doc["log"]}
            start_ms.append((stamps["running"] - stamps["requested"]).total_seconds() * 1000)
    return {
        "rate_per_s": rate,
        "request_to_start_p50_ms": percentile(start_ms, 50),
        "request_to_start_p99_ms": percentile(start_ms, 99),
        "http_create_p50_ms": percentile(http_ms, 50),
        "http_create_p99_ms": percentile(http_ms, 99),
    }


async def main(quick: bool) -> None:
    seconds = 3 if quick else 20
    with squall_up(packs_path=[PACKS]) as server:
        emit("startup", {"start_to_ready_s": server.ready_seconds})
        await asyncio.sleep(1.0)
        emit("idle", {"rss_mb": server.own_rss_mb(), "rss_with_children_mb": server.rss_mb()})
        if shutil.which("wrk") is None:
            print("wrk not found (apt-get install wrk): using the slower Python client")
            emit("core.noop full path", await throughput(server, "core.noop", 1000, 32))
            await throughput(server, "bench.trivial", 20, 4)
            emit("python action", await throughput(server, "bench.trivial", 300, 32))
        else:
            emit(
                "core.noop full path (wrk, 16 connections)",
                await sustained(server, "core.noop", seconds, 16),
            )
            await throughput(server, "bench.trivial", 20, 4)  # warm the Python workers
            emit(
                "python action, warm workers (wrk, 16 connections)",
                await sustained(server, "bench.trivial", seconds, 16),
            )
        emit(
            "request-to-start latency",
            await latency(server, rate=100.0, seconds=3 if quick else 10),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run for CI")
    asyncio.run(main(parser.parse_args().quick))
