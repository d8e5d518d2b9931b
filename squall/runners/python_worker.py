"""Squall's warm Python action worker. Standard library only.

Started by file path (``python python_worker.py --control-fd N``) with the interpreter of a
pack's virtualenv or Squall's own, it runs one Python action after another for the host
(:mod:`squall.runners.python_pool`). It must import nothing of Squall: pack virtualenvs do not
have Squall's dependencies, only ``squall/compat`` on ``PYTHONPATH`` (for ``st2common``).

Channels:

* control: a socket inherited as fd ``N``; frames are a 4-byte big-endian length followed by a
  UTF-8 JSON object. Host → worker: ``run``, ``rpc_result``, ``exit``. Worker → host:
  ``ready``, ``rpc`` (datastore calls of ``self.action_service``), ``done``.
* fd 1 and fd 2: the action's stdout and stderr (its child processes inherit them). Before it
  answers ``done``, the worker flushes both and writes the execution's sentinel on each, so the
  host knows where that execution's output ends.

Per ``run`` the worker sets the execution's environment variables, working directory and
``sys.path`` (the action's directory, the pack's ``actions/`` and ``actions/lib``), loads the
entry point fresh under a unique module name, instantiates the one ``Action`` subclass it
defines with the pack config and calls ``run(**parameters)``; afterwards it restores all of
that and forgets the modules loaded from the pack, so the next action (maybe of another pack)
starts clean while third-party imports stay warm.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import math
import os
import socket
import struct
import sys
import threading
import traceback
from typing import Any

__all__ = ["main"]

_HEADER = struct.Struct(">I")
_SELF_DIR = os.path.dirname(os.path.abspath(__file__))


class WorkerProtocolError(Exception):
    """The host closed the control channel or sent something unexpected."""


class DatastoreError(Exception):
    """A datastore call made through ``self.action_service`` failed on the host."""


class Channel:
    """Length-prefixed JSON frames over the inherited control socket."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._lock = threading.Lock()
        self._next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        data = _dumps(message)
        self._sock.sendall(_HEADER.pack(len(data)) + data)

    def recv(self) -> dict[str, Any] | None:
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        body = self._read_exactly(size)
        if body is None:
            return None
        message = json.loads(body.decode("utf-8"))
        if not isinstance(message, dict):
            raise WorkerProtocolError("control message is not an object")
        return message

    def _read_exactly(self, size: int) -> bytes | None:
        chunks = []
        remaining = size
        while remaining:
            chunk = self._sock.recv(min(remaining, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        """One RPC to the host; the action's thread blocks until the answer arrives."""
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
            self.send({"type": "rpc", "id": call_id, "method": method, "kwargs": kwargs})
            reply = self.recv()
        if reply is None:
            raise WorkerProtocolError("the host closed the control channel")
        if reply.get("type") != "rpc_result" or reply.get("id") != call_id:
            raise WorkerProtocolError(f"unexpected reply to {method}: {reply.get('type')}")
        if not reply.get("ok"):
            raise DatastoreError(str(reply.get("error") or f"{method} failed"))
        return reply.get("value")


class KeyValuePair(dict):  # plain dict: stays importable on old pack interpreters
    """A datastore item from ``list_values``: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class ActionService:
    """``self.action_service`` of an action: datastore access through the host."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def get_value(
        self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        kwargs = {"name": name, "local": local, "scope": scope, "decrypt": decrypt}
        value = self._channel.call("get_value", kwargs)
        return None if value is None else str(value)

    def set_value(
        self,
        name: str,
        value: Any,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        kwargs = {
            "name": name,
            "value": value if isinstance(value, str) else str(value),
            "ttl": ttl,
            "local": local,
            "scope": scope,
            "encrypt": encrypt,
        }
        return bool(self._channel.call("set_value", kwargs))

    def delete_value(self, name: str, local: bool = True, scope: str = "system") -> bool:
        kwargs = {"name": name, "local": local, "scope": scope}
        return bool(self._channel.call("delete_value", kwargs))

    def list_values(
        self, local: bool = True, prefix: str | None = None, scope: str = "system"
    ) -> list[KeyValuePair]:
        kwargs = {"local": local, "prefix": prefix, "scope": scope}
        items = self._channel.call("list_values", kwargs) or []
        return [KeyValuePair(item) for item in items]

    def dispatch(self, trigger: str, payload: Any = None, trace_tag: str | None = None) -> Any:
        """Emit a trigger instance (what ``core.inject_trigger`` uses)."""
        kwargs = {"trigger": trigger, "payload": payload or {}, "trace_tag": trace_tag}
        return self._channel.call("dispatch", kwargs)


def _dumps(message: Any) -> bytes:
    return json.dumps(message, default=str, allow_nan=False).encode("utf-8")


def jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` made JSON-serialisable: unknown objects (and NaN/inf) become ``str()``."""
    if _depth > 100:
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else str(k)): jsonable(v, _depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v, _depth + 1) for v in value]
    return str(value)


def _action_class(module: Any, base: type) -> type:
    """The one ``Action`` subclass defined in ``module``."""
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base
    ]
    own = [c for c in candidates if c.__module__ == module.__name__] or candidates
    # A base class defined next to the action (class Base(Action) / class Mine(Base)) is
    # not the action: keep the leaves.
    leaves = [c for c in own if not any(o is not c and issubclass(o, c) for o in own)]
    concrete = [c for c in leaves if not inspect.isabstract(c)] or leaves
    if len(concrete) == 1:
        return concrete[0]
    path = getattr(module, "__file__", "?")
    if not concrete:
        raise TypeError(f"no class inheriting from st2common Action found in {path}")
    names = ", ".join(sorted(c.__name__ for c in concrete))
    raise TypeError(f"more than one Action class found in {path}: {names}")


def _instantiate(cls: type, config: dict[str, Any], service: ActionService) -> Any:
    """``cls(config=…, action_service=…)``; older actions only take ``config``."""
    try:
        return cls(config=config, action_service=service)
    except TypeError:
        params = inspect.signature(cls).parameters
        if "action_service" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise
    action = cls(config=config)
    action.action_service = service
    return action


class _Sandbox:
    """Sets an execution's process state and restores it afterwards."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.entry = os.path.abspath(request["entry_point"])
        self.pack_path = request.get("pack_path")
        self.env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        entry_dir = os.path.dirname(self.entry)
        paths = [entry_dir]
        if self.pack_path:
            actions = os.path.join(self.pack_path, "actions")
            paths += [actions, os.path.join(actions, "lib")]
        self.paths = list(dict.fromkeys(paths))
        self.roots = tuple(
            os.path.join(p, "") for p in ([self.pack_path] if self.pack_path else [entry_dir])
        )

    def __enter__(self) -> _Sandbox:
        self._environ = dict(os.environ)
        self._sys_path = list(sys.path)
        self._modules = set(sys.modules)
        self._cwd = os.getcwd()
        self._root_handlers = list(logging.root.handlers)
        self._root_level = logging.root.level
        os.environ.update(self.env)
        sys.path[:0] = self.paths
        os.chdir(os.path.dirname(self.entry))
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, sys.__stdin__
        for key in list(os.environ):
            if key not in self._environ:
                del os.environ[key]
        for key, value in self._environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        sys.path[:] = self._sys_path
        logging.root.handlers[:] = self._root_handlers
        logging.root.setLevel(self._root_level)
        try:
            os.chdir(self._cwd)
        except OSError:
            os.chdir("/")
        for name in set(sys.modules) - self._modules:
            module = sys.modules.get(name)
            path = getattr(module, "__file__", None) or ""
            if name.startswith("_squall_action_") or path.startswith(self.roots):
                del sys.modules[name]


def _flush_and_mark(sentinel: bytes) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    for fd in (1, 2):
        try:
            os.write(fd, sentinel)
        except OSError:
            pass


def execute(request: dict[str, Any], channel: Channel, serial: int) -> dict[str, Any]:
    """Run one action request; return the ``done`` message."""
    status, result = "failed", None
    with _Sandbox(request) as box:
        try:
            from st2common.runners.base_action import Action

            name = f"_squall_action_{serial}"
            spec = importlib.util.spec_from_file_location(name, box.entry)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load Python action from {box.entry}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            cls = _action_class(module, Action)
            action = _instantiate(cls, request.get("config") or {}, ActionService(channel))
            output = action.run(**(request.get("params") or {}))
            status = "succeeded"
            if isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], bool):
                status = "succeeded" if output[0] else "failed"
                output = output[1]
            result = output
        except SystemExit as exc:
            status = "succeeded" if exc.code in (None, 0) else "failed"
            if status == "failed":
                print(f"action exited with sys.exit({exc.code!r})", file=sys.stderr)
        except WorkerProtocolError:
            raise
        except BaseException:  # the action's failure is the execution's result
            traceback.print_exc()
        _flush_and_mark(request["sentinel"].encode("utf-8"))
    return {"type": "done", "id": request.get("id"), "status": status, "result": result}


def main(argv: list[str] | None = None) -> int:
    """Serve ``run`` requests on the control channel until ``exit`` or end of input."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "--control-fd":
        print("usage: python_worker.py --control-fd N", file=sys.stderr)
        return 2
    # Started by path, Python put this directory first on sys.path: Squall's runner modules
    # must not shadow the action's imports (``import process``).
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _SELF_DIR]
    channel = Channel(int(args[1]))
    channel.send({"type": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
    serial = 0
    while True:
        message = channel.recv()
        if message is None or message.get("type") == "exit":
            return 0
        if message.get("type") != "run":
            raise WorkerProtocolError(f"unexpected control message {message.get('type')!r}")
        serial += 1
        done = execute(message, channel, serial)
        try:
            channel.send(done)
        except (TypeError, ValueError):  # tuple keys, NaN, cycles: fall back to str()
            done["result"] = jsonable(done["result"])
            channel.send(done)


if __name__ == "__main__":
    sys.exit(main())
