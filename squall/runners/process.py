"""Supervision of action processes: spawn, stream output, time out, cancel.

Every action process runs in its own session (``start_new_session=True``), so it leads a
process group: a timeout or a cancellation kills the whole group with ``SIGKILL``, including
the children the action started (``sleep`` in the background, a pipeline…).

Output is read from both pipes concurrently in chunks as the process produces it — not line
by line, so a progress bar without a newline still streams — decoded incrementally as UTF-8
(a multibyte sequence split across two reads is decoded whole; invalid bytes become U+FFFD)
and forwarded to the execution's :class:`~squall.runners.base.OutputSink`. The text is also
kept for the result, up to a cap per stream; past the cap the rest is read and dropped, and a
note says so.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from squall.errors import RunnerError
from squall.runners.base import OutputSink

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "ProcessOutcome",
    "StreamCapture",
    "base_environment",
    "kill_process_group",
    "run_process",
    "strip_trailing_newline",
]

log = logging.getLogger(__name__)

#: Default cap on the output kept (and streamed) per stream: 10 MiB.
DEFAULT_OUTPUT_LIMIT = 10 * 1024 * 1024
_READ_SIZE = 64 * 1024
#: How long to wait for the pipes to close after the group was killed (escaped processes).
_DRAIN_AFTER_KILL = 2.0
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Variables of the Squall process an action inherits; everything else is left out so that
#: Squall's own configuration (database URLs, keys) never leaks into actions.
_INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "TERM",
    "HOSTNAME",
)


def base_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The clean base environment of an action process.

    Args:
        source: the environment to pick from (default: this process's).

    Returns:
        ``PATH``, ``HOME``, locale (``LANG``, ``LC_*``) and a few identity variables.
    """
    env = os.environ if source is None else source
    picked = {k: env[k] for k in _INHERITED_ENV if k in env}
    picked.update({k: v for k, v in env.items() if k.startswith("LC_")})
    picked.setdefault("PATH", _DEFAULT_PATH)
    return picked


def strip_trailing_newline(text: str) -> str:
    """Remove one trailing newline (``\\n`` or ``\\r\\n``), as StackStorm does for results."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def kill_process_group(pgid: int) -> None:
    """Send ``SIGKILL`` to a whole process group; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class StreamCapture:
    """Decodes one output stream incrementally, forwards it to a sink and keeps it.

    Args:
        stream: ``stdout`` or ``stderr``.
        sink: where the text is streamed to.
        limit: bytes kept and streamed; the rest is dropped with a note.
    """

    def __init__(self, stream: str, sink: OutputSink, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.stream = stream
        self._sink = sink
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._seen = 0
        self._sink_failed = False
        self.truncated = False

    async def feed(self, data: bytes) -> None:
        """Take the next chunk of raw output."""
        if not data:
            return
        if self.truncated:
            return
        room = self._limit - self._seen
        self._seen += len(data)
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        text = self._decoder.decode(data)
        if self.truncated:
            text += self._decoder.decode(b"", final=True)
            text += f"\n[squall: {self.stream} truncated after {self._limit} bytes]\n"
        await self._emit(text)

    async def finish(self) -> None:
        """Flush an incomplete multibyte sequence at the end of the stream."""
        if not self.truncated:
            await self._emit(self._decoder.decode(b"", final=True))

    async def _emit(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        if self._sink_failed:
            return
        try:
            await self._sink.write(self.stream, text)
        except Exception:
            # Live output is best effort: the pipe must keep draining (or the action blocks)
            # and the result still carries the text.
            self._sink_failed = True
            log.exception("streaming %s failed; output is kept for the result only", self.stream)

    @property
    def text(self) -> str:
        """Everything kept so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


@dataclass(frozen=True)
class ProcessOutcome:
    """How a supervised process ended."""

    return_code: int
    stdout: str
    stderr: str
    timed_out: bool


def _missing_dir(path: str | Path) -> bool:
    return not os.path.isdir(path)


async def _pump(reader: asyncio.StreamReader, capture: StreamCapture) -> None:
    while True:
        data = await reader.read(_READ_SIZE)
        if not data:
            break
        await capture.feed(data)
    await capture.finish()


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the process did not read its input; its exit status tells the story
    finally:
        proc.stdin.close()


async def _settle(tasks: Sequence[asyncio.Task[None]], limit: float | None) -> bool:
    """Wait for ``tasks``; return False when the deadline passed first."""
    if not tasks:
        return True
    _, pending = await asyncio.wait(tasks, timeout=limit)
    return not pending


async def run_process(
    argv: Sequence[str],
    *,
    sink: OutputSink,
    env: Mapping[str, str],
    cwd: str | Path | None = None,
    time_limit: float | None = None,
    stdin_data: bytes | None = None,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> ProcessOutcome:
    """Run ``argv`` (no shell) in its own process group and stream its output to ``sink``.

    The run ends when the process has exited and both pipes are closed (children that
    inherited them included), or when ``timeout`` seconds have passed: then the whole group is
    killed and ``timed_out`` is set. On cancellation the group is killed and
    ``CancelledError`` propagates.

    Args:
        argv: program and arguments.
        sink: receives ``stdout`` / ``stderr`` text as it is produced.
        env: the complete environment of the process.
        cwd: working directory.
        time_limit: seconds; ``None`` or ``<= 0`` means no limit.
        stdin_data: bytes written to stdin (then closed); stdin is ``/dev/null`` otherwise.
        output_limit: bytes kept and streamed per stream.

    Returns:
        The return code (``-9`` when killed by ``SIGKILL``) and the kept output.

    Raises:
        RunnerError: the program or the working directory does not exist, or is not usable.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if cwd is not None and _missing_dir(cwd):
            raise RunnerError(f"working directory {str(cwd)!r} does not exist") from exc
        raise RunnerError(f"cannot run {argv[0]!r}: no such file") from exc
    except PermissionError as exc:
        raise RunnerError(f"cannot run {argv[0]!r}: permission denied") from exc
    except OSError as exc:
        raise RunnerError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc

    assert proc.stdout is not None and proc.stderr is not None
    out = StreamCapture("stdout", sink, output_limit)
    err = StreamCapture("stderr", sink, output_limit)
    tasks = [
        asyncio.create_task(_pump(proc.stdout, out)),
        asyncio.create_task(_pump(proc.stderr, err)),
    ]
    if stdin_data is not None:
        tasks.append(asyncio.create_task(_feed_stdin(proc, stdin_data)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + time_limit if time_limit and time_limit > 0 else None
    timed_out = False
    try:
        try:
            async with asyncio.timeout_at(deadline):
                await proc.wait()
                # Children that inherited the pipes keep the run open until they close them.
                await asyncio.gather(*tasks)
        except TimeoutError:
            timed_out = True
            kill_process_group(proc.pid)
            await proc.wait()
            await _settle(tasks, _DRAIN_AFTER_KILL)
    except BaseException:
        kill_process_group(proc.pid)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return_code = -signal.SIGKILL if timed_out else proc.returncode
    assert return_code is not None
    return ProcessOutcome(
        return_code=int(return_code), stdout=out.text, stderr=err.text, timed_out=timed_out
    )
