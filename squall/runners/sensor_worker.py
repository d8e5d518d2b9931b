"""One StackStorm sensor in its own process. Standard library only.

Started by file path (``python sensor_worker.py --control-fd N``) with the interpreter of the
pack's virtualenv or Squall's own, by the host side in :mod:`squall.runners.sensor_host`. Like
``python_worker.py`` (whose channel, datastore service and helpers it shares) it imports
nothing of Squall: only ``squall/compat`` is on ``PYTHONPATH`` (for ``st2reactor``).

Channel (length-prefixed JSON frames, as in ``python_worker.py``). Host → sensor: ``start``
(once: entry point, class name, config, poll interval, the existing triggers), ``add_trigger``
/ ``update_trigger`` / ``remove_trigger`` (``{"trigger": {...}}``), ``rpc_result``, ``stop``.
Sensor → host: ``ready``, ``running`` (after ``setup()``), ``failed`` (the sensor cannot be
loaded or set up: a one-line reason, before the process exits with status 3), ``rpc``
(``dispatch`` and datastore calls of ``self.sensor_service``).

Threads: the main thread runs ``setup()`` and then ``run()``; a reader thread takes every
message from the host (answers to the sensor's calls, trigger changes, ``stop``); a trigger
thread calls ``add_trigger``/``update_trigger``/``remove_trigger`` one at a time, in order,
starting after ``setup()``. ``stop`` calls ``cleanup()`` and exits; the host kills the process
group if that takes longer than its grace period. When the host goes away, so does the sensor.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import queue
import sys
import threading
import traceback
from typing import Any

__all__ = ["main"]

_SELF_DIR = os.path.dirname(os.path.abspath(__file__))
#: Exit status of a sensor that could not be loaded or set up (the host says why).
EXIT_FAILED = 3
_RPC_TIMEOUT = 300.0
#: Sensor modules are imported under this prefix, never shadowing a module of the same name.
_MODULE_PREFIX = "_squall_sensor_"


def _load_shared() -> Any:
    """``python_worker.py`` (next to this file), loaded by path under a private name."""
    spec = importlib.util.spec_from_file_location(
        "_squall_python_worker", os.path.join(_SELF_DIR, "python_worker.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_shared = _load_shared()


class MuxChannel(_shared.Channel):  # type: ignore[name-defined]
    """The control channel shared by the sensor's threads.

    The reader thread owns ``recv``; a call sends its request and waits for the reader to
    hand over the answer with the same id, so several threads may call at once.
    """

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self._send_lock = threading.Lock()
        self._pending: dict[int, list[Any]] = {}

    def send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            super().send(message)

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        done = threading.Event()
        with self._send_lock:
            self._next_id += 1
            call_id = self._next_id
            slot: list[Any] = [done]
            self._pending[call_id] = slot
            super().send({"type": "rpc", "id": call_id, "method": method, "kwargs": kwargs})
        if not done.wait(_RPC_TIMEOUT):
            self._pending.pop(call_id, None)
            raise _shared.WorkerProtocolError(f"no answer to {method} from the host")
        reply = slot[1]
        if not reply.get("ok"):
            raise _shared.DatastoreError(str(reply.get("error") or f"{method} failed"))
        return reply.get("value")

    def deliver(self, reply: dict[str, Any]) -> None:
        """Hand an ``rpc_result`` to the thread waiting for it."""
        slot = self._pending.pop(reply.get("id"), None)  # type: ignore[arg-type]
        if slot is not None:
            slot.append(reply)
            slot[0].set()


class SensorService(_shared.ActionService):  # type: ignore[name-defined]
    """``self.sensor_service``: dispatch, loggers and the datastore (through the host).

    Datastore keys with ``local=True`` live under ``<pack>.<SensorClass>:`` (as in
    StackStorm); the host adds that prefix.
    """

    def __init__(self, channel: MuxChannel, logger_prefix: str) -> None:
        super().__init__(channel)
        self._logger_prefix = logger_prefix

    def dispatch(self, trigger: str, payload: Any = None, trace_tag: str | None = None) -> Any:
        """Emit a trigger instance of ``trigger`` (a trigger type ref or a trigger ref).

        A payload that does not match the trigger type's ``payload_schema`` is dropped by the
        host (and logged there); the call then returns None.
        """
        kwargs = {
            "trigger": trigger,
            "payload": _shared.jsonable(payload if payload is not None else {}),
            "trace_tag": trace_tag,
        }
        return self._channel.call("dispatch", kwargs)

    def dispatch_with_context(
        self, trigger: str, payload: Any = None, trace_context: Any = None
    ) -> Any:
        """:meth:`dispatch`, with the trace tag taken from ``trace_context``."""
        tag = None
        if isinstance(trace_context, dict):
            tag = trace_context.get("trace_tag")
        elif trace_context is not None:
            tag = getattr(trace_context, "trace_tag", None)
        return self.dispatch(trigger, payload, trace_tag=tag)

    def get_logger(self, name: str) -> logging.Logger:
        """A logger whose lines the host logs under this sensor's name."""
        if name.startswith(_MODULE_PREFIX):  # get_logger(__name__) in the sensor's module
            name = name[len(_MODULE_PREFIX) :]
        return _logger(f"{self._logger_prefix}.{name}")


_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


class SensorLoadError(Exception):
    """The sensor's module or class cannot be loaded."""


def _load_class(path: str, class_name: str) -> type:
    """The sensor class ``class_name`` from the module at ``path``."""
    from st2reactor.sensor.base import BaseSensor

    if not os.path.isfile(path):
        raise SensorLoadError(f"sensor module {path} does not exist")
    name = _MODULE_PREFIX + os.path.splitext(os.path.basename(path))[0]
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise SensorLoadError(f"cannot load sensor module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except SensorLoadError:
        raise
    except BaseException as exc:
        traceback.print_exc()
        where = ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise SensorLoadError(
            f"cannot import sensor module {path}{where}: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        found = sorted(
            n
            for n, o in vars(module).items()
            if inspect.isclass(o) and issubclass(o, BaseSensor) and o.__module__ == name
        )
        hint = f" (sensor classes there: {', '.join(found)})" if found else ""
        raise SensorLoadError(f"class {class_name!r} not found in {path}{hint}")
    if not issubclass(cls, BaseSensor):
        raise SensorLoadError(
            f"{class_name} in {path} does not inherit from st2reactor.sensor.base.Sensor "
            "or PollingSensor"
        )
    return cls


def _instantiate(cls: type, service: SensorService, start: dict[str, Any]) -> Any:
    from st2reactor.sensor.base import PollingSensor

    config = start.get("config") or {}
    if issubclass(cls, PollingSensor):
        interval = start.get("poll_interval")
        if interval is None:
            return cls(sensor_service=service, config=config)
        return cls(sensor_service=service, config=config, poll_interval=interval)
    return cls(sensor_service=service, config=config)


class _Runner:
    """The threads of one sensor process."""

    def __init__(self, channel: MuxChannel) -> None:
        self.channel = channel
        self.sensor: Any = None
        self.triggers: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.log = _logger("sensor")
        self._stopping = threading.Lock()

    def read_loop(self) -> None:
        """Take every message from the host (daemon thread)."""
        try:
            while True:
                message = self.channel.recv()
                if message is None:
                    break
                kind = message.get("type")
                if kind == "rpc_result":
                    self.channel.deliver(message)
                elif kind in ("add_trigger", "update_trigger", "remove_trigger"):
                    self.triggers.put((str(kind), message.get("trigger") or {}))
                elif kind == "stop":
                    threading.Thread(target=self.stop, name="sensor-stop", daemon=True).start()
        except Exception:
            traceback.print_exc()
        # The host is gone: nobody would receive what the sensor dispatches.
        _exit(1)

    def trigger_loop(self) -> None:
        """Call the trigger hooks one at a time, in order (daemon thread)."""
        while True:
            kind, trigger = self.triggers.get()
            try:
                getattr(self.sensor, kind)(trigger)
            except Exception:
                self.log.error(
                    "%s(%s) failed:\n%s", kind, trigger.get("ref"), traceback.format_exc()
                )

    def stop(self) -> None:
        """``cleanup()`` and exit."""
        if not self._stopping.acquire(blocking=False):
            return
        if self.sensor is not None:
            try:
                self.sensor.cleanup()
            except Exception:
                self.log.error("cleanup() failed:\n%s", traceback.format_exc())
        _exit(0)


def _exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def run(channel: MuxChannel, start: dict[str, Any]) -> int:
    """Load, set up and run the sensor described by ``start``; returns the exit status."""
    runner = _Runner(channel)
    for trigger in start.get("triggers") or []:
        runner.triggers.put(("add_trigger", trigger))
    threading.Thread(target=runner.read_loop, name="sensor-reader", daemon=True).start()
    entry = os.path.abspath(str(start["entry_point"]))
    # The sensor's directory first, as StackStorm does, for its sibling modules.
    sys.path.insert(0, os.path.dirname(entry))
    service = SensorService(channel, logger_prefix="sensor")
    try:
        cls = _load_class(entry, str(start["class_name"]))
        runner.sensor = _instantiate(cls, service, start)
        runner.sensor.setup()
    except SensorLoadError as exc:
        channel.send({"type": "failed", "error": str(exc)})
        return EXIT_FAILED
    except BaseException as exc:
        traceback.print_exc()
        what = "setup()" if runner.sensor is not None else "creating the sensor"
        channel.send({"type": "failed", "error": f"{what} failed: {type(exc).__name__}: {exc}"})
        return EXIT_FAILED
    threading.Thread(target=runner.trigger_loop, name="sensor-triggers", daemon=True).start()
    channel.send({"type": "running"})
    runner.sensor.run()
    # A sensor whose run() returns may still act on trigger callbacks (or threads of its
    # own): keep the process up until the host stops it.
    runner.log.info("run() returned; the sensor stays up until it is stopped")
    threading.Event().wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Wait for ``start``, then run the sensor until ``stop`` or until the host goes away."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "--control-fd":
        print("usage: sensor_worker.py --control-fd N", file=sys.stderr)
        return 2
    # Started by path, Python put this directory first on sys.path: Squall's runner modules
    # must not shadow the sensor's imports.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _SELF_DIR]
    channel = MuxChannel(int(args[1]))
    channel.send({"type": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
    start = channel.recv()
    if start is None or start.get("type") != "start":
        return 0
    try:
        code = run(channel, start)
    except BaseException:  # a crash in run(): the host restarts the sensor
        traceback.print_exc()
        code = 1
    _exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
