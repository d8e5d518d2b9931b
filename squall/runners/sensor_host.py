"""The host side of one sensor process (``sensor_worker.py``; see it for the protocol).

A :class:`SensorProcess` is one long-lived subprocess in its own process group, started with
the pack's virtualenv interpreter. It answers the sensor's ``dispatch`` and datastore calls
from a :class:`SensorBackend`, forwards trigger changes, logs every line the sensor writes to
stdout or stderr under the sensor's name, and stops it (``stop``, a grace period, then a kill
of the whole group). When the sensor exits on its own, the rest of its group is killed too.
Restarting and leases are the engine's business (:mod:`squall.engine.sensors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from squall.errors import RunnerError
from squall.runners.base import DatastoreClient
from squall.runners.process import kill_process_group
from squall.runners.python_control import (
    ChannelClosed,
    ControlChannel,
    WorkerProcess,
    answer_rpc,
    spawn,
)

__all__ = ["SENSOR_WORKER_PATH", "SensorBackend", "SensorProcess", "SensorSpec"]

log = logging.getLogger("squall.sensors")

SENSOR_WORKER_PATH = Path(__file__).with_name("sensor_worker.py")
_START_TIMEOUT = 60.0
_RPC_METHODS = frozenset({"get_value", "set_value", "delete_value", "list_values", "dispatch"})
#: Longest line of sensor output logged as is.
_MAX_LINE = 4000
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "AUDIT": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


@dataclass(frozen=True)
class SensorSpec:
    """What a sensor process needs to load and run one sensor."""

    ref: str
    pack: str
    class_name: str
    #: Absolute path of the sensor's module.
    entry_point: str
    pack_path: str | None = None
    poll_interval: float | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    #: Existing triggers of the sensor's trigger types (``add_trigger`` at start).
    triggers: Sequence[Mapping[str, Any]] = ()


class SensorBackend(DatastoreClient, Protocol):
    """Answers ``self.sensor_service`` calls: the datastore, and dispatch."""

    async def dispatch(
        self, trigger: str, payload: Any = None, trace_tag: str | None = None
    ) -> Any: ...


class SensorProcess:
    """One running sensor. Use :meth:`start`, then :meth:`wait`; :meth:`stop` to end it."""

    def __init__(
        self,
        spec: SensorSpec,
        proc: WorkerProcess,
        channel: ControlChannel,
        backend: SensorBackend,
    ) -> None:
        self.spec = spec
        self.pid = proc.pid
        #: Why the sensor could not be loaded or set up (its ``failed`` message), if it said.
        self.failure: str | None = None
        #: Set once ``setup()`` returned and ``run()`` is about to be called.
        self.running = asyncio.Event()
        self._proc = proc
        self._channel = channel
        self._backend = backend
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = [
            asyncio.create_task(_log_lines(proc.stdout, spec.ref, logging.INFO)),
            asyncio.create_task(_log_lines(proc.stderr, spec.ref, logging.WARNING)),
        ]
        self._server: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, spec: SensorSpec, *, interpreter: str, backend: SensorBackend
    ) -> SensorProcess:
        """Start the process and hand it the sensor; returns once it is loading the sensor.

        Raises:
            RunnerError: the interpreter cannot run or the process died before it was ready.
        """
        proc, channel = await spawn(interpreter, SENSOR_WORKER_PATH, cwd=spec.pack_path)
        sensor = cls(spec, proc, channel, backend)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                message = await channel.recv()
            if message.get("type") != "ready":
                raise RunnerError(f"sensor {spec.ref}: unexpected first message {message!r}")
            await channel.send(
                {
                    "type": "start",
                    "ref": spec.ref,
                    "pack": spec.pack,
                    "class_name": spec.class_name,
                    "entry_point": spec.entry_point,
                    "poll_interval": spec.poll_interval,
                    "config": dict(spec.config),
                    "triggers": [dict(t) for t in spec.triggers],
                }
            )
        except (TimeoutError, ChannelClosed, ConnectionError) as exc:
            await sensor.kill()
            raise RunnerError(
                f"sensor {spec.ref}: the sensor process for {interpreter!r} failed to start"
                f" (exit code {sensor.exit_code})"
            ) from exc
        except BaseException:
            await sensor.kill()
            raise
        sensor._server = asyncio.create_task(sensor._serve(), name=f"sensor:{spec.ref}")
        return sensor

    @property
    def exit_code(self) -> int | None:
        """The exit status once the process ended (negative: killed by that signal)."""
        return self._proc.returncode

    async def wait(self) -> int:
        """Wait for the process to end (answering its calls meanwhile); its exit status.

        The processes the sensor started in its group are killed once it has ended.
        """
        # Not Process.wait(): that also waits for the pipes, which a child may hold open.
        code = await self._proc.exited()
        # What the sensor started (a `tail -f`, …) would outlive it, one more each restart.
        kill_process_group(self.pid)
        await self._drain()
        return code

    async def notify(self, kind: str, trigger: Mapping[str, Any]) -> None:
        """Send ``add_trigger``, ``update_trigger`` or ``remove_trigger``; lost if it died."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._channel.send({"type": kind, "trigger": dict(trigger)})

    async def stop(self, grace: float) -> None:
        """Ask the sensor to clean up and exit; kill its process group after ``grace``."""
        if self._proc.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._channel.send({"type": "stop"})
            try:
                async with asyncio.timeout(grace):
                    await self._proc.exited()
            except TimeoutError:
                log.warning(
                    "sensor %s: did not stop within %.0fs; killing it", self.spec.ref, grace
                )
        await self.kill()

    async def kill(self) -> None:
        """Kill the process group at once and release the pipes."""
        # The sensor leads its group; killpg (not Process.kill) leaves the exit status to
        # asyncio's child watcher.
        kill_process_group(self.pid)
        await self._proc.exited()
        await self._drain()

    async def _drain(self) -> None:
        self._channel.close()
        tasks = [*self._pumps, *([self._server] if self._server else [])]
        _, pending = await asyncio.wait(tasks, timeout=5.0)
        for task in pending:
            task.cancel()

    async def _serve(self) -> None:
        # One call at a time, in order: a sensor's dispatches are stored in the order made.
        try:
            while True:
                message = await self._channel.recv()
                kind = message.get("type")
                if kind == "rpc":
                    reply = await answer_rpc(
                        self._backend, message, _RPC_METHODS, service="sensor_service"
                    )
                    await self._channel.send(reply)
                elif kind == "running":
                    self.running.set()
                elif kind == "failed":
                    self.failure = str(message.get("error") or "the sensor failed to start")
                    log.error("sensor %s: %s", self.spec.ref, self.failure)
        except (ChannelClosed, ConnectionError, RuntimeError):
            return


async def _log_lines(stream: asyncio.StreamReader, ref: str, default: int) -> None:
    """Log each line of a sensor's output under its name, at the level the line names."""
    while True:
        try:
            raw = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raw = exc.partial
            if not raw:
                return
        except asyncio.LimitOverrunError as exc:
            raw = await stream.readexactly(exc.consumed)
        line = raw.decode("utf-8", errors="replace").rstrip()
        if not line:
            continue
        if len(line) > _MAX_LINE:
            line = line[:_MAX_LINE] + " …"
        word = line.split(" ", 1)[0]
        level = _LEVELS.get(word, default)
        if word in _LEVELS:
            line = line[len(word) + 1 :]
        log.log(level, "sensor %s: %s", ref, line)
