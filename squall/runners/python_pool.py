"""Pools of warm Python workers, keyed by interpreter path.

Workers start lazily, one per concurrent execution, up to ``max_workers`` in total across all
interpreters (a pack virtualenv, or Squall's own Python). When the pool is full and an
execution needs an interpreter that has no idle worker, an idle worker of another interpreter
is retired to make room; otherwise the execution waits for a worker to come back. A worker is
recycled after ``max_runs_per_worker`` executions (bounding leaks in action code), and a
worker that crashed, timed out or was cancelled is never reused.
"""

from __future__ import annotations

import asyncio
import contextlib

from squall.errors import RunnerError
from squall.runners.base import DatastoreClient, OutputSink
from squall.runners.process import DEFAULT_OUTPUT_LIMIT
from squall.runners.python_host import PythonOutcome, PythonRequest, Worker

__all__ = ["WorkerPool"]


class WorkerPool:
    """Bounded, lazily started pools of warm Python workers.

    Args:
        max_workers: workers alive at most, all interpreters together.
        max_runs_per_worker: executions a worker serves before it is replaced.
        output_limit: bytes of output kept and streamed per stream and execution.
    """

    def __init__(
        self,
        *,
        max_workers: int = 4,
        max_runs_per_worker: int = 500,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_runs_per_worker < 1:
            raise ValueError("max_runs_per_worker must be at least 1")
        self.max_workers = max_workers
        self.max_runs_per_worker = max_runs_per_worker
        self._output_limit = output_limit
        self._idle: dict[str, list[Worker]] = {}
        self._busy: set[Worker] = set()
        self._slots = 0  # workers alive or starting
        self._cond = asyncio.Condition()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        """Workers alive or starting."""
        return self._slots

    def idle_pids(self, interpreter: str) -> list[int]:
        """Process ids of the idle workers of ``interpreter`` (for tests and metrics)."""
        return [w.pid for w in self._idle.get(interpreter, [])]

    async def run(
        self,
        interpreter: str,
        request: PythonRequest,
        *,
        sink: OutputSink,
        datastore: DatastoreClient,
        time_limit: float | None = None,
    ) -> PythonOutcome:
        """Run ``request`` in a worker of ``interpreter``.

        Raises:
            RunnerError: the pool is closed or no worker could be started.
        """
        worker = await self._acquire(interpreter)
        try:
            return await worker.execute(
                request,
                sink=sink,
                datastore=datastore,
                time_limit=time_limit,
                output_limit=self._output_limit,
            )
        finally:
            await self._release(worker)

    async def close(self) -> None:
        """Stop every worker. Idempotent; running executions are killed."""
        async with self._cond:
            self._closed = True
            idle = [w for ws in self._idle.values() for w in ws]
            busy = list(self._busy)
            self._idle.clear()
            self._cond.notify_all()
        await asyncio.gather(
            *(w.close() for w in idle), *(w.kill() for w in busy), return_exceptions=True
        )
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _acquire(self, interpreter: str) -> Worker:
        async with self._cond:
            while True:
                if self._closed:
                    raise RunnerError("the Python worker pool is closed")
                idle = self._idle.get(interpreter)
                while idle:
                    worker = idle.pop()
                    if worker.alive:
                        self._busy.add(worker)
                        return worker
                    self._slots -= 1
                if self._slots < self.max_workers:
                    self._slots += 1
                    break
                victim = self._pop_idle_other(interpreter)
                if victim is not None:
                    self._retire(victim)  # its slot passes to the new worker
                    break
                await self._cond.wait()
        try:
            worker = await Worker.start(interpreter)
        except BaseException:
            async with self._cond:
                self._slots -= 1
                self._cond.notify()
            raise
        async with self._cond:
            if self._closed:
                self._slots -= 1
                self._retire(worker)
                raise RunnerError("the Python worker pool is closed")
            self._busy.add(worker)
        return worker

    async def _release(self, worker: Worker) -> None:
        async with self._cond:
            self._busy.discard(worker)
            reusable = not self._closed and worker.alive and worker.runs < self.max_runs_per_worker
            if reusable:
                self._idle.setdefault(worker.interpreter, []).append(worker)
            else:
                self._slots -= 1
                if worker.alive:
                    self._retire(worker)
            self._cond.notify()

    def _pop_idle_other(self, interpreter: str) -> Worker | None:
        for other, workers in self._idle.items():
            if other != interpreter and workers:
                return workers.pop(0)
        return None

    def _retire(self, worker: Worker) -> None:
        task = asyncio.create_task(worker.close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def __aenter__(self) -> WorkerPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.close()
