"""Micro-benchmark: trivial Python actions per second through the warm worker pool.

Usage: ``python bench/python_runner_bench.py [--quick] [--runs N] [--workers W]``.
Runs ``N`` executions of a trivial ``Action`` (returns a small dict) with ``W`` executions in
flight over ``W`` warm workers, after one warm-up run per worker, and prints actions/s.
``--quick`` is the smoke mode CI runs (few runs, no threshold).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext
from squall.runners.python_pool import WorkerPool
from squall.runners.python_runner import PythonScriptRunner

ACTION = """
from st2common.runners.base_action import Action


class Trivial(Action):
    def run(self, n):
        return {"n": n, "ok": True}
"""


class _Sink:
    async def write(self, stream: str, data: str) -> None:
        return None


class _NoDatastore:
    async def get_value(self, name: str, **kw: Any) -> str | None:
        return None

    async def set_value(self, name: str, value: str, **kw: Any) -> bool:
        return True

    async def delete_value(self, name: str, **kw: Any) -> bool:
        return False

    async def list_values(self, **kw: Any) -> list[dict[str, Any]]:
        return []


def _ctx(pack: Path, n: int) -> RunContext:
    return RunContext(
        execution_id=f"bench-{n}",
        action_ref="bench.trivial",
        pack="bench",
        runner_type="python-script",
        entry_point="trivial.py",
        pack_path=pack,
        runner_parameters={"timeout": 60},
        action_parameters={"n": n},
        parameter_specs={},
        output=_Sink(),
        datastore=_NoDatastore(),
        env={"ST2_ACTION_EXECUTION_ID": f"bench-{n}", "ST2_ACTION_PACK_NAME": "bench"},
    )


async def bench(runs: int, workers: int) -> float:
    """Return trivial Python actions per second."""
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "bench"
        (pack / "actions").mkdir(parents=True)
        (pack / "actions" / "trivial.py").write_text(ACTION)
        async with WorkerPool(max_workers=workers) as pool:
            runner = PythonScriptRunner(pool)
            warm = [runner.run(_ctx(pack, -i)) for i in range(workers)]
            await asyncio.gather(*warm)
            queue = iter(range(runs))
            failures = 0

            async def lane() -> None:
                nonlocal failures
                for n in queue:
                    res = await runner.run(_ctx(pack, n))
                    if res.status != ExecutionStatus.SUCCEEDED:
                        failures += 1

            started = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(workers)))
            elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{failures} of {runs} runs failed")
    return runs / elapsed


def main() -> int:
    """Parse arguments, run the benchmark, print the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 100 runs")
    parser.add_argument("--runs", type=int, default=None, help="executions (default 3000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    runs = args.runs or (100 if args.quick else 3000)
    rate = asyncio.run(bench(runs, args.workers))
    print(f"python-script: {rate:.0f} trivial actions/s ({runs} runs, {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
