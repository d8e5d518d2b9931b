"""The host side of the control channel to a Squall Python subprocess.

Both the warm action workers (``python_worker.py``) and the sensor processes
(``sensor_worker.py``) are started the same way: the script by path, with a pack's virtualenv
interpreter (or Squall's own), in a new process group, a clean environment, and one end of a
socket pair inherited as the control channel. Frames are a 4-byte big-endian length followed
by a UTF-8 JSON object; the subprocess side is ``Channel`` in ``python_worker.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import tempfile
from pathlib import Path
from typing import Any

from squall.compat import COMPAT_PATH
from squall.errors import RunnerError
from squall.runners.process import base_environment

__all__ = [
    "ChannelClosed",
    "ControlChannel",
    "WorkerProcess",
    "answer_rpc",
    "spawn",
    "worker_environment",
]

_HEADER = struct.Struct(">I")


class ChannelClosed(Exception):
    """The subprocess closed the control channel (it exited) or sent garbage."""


def worker_environment(interpreter: str) -> dict[str, str]:
    """The start-up environment of a subprocess for ``interpreter``.

    ``PYTHONPATH`` holds only ``squall/compat`` (so ``st2common`` and ``st2reactor`` imports
    resolve) and never Squall's own site-packages; user site-packages are off; for a
    virtualenv interpreter its ``bin`` directory leads ``PATH``.
    """
    env = base_environment()
    env["PYTHONPATH"] = str(COMPAT_PATH)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    bin_dir = Path(interpreter).parent
    if (bin_dir.parent / "pyvenv.cfg").is_file():
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


class ControlChannel:
    """Length-prefixed JSON frames over the host's end of the socket pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, default=str).encode("utf-8")
        self._writer.write(_HEADER.pack(len(data)) + data)
        await self._writer.drain()

    async def recv(self) -> dict[str, Any]:
        """The next message.

        Raises:
            ChannelClosed: the subprocess closed its end or sent something that is not a
                JSON object.
        """
        try:
            header = await self._reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed("control channel closed") from exc
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ChannelClosed("malformed control message") from exc
        if not isinstance(message, dict):
            raise ChannelClosed("malformed control message")
        return message

    def close(self) -> None:
        self._writer.close()


class _WorkerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Also tells when the process itself has exited (see :meth:`WorkerProcess.exited`)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class WorkerProcess(asyncio.subprocess.Process):
    """A subprocess started by :func:`spawn`."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _WorkerProtocol,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, loop)
        self._exited = protocol.exited

    async def exited(self) -> int:
        """Wait for the process itself to exit; its exit status.

        Unlike :meth:`wait`, this does not wait for stdout and stderr to close too, which a
        child it left running (``tail -f`` in the background) may keep open indefinitely.
        """
        await asyncio.shield(self._exited)
        code = self.returncode
        assert code is not None
        return code


async def spawn(
    interpreter: str, script: Path, *, cwd: str | None = None
) -> tuple[WorkerProcess, ControlChannel]:
    """Start ``interpreter script --control-fd N`` in its own process group.

    Its stdout and stderr are pipes (the caller reads them), stdin is ``/dev/null``.

    Raises:
        RunnerError: the interpreter cannot be executed.
    """
    loop = asyncio.get_running_loop()
    parent, child = socket.socketpair()
    try:
        # asyncio.create_subprocess_exec, with a protocol that reports the exit itself.
        transport, protocol = await loop.subprocess_exec(
            lambda: _WorkerProtocol(limit=2**16, loop=loop),  # asyncio's default limit
            interpreter,
            str(script),
            "--control-fd",
            str(child.fileno()),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(child.fileno(),),
            env=worker_environment(interpreter),
            cwd=cwd or tempfile.gettempdir(),
            start_new_session=True,
        )
        proc = WorkerProcess(transport, protocol, loop)
    except OSError as exc:
        parent.close()
        raise RunnerError(
            f"cannot start Python interpreter {interpreter!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
    return proc, ControlChannel(reader, writer)


async def answer_rpc(
    target: Any, message: dict[str, Any], methods: frozenset[str], *, service: str
) -> dict[str, Any]:
    """Call ``target.<method>(**kwargs)`` for an ``rpc`` message; the ``rpc_result`` reply.

    A failure is reported to the subprocess (which raises it in the pack's code) rather than
    raised here.
    """
    reply: dict[str, Any] = {"type": "rpc_result", "id": message.get("id")}
    method = message.get("method")
    kwargs = message.get("kwargs") or {}
    if method not in methods or not isinstance(kwargs, dict):
        return reply | {"ok": False, "error": f"unknown {service} method {method!r}"}
    handler = getattr(target, str(method), None)
    if handler is None:
        return reply | {"ok": False, "error": f"{service}.{method} is not available here"}
    try:
        value = await handler(**kwargs)
    except Exception as exc:  # the pack's code sees the failure as an exception of its own
        return reply | {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return reply | {"ok": True, "value": value}
