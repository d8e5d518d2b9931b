"""Webhook ingest and webhook → rule → core.noop end to end, on ``squall up`` (SQLite).

* Ingest: 16 concurrent connections (wrk) POST to a webhook whose rule matches nothing; every
  202 means the trigger instance was committed. Reports webhooks/s accepted.
* End to end: the same load on a webhook whose rule runs ``core.noop``; reports executions/s
  completed (all succeeded, none lost) and, at a fixed 200 webhooks/s, the latency from the
  webhook being accepted to the execution starting (p50/p99).

Usage: ``python bench/webhooks_bench.py [--quick]`` (needs ``wrk`` for the load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from harness import Server, emit, percentile, squall_up

PACKS = Path(__file__).resolve().parent / "packs"
TERMINAL = "succeeded,failed,timeout,abandoned,canceled"
WEBHOOK = "core.st2.webhook"


def _script(token: str, body: dict[str, object]) -> Path:
    text = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Auth-Token"] = "{token}"\n'
    )
    fd, path = tempfile.mkstemp(suffix=".lua")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(path)


async def _wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    text = out.decode()
    non2xx = 0
    for line in text.splitlines():
        if "Non-2xx" in line:
            non2xx = int(line.split()[-1])
    requests = int(next(ln for ln in text.splitlines() if "requests in" in ln).split()[0])
    return {"requests": float(requests), "non_2xx": float(non2xx)}


async def _count(client: httpx.AsyncClient, path: str, **params: object) -> int:
    resp = await client.get(path, params={**params, "limit": 1})
    resp.raise_for_status()
    return int(resp.headers["x-total-count"])


async def ingest(server: Server, seconds: float) -> dict[str, float]:
    script = _script(server.token, {"kind": "metric", "value": 42})
    started = time.perf_counter()
    result = await _wrk(f"{server.url}/api/v1/webhooks/bench/ingest", script, seconds, 16)
    elapsed = time.perf_counter() - started
    script.unlink()
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        stored = await _count(client, "/api/v1/triggerinstances", trigger_type=WEBHOOK)
    return {
        "accepted": result["requests"] - result["non_2xx"],
        "non_2xx": result["non_2xx"],
        "accepted_per_s": (result["requests"] - result["non_2xx"]) / elapsed,
        "stored_instances": float(stored),
    }


async def end_to_end(server: Server, seconds: float) -> dict[str, float]:
    script = _script(server.token, {"kind": "alert", "host": "web1"})
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        before = await _count(c, "/api/v1/executions", action="core.noop")
        stored_before = await _count(c, "/api/v1/triggerinstances", trigger_type=WEBHOOK)
        started = time.perf_counter()
        result = await _wrk(f"{server.url}/api/v1/webhooks/bench/e2e", script, seconds, 16)
        # wrk stops counting with requests in flight: their 202s arrive after it stops, so
        # what was accepted is what was stored once the server has settled.
        accepted = -1.0
        while time.perf_counter() - started < seconds + 120:
            stored = await _count(c, "/api/v1/triggerinstances", trigger_type=WEBHOOK)
            terminal = await _count(c, "/api/v1/executions", action="core.noop", status=TERMINAL)
            if stored - stored_before == accepted and terminal - before >= accepted:
                break
            accepted = float(stored - stored_before)
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        done = await _count(c, "/api/v1/executions", action="core.noop", status="succeeded")
    script.unlink()
    return {
        "webhooks_answered_by_wrk": result["requests"] - result["non_2xx"],
        "webhooks_accepted": accepted,
        "executions_succeeded": float(done - before),
        "lost": accepted - (done - before),
        "completed_per_s": (done - before) / elapsed,
    }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def latency(server: Server, rate: float, seconds: float) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as c:
        marker = f"lat-{time.time_ns()}"
        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(
                    c.post("/api/v1/webhooks/bench/e2e", json={"kind": "alert", "m": marker})
                )
            )
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 60
        samples: list[float] = []
        while time.perf_counter() < deadline:
            docs = (
                await c.get(
                    "/api/v1/executions",
                    params={"action": "core.noop", "limit": n, "status": TERMINAL},
                )
            ).json()
            mine = [d for d in docs if d.get("context", {}).get("trigger_instance")]
            if len(mine) >= n:
                break
            await asyncio.sleep(0.2)
        instances = {
            t["id"]: t
            for t in (
                await c.get(
                    "/api/v1/triggerinstances",
                    params={"trigger_type": "core.st2.webhook", "limit": n},
                )
            ).json()
        }
        for doc in mine[:n]:
            ti = instances.get(doc["context"]["trigger_instance"]["id"])
            if ti is None:
                continue
            running = next(e["timestamp"] for e in doc["log"] if e["status"] == "running")
            samples.append((_ts(running) - _ts(ti["occurrence_time"])).total_seconds() * 1000)
    return {
        "rate_per_s": rate,
        "samples": float(len(samples)),
        "accepted_to_started_p50_ms": percentile(samples, 50),
        "accepted_to_started_p99_ms": percentile(samples, 99),
    }


async def main(quick: bool) -> None:
    if shutil.which("wrk") is None:
        print("wrk is required for this benchmark (apt-get install wrk); skipping")
        return
    seconds = 3 if quick else 15
    with squall_up(packs_path=[PACKS]) as server:
        emit("webhook ingest (wrk, 16 connections)", await ingest(server, seconds))
    with squall_up(packs_path=[PACKS]) as server:
        emit(
            "webhook -> rule -> core.noop (wrk, 16 connections)", await end_to_end(server, seconds)
        )
        emit(
            "webhook accepted -> execution started",
            await latency(server, 200.0, 2 if quick else 10),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run for CI")
    asyncio.run(main(parser.parse_args().quick))
