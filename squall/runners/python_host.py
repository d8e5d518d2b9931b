"""The host side of one warm Python worker process.

A :class:`Worker` is one ``python_worker.py`` process (see that module for the protocol) in its
own process group. It runs one execution at a time: it streams the execution's output, answers
the action's datastore calls from the execution's :class:`DatastoreClient`, and kills itself
(the whole group) on timeout, crash or cancellation. Pooling is in
:mod:`squall.runners.python_pool`.

Workers start with a clean environment: ``PYTHONPATH`` holds only ``squall/compat`` (so
``st2common`` imports resolve) and never Squall's own site-packages, user site-packages are
off, and for a virtualenv interpreter its ``bin`` directory leads ``PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall.errors import RunnerError
from squall.runners.base import DatastoreClient, OutputSink
from squall.runners.process import DEFAULT_OUTPUT_LIMIT, StreamCapture, kill_process_group
from squall.runners.python_control import (
    ChannelClosed,
    ControlChannel,
    WorkerProcess,
    answer_rpc,
    spawn,
    worker_environment,
)
from squall.runners.python_output import StreamDemux, new_sentinel, pump

__all__ = ["WORKER_PATH", "PythonOutcome", "PythonRequest", "Worker", "worker_environment"]

WORKER_PATH = Path(__file__).with_name("python_worker.py")
_START_TIMEOUT = 60.0
#: After ``done``, how long the sentinels may take to come through the pipes.
_SENTINEL_GRACE = 10.0
_EXIT_GRACE = 5.0
_RPC_METHODS = frozenset({"get_value", "set_value", "delete_value", "list_values", "dispatch"})


@dataclass(frozen=True)
class PythonRequest:
    """One Python action to run in a worker."""

    entry_point: str
    parameters: Mapping[str, Any]
    pack_path: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PythonOutcome:
    """How a Python run ended: ``succeeded``, ``failed``, ``timeout`` or ``crashed``."""

    status: str
    result: Any
    stdout: str
    stderr: str
    exit_code: int | None = None
    error: str | None = None


class Worker:
    """One warm worker process. Use :meth:`start`; one execution at a time."""

    def __init__(
        self,
        interpreter: str,
        proc: WorkerProcess,
        channel: ControlChannel,
    ) -> None:
        self.interpreter = interpreter
        self.pid = proc.pid
        self.runs = 0
        self._proc = proc
        self._channel = channel
        self._out = StreamDemux()
        self._err = StreamDemux()
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = [
            asyncio.create_task(pump(proc.stdout, self._out)),
            asyncio.create_task(pump(proc.stderr, self._err)),
        ]

    @classmethod
    async def start(cls, interpreter: str) -> Worker:
        """Start a worker for ``interpreter`` and wait for its ``ready``.

        Raises:
            RunnerError: the interpreter is missing or the worker died while starting.
        """
        proc, channel = await spawn(interpreter, WORKER_PATH)
        worker = cls(interpreter, proc, channel)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                message = await channel.recv()
        except (TimeoutError, ChannelClosed) as exc:
            stderr = await worker._startup_stderr()
            await worker.kill()
            raise RunnerError(
                f"the Python worker for {interpreter!r} failed to start"
                f" (exit code {worker.exit_code}): {stderr.strip()[-2000:] or 'no output'}"
            ) from exc
        except BaseException:
            await worker.kill()
            raise
        if message.get("type") != "ready":
            await worker.kill()
            raise RunnerError(f"the Python worker for {interpreter!r} sent {message!r}")
        return worker

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self._proc.returncode is None

    @property
    def exit_code(self) -> int | None:
        """The process's exit status (negative: killed by that signal)."""
        return self._proc.returncode

    async def execute(
        self,
        request: PythonRequest,
        *,
        sink: OutputSink,
        datastore: DatastoreClient,
        time_limit: float | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> PythonOutcome:
        """Run one action; kill this worker on timeout, crash or cancellation."""
        self.runs += 1
        sentinel = new_sentinel()
        out = StreamCapture("stdout", sink, output_limit)
        err = StreamCapture("stderr", sink, output_limit)
        await self._out.attach(out, sentinel)
        await self._err.attach(err, sentinel)
        message = {
            "type": "run",
            "id": self.runs,
            "entry_point": request.entry_point,
            "pack_path": request.pack_path,
            "params": dict(request.parameters),
            "config": dict(request.config),
            "env": dict(request.env),
            "sentinel": sentinel,
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit if time_limit and time_limit > 0 else None
        try:
            async with asyncio.timeout_at(deadline):
                await self._channel.send(message)
                done = await self._serve(datastore)
            try:
                async with asyncio.timeout(_SENTINEL_GRACE):
                    await self._out.wait_ended()
                    await self._err.wait_ended()
            except TimeoutError:
                # The action closed or redirected fd 1/2: this worker's streams are unusable.
                await self.kill()
            return PythonOutcome(done["status"], done.get("result"), out.text, err.text, None)
        except TimeoutError:
            await self.kill()
            return PythonOutcome("timeout", None, out.text, err.text, -9)
        except (ChannelClosed, ConnectionError):
            await self.kill()
            code = self.exit_code
            tail = err.text.strip()[-2000:]
            error = (
                f"the Python worker process (pid {self.pid}) exited unexpectedly with exit code "
                f"{code} while running the action"
            )
            if tail:
                error += f"; last stderr: {tail}"
            return PythonOutcome("crashed", None, out.text, err.text, code, error)
        except BaseException:
            await self.kill()
            raise

    async def _serve(self, datastore: DatastoreClient) -> dict[str, Any]:
        while True:
            message = await self._channel.recv()
            kind = message.get("type")
            if kind == "done":
                return message
            if kind == "rpc":
                reply = await answer_rpc(datastore, message, _RPC_METHODS, service="action_service")
                await self._channel.send(reply)
            else:
                raise ChannelClosed(f"unexpected message {kind!r}")

    async def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a few seconds."""
        if self.alive:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._channel.send({"type": "exit"})
            try:
                async with asyncio.timeout(_EXIT_GRACE):
                    await self._proc.exited()
            except TimeoutError:
                pass
        await self.kill()

    async def kill(self) -> None:
        """Kill the worker's process group and release its pipes."""
        # killpg only: Process.kill() polls (waitpid) first and would steal the exit status
        # from asyncio's child watcher. The worker leads its group, so it is included.
        kill_process_group(self.pid)
        await self._proc.exited()
        self._channel.close()
        # The group is dead, so the pipes close unless something escaped the group.
        _, pending = await asyncio.wait(self._pumps, timeout=_EXIT_GRACE)
        for task in pending:
            task.cancel()
        await self._out.finish()
        await self._err.finish()

    async def _startup_stderr(self) -> str:
        capture = StreamCapture("stderr", _NullSink(), 64 * 1024)
        await self._err.attach(capture, new_sentinel())
        kill_process_group(self.pid)
        await self._proc.exited()
        await asyncio.wait(self._pumps, timeout=_EXIT_GRACE)
        return capture.text


class _NullSink:
    async def write(self, stream: str, data: str) -> None:
        return None
