"""The ``remote-shell-cmd`` and ``remote-shell-script`` runners (SSH, via asyncssh).

Each host of ``hosts`` gets its own SSH connection (through ``bastion_host`` when set, with the
same credentials) and runs one command line, interpreted by the login shell there::

    cd '<cwd>' || exit 1
    export K='v' …            # the ``env`` runner parameter, every value quoted
    <cmd>                     # or: '<dir>/squall-<id>/<script>' '--k=v' 'positional' …

``cmd`` arrives rendered shell-safely (parameters in it are quoted upstream); the script's
arguments are the action parameters serialized as for local scripts
(:func:`~squall.runners.local_shell.action_arguments`) and each one is quoted with
:func:`shlex.quote`, so no value can inject shell syntax. ``sudo: true`` wraps the line in
``sudo -E -H -- bash -c '<line>'`` (``-n`` without a password). With ``sudo_password``, sudo
runs with ``-S -p '<marker>'``, a prompt unique to the execution: the password is written to
stdin only when that prompt appears on stderr (and the prompt is cut from the output), never
on a command line, and the command's stdin is ``/dev/null`` — so a sudo that does not ask
(NOPASSWD, cached credentials) never hands the password to the command.

``remote-shell-script`` copies the entry point (and the ``lib`` directory next to it, as
StackStorm does) over SFTP to a fresh ``<dir>/squall-<execution id>-<random>`` directory
(mode 0700), runs it, and removes the directory afterwards, also after a failure, a timeout
or a cancellation (even during the copy).

The result is StackStorm's: one entry per host, keyed by the host as written in ``hosts``,
each ``{stdout, stderr, return_code, succeeded, failed}``; a host that could not be reached,
or timed out, also gets ``error`` and ``timeout`` (``return_code`` 255, or -9 on timeout). The
execution succeeds when every host succeeded; it times out when every host that failed timed
out; otherwise it fails. Hosts run one at a time, or all at once (at most 50) with
``parallel: true``.

Output streams live: with one host as produced, with several line by line, each line prefixed
with ``[host] `` so ``squall execution tail`` shows where it came from. Cancellation closes
the SSH channels and connections, which ends the remote command (closed channel / SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import re
import secrets
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from squall.errors import RunnerError
from squall.model.status import ExecutionStatus
from squall.runners.base import OutputSink, RunContext, Runner, RunResult
from squall.runners.local_shell import (
    action_arguments,
    shell_result,
    stringify_env,
    sudo_error,
)
from squall.runners.process import DEFAULT_OUTPUT_LIMIT, ProcessOutcome, StreamCapture
from squall.runners.ssh_client import SshDefaults, SshError, SshTarget, connect, parse_hosts

__all__ = ["RemoteShellRunner"]

log = logging.getLogger(__name__)

_S = ExecutionStatus
_READ_SIZE = 64 * 1024
_MAX_PARALLEL = 50
#: Return codes of StackStorm's per-host error results.
_RC_ERROR = 255
_RC_TIMEOUT = -signal.SIGKILL
#: Seconds granted to connection set-up, and to clean-up after the command.
_CONNECT_TIMEOUT = 30.0
_CLEANUP_TIMEOUT = 10.0
_DRAIN_AFTER_CLOSE = 2.0
#: A partial line longer than this is streamed without waiting for its newline.
_MAX_PENDING_LINE = 4096
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class _Plan:
    """What to run on every host (the same for all of them)."""

    body: str
    cwd: str | None
    env: dict[str, str]
    sudo: bool
    sudo_password: str | None
    timeout: float | None
    #: sudo's password prompt (``-p``): the runner answers it, and only it.
    sudo_prompt: str = ""
    script: Path | None = None
    remote_dir: str | None = None
    arguments: tuple[str, ...] = ()

    def command(self, body: str) -> str:
        """The remote command line for ``body``."""
        lines = []
        if self.cwd:
            lines.append(f"cd {shlex.quote(self.cwd)} || exit 1")
        if self.env:
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
            lines.append(f"export {exports}")
        lines.append(body)
        line = "\n".join(lines)
        if not self.sudo:
            return line
        if self.sudo_password:
            # The password is on stdin only once sudo asks: the command must not read it.
            line = f"exec </dev/null\n{line}"
            prompt = shlex.quote(self.sudo_prompt)
            return f"sudo -S -p {prompt} -E -H -- bash -c {shlex.quote(line)}"
        return f"sudo -n -E -H -- bash -c {shlex.quote(line)}"


class _SudoPrompt:
    """Answers sudo's password prompt on stderr with the password, and cuts it from stderr.

    The prompt may arrive split across reads, so a tail that could be its beginning is held
    back until the next read. stdin is closed after the password, so when sudo refuses it and
    asks again it gives up instead of waiting.
    """

    def __init__(self, prompt: str, password: str, stdin: asyncssh.SSHWriter[bytes]) -> None:
        self._prompt = prompt.encode()
        self._password = f"{password}\n".encode()
        self._stdin = stdin
        self._held = b""
        self._answered = False

    def filter(self, data: bytes) -> bytes:
        """``data`` without the prompt, answering each prompt found."""
        data = self._held + data
        out = bytearray()
        while (at := data.find(self._prompt)) >= 0:
            out += data[:at]
            data = data[at + len(self._prompt) :]
            self._answer()
        keep = next(
            (
                n
                for n in range(min(len(data), len(self._prompt) - 1), 0, -1)
                if self._prompt.startswith(data[-n:])
            ),
            0,
        )
        self._held = data[len(data) - keep :]
        out += data[: len(data) - keep]
        return bytes(out)

    def rest(self) -> bytes:
        held, self._held = self._held, b""
        return held

    def _answer(self) -> None:
        if self._answered:
            return  # stdin is closed: sudo reads no second password, and gives up
        self._answered = True
        with contextlib.suppress(asyncssh.Error, OSError):
            self._stdin.write(self._password)
            self._stdin.write_eof()


class _HostSink:
    """Streams one host's output, each line prefixed with ``[host] `` (several hosts)."""

    def __init__(self, sink: OutputSink, label: str) -> None:
        self._sink = sink
        self._prefix = f"[{label}] "
        self._pending: dict[str, str] = {}

    async def write(self, stream: str, data: str) -> None:
        lines = (self._pending.pop(stream, "") + data).split("\n")
        rest = lines.pop()
        if len(rest) > _MAX_PENDING_LINE:
            lines.append(rest)
            rest = ""
        if rest:
            self._pending[stream] = rest
        if lines:
            await self._sink.write(stream, "".join(f"{self._prefix}{ln}\n" for ln in lines))

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for stream, rest in pending.items():
            await self._sink.write(stream, f"{self._prefix}{rest}\n")


def _error_result(message: str, *, outcome: ProcessOutcome | None = None) -> dict[str, Any]:
    outcome = outcome or ProcessOutcome(_RC_ERROR, "", "", timed_out=False)
    result = shell_result(outcome, error=message)
    result["timeout"] = outcome.timed_out
    return result


def _status(results: Mapping[str, Mapping[str, Any]]) -> ExecutionStatus:
    failed = [r for r in results.values() if not r.get("succeeded")]
    if not failed:
        return _S.SUCCEEDED
    if all(r.get("timeout") for r in failed):
        return _S.TIMEOUT
    return _S.FAILED


def _return_code(process: asyncssh.SSHClientProcess[bytes]) -> int:
    if process.exit_status is not None and process.exit_status >= 0:
        return process.exit_status
    name = (process.exit_signal or ("",))[0]
    number = getattr(signal, f"SIG{name}", None)
    return -int(number) if name and number is not None else _RC_ERROR


async def _pump(
    reader: asyncssh.SSHReader[bytes], capture: StreamCapture, prompt: _SudoPrompt | None = None
) -> None:
    while data := await reader.read(_READ_SIZE):
        await capture.feed(prompt.filter(data) if prompt is not None else data)
    if prompt is not None:
        await capture.feed(prompt.rest())
    await capture.finish()


class RemoteShellRunner(Runner):
    """Runs commands and scripts on remote hosts over SSH (both runner types).

    Args:
        defaults: the deployment's SSH defaults (user, key file, known hosts).
        output_limit: bytes of output kept and streamed per stream and host.
    """

    names = ("remote-shell-cmd", "remote-shell-script")

    def __init__(self, defaults: SshDefaults, *, output_limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self._defaults = defaults
        self._output_limit = output_limit

    async def run(self, ctx: RunContext) -> RunResult:
        """Run the action on every host of ``hosts``; the result is keyed by host."""
        params = ctx.runner_parameters
        try:
            user = str(params.get("username") or self._defaults.user)
            targets = parse_hosts(params.get("hosts"), port=params.get("port"), user=user)
            bastion = None
            if params.get("bastion_host"):
                bastion = parse_hosts(params["bastion_host"], port=params.get("port"), user=user)[0]
            plan = self._plan(ctx)
        except RunnerError as exc:
            return RunResult(_S.FAILED, _error_result(exc.message))

        limit = asyncio.Semaphore(min(len(targets), _MAX_PARALLEL) if params.get("parallel") else 1)
        multi = len(targets) > 1

        async def one(target: SshTarget) -> dict[str, Any]:
            async with limit:
                sink = _HostSink(ctx.output, target.label) if multi else None
                try:
                    return await self._run_host(ctx, target, bastion, plan, sink)
                finally:
                    if sink is not None:
                        await sink.flush()

        outcomes = await asyncio.gather(*(one(t) for t in targets))
        results = {t.label: r for t, r in zip(targets, outcomes, strict=True)}
        return RunResult(_status(results), results)

    def _plan(self, ctx: RunContext) -> _Plan:
        params = ctx.runner_parameters
        env = stringify_env(params.get("env"))
        bad = [k for k in env if not _ENV_NAME.match(k)]
        if bad:
            raise RunnerError(
                f"invalid environment variable name {bad[0]!r} in runner parameter 'env'",
                hint="names are letters, digits and underscores, not starting with a digit",
            )
        timeout = params.get("timeout")
        common: dict[str, Any] = {
            "cwd": params.get("cwd") or None,
            "env": env,
            "sudo": bool(params.get("sudo")),
            "sudo_password": params.get("sudo_password") or None,
            "sudo_prompt": f"[squall-sudo-{secrets.token_hex(8)}] ",
            "timeout": float(timeout) if timeout and float(timeout) > 0 else None,
        }
        if ctx.runner_type == "remote-shell-cmd":
            cmd = params.get("cmd")
            if not isinstance(cmd, str) or not cmd.strip():
                raise RunnerError(
                    "runner parameter 'cmd' is required and must be a non-empty string"
                )
            return _Plan(body=cmd, **common)
        script = ctx.script_file()
        base = str(params.get("dir") or "/tmp")
        remote_dir = posixpath.join(base, f"squall-{ctx.execution_id}-{secrets.token_hex(4)}")
        return _Plan(
            body="",
            script=script,
            remote_dir=remote_dir,
            arguments=tuple(action_arguments(ctx)),
            **common,
        )

    async def _run_host(
        self,
        ctx: RunContext,
        target: SshTarget,
        bastion: SshTarget | None,
        plan: _Plan,
        sink: _HostSink | None,
    ) -> dict[str, Any]:
        params = ctx.runner_parameters
        connect_timeout = min(plan.timeout or _CONNECT_TIMEOUT, _CONNECT_TIMEOUT)
        jump: asyncssh.SSHClientConnection | None = None
        conn: asyncssh.SSHClientConnection | None = None
        try:
            # Whatever ends this (an error, a cancellation), what was opened is closed.
            try:
                if bastion is not None:
                    jump = await connect(
                        bastion, params, self._defaults, connect_timeout=connect_timeout
                    )
                conn = await connect(
                    target, params, self._defaults, connect_timeout=connect_timeout, tunnel=jump
                )
            except SshError as exc:
                log.info("remote-shell %s: %s", ctx.execution_id, exc.message)
                return _error_result(exc.message)
            return await self._run_on(conn, target, plan, sink or ctx.output)
        finally:
            for opened in (conn, jump):
                if opened is not None:
                    opened.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(opened.wait_closed(), _DRAIN_AFTER_CLOSE)

    async def _run_on(
        self,
        conn: asyncssh.SSHClientConnection,
        target: SshTarget,
        plan: _Plan,
        sink: OutputSink,
    ) -> dict[str, Any]:
        if plan.script is None:
            return await self._execute(conn, target, plan, plan.body, sink)
        assert plan.remote_dir is not None
        remote_script = posixpath.join(plan.remote_dir, plan.script.name)
        try:
            try:
                await self._copy(conn, plan.script, plan.remote_dir, remote_script)
            except (asyncssh.Error, OSError) as exc:
                reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
                return _error_result(
                    f"cannot copy the script to {target.address} ({plan.remote_dir}): {reason}"
                )
            body = " ".join(shlex.quote(a) for a in (remote_script, *plan.arguments))
            return await self._execute(conn, target, plan, body, sink)
        finally:
            # Also on cancellation, during the copy or the run (bounded by _CLEANUP_TIMEOUT).
            await self._remove(conn, plan.remote_dir)

    @staticmethod
    async def _copy(
        conn: asyncssh.SSHClientConnection, script: Path, remote_dir: str, remote_script: str
    ) -> None:
        async with conn.start_sftp_client() as sftp:
            await sftp.mkdir(remote_dir, asyncssh.SFTPAttrs(permissions=0o700))
            await sftp.put(str(script), remote_script)
            await sftp.chmod(remote_script, 0o755)
            lib = script.parent / "lib"
            if lib.is_dir():
                await sftp.put(str(lib), posixpath.join(remote_dir, "lib"), recurse=True)

    @staticmethod
    async def _remove(conn: asyncssh.SSHClientConnection, remote_dir: str) -> None:
        """Remove the script's directory; best effort, bounded, also during cancellation."""
        try:
            async with asyncio.timeout(_CLEANUP_TIMEOUT):
                await conn.run(f"rm -rf -- {shlex.quote(remote_dir)}", check=False)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            log.warning("could not remove %s on the remote host: %s", remote_dir, exc)

    async def _execute(
        self,
        conn: asyncssh.SSHClientConnection,
        target: SshTarget,
        plan: _Plan,
        body: str,
        sink: OutputSink,
    ) -> dict[str, Any]:
        command = plan.command(body)
        try:
            process = await conn.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return _error_result(f"cannot start the command on {target.address}: {reason}")
        prompt = None
        if plan.sudo and plan.sudo_password:
            # stdin stays open until sudo asks (the command's own stdin is /dev/null).
            prompt = _SudoPrompt(plan.sudo_prompt, plan.sudo_password, process.stdin)
        else:
            process.stdin.write_eof()
        out = StreamCapture("stdout", sink, self._output_limit)
        err = StreamCapture("stderr", sink, self._output_limit)
        pumps = [
            asyncio.create_task(_pump(process.stdout, out)),
            asyncio.create_task(_pump(process.stderr, err, prompt)),
        ]
        timed_out = False
        try:
            async with asyncio.timeout(plan.timeout):
                await asyncio.gather(*pumps)
                await process.wait_closed()
        except TimeoutError:
            timed_out = True
            self._hang_up(process)
            await asyncio.wait(pumps, timeout=_DRAIN_AFTER_CLOSE)
        except BaseException:
            self._hang_up(process)
            raise
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

        if timed_out:
            outcome = ProcessOutcome(_RC_TIMEOUT, out.text, err.text, timed_out=True)
            return _error_result(
                f"Action failed to complete in {plan.timeout:g} seconds on {target.label}",
                outcome=outcome,
            )
        outcome = ProcessOutcome(_return_code(process), out.text, err.text, timed_out=False)
        error = sudo_error(outcome.stderr) if plan.sudo and outcome.return_code else None
        return shell_result(outcome, error=error)

    @staticmethod
    def _hang_up(process: asyncssh.SSHClientProcess[bytes]) -> None:
        """End the remote command: ask for SIGKILL (where the server allows it), close."""
        with contextlib.suppress(asyncssh.Error, OSError):
            process.send_signal("KILL")
        process.close()
