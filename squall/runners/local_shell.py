"""The ``local-shell-cmd`` and ``local-shell-script`` runners.

``local-shell-cmd`` runs ``cmd`` with ``/bin/bash -c`` (``/bin/sh -c`` where bash is
missing); the command was rendered shell-safely before it gets here, and action parameters are
not appended to it. ``local-shell-script`` runs the action's entry point file through the
interpreter named by its shebang (``bash`` without one), so the executable bit is not needed,
with the action parameters as arguments (see :mod:`squall.runners.script_args`).

Working directory: ``cwd`` when given, otherwise the system temporary directory for commands
and the script's own directory for scripts. Environment: a clean base
(:func:`~squall.runners.process.base_environment`), then the host's ``RunContext.env``
(``ST2_ACTION_*``), then the ``env`` runner parameter.

``sudo: true`` prefixes ``sudo -E -H -n --`` (``-S`` with the password on stdin when
``sudo_password`` is set). When Squall already runs as root the command runs directly. A
missing ``sudo`` or a password prompt fails the run with a clear message instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from squall.errors import RunnerError
from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, Runner, RunResult
from squall.runners.catalog import RUNNER_TYPES
from squall.runners.process import (
    DEFAULT_OUTPUT_LIMIT,
    ProcessOutcome,
    base_environment,
    run_process,
    strip_trailing_newline,
)
from squall.runners.script_args import script_arguments

__all__ = [
    "LocalShellRunner",
    "action_arguments",
    "shell_result",
    "stringify_env",
    "sudo_error",
]

_SUDO_NEEDS_PASSWORD = ("a password is required", "a terminal is required")


def stringify_env(env: Any) -> dict[str, str]:
    """Turn the ``env`` runner parameter into string variables (``None`` values dropped)."""
    if not env:
        return {}
    if not isinstance(env, Mapping):
        raise RunnerError(f"runner parameter 'env' must be an object, got {type(env).__name__}")
    out: dict[str, str] = {}
    for key, value in env.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        else:
            out[str(key)] = str(value)
    return out


def shell_result(outcome: ProcessOutcome, *, error: str | None = None) -> dict[str, Any]:
    """The StackStorm result document of a shell run."""
    succeeded = outcome.return_code == 0 and not outcome.timed_out and error is None
    result: dict[str, Any] = {
        "failed": not succeeded,
        "succeeded": succeeded,
        "return_code": outcome.return_code,
        "stdout": strip_trailing_newline(outcome.stdout),
        "stderr": strip_trailing_newline(outcome.stderr),
    }
    if error:
        result["error"] = error
    return result


#: Runs its arguments with stdin from /dev/null (``sh -c 'exec "$@" </dev/null' sh ARGV…``).
_NO_STDIN = ("/bin/sh", "-c", 'exec "$@" </dev/null', "sh")


def sudo_error(stderr: str) -> str | None:
    """Why a command run with sudo failed, when sudo itself refused (else ``None``)."""
    if any(s in stderr for s in _SUDO_NEEDS_PASSWORD):
        return (
            "sudo needs a password: set the sudo_password runner parameter, or allow "
            "passwordless sudo (NOPASSWD) for the Squall user"
        )
    if "incorrect password" in stderr:
        return "sudo rejected the sudo_password runner parameter"
    return None


def action_arguments(ctx: RunContext) -> list[str]:
    """The script's arguments from the action parameters (runner parameters left out)."""
    return script_arguments(
        ctx.action_parameters,
        ctx.parameter_specs,
        kwarg_op=str(ctx.runner_parameters.get("kwarg_op") or "--"),
        exclude=RUNNER_TYPES[ctx.runner_type].runner_parameters.keys(),
    )


def _failure(message: str) -> RunResult:
    outcome = ProcessOutcome(return_code=1, stdout="", stderr="", timed_out=False)
    return RunResult(ExecutionStatus.FAILED, shell_result(outcome, error=message))


def _shebang(script: Path) -> list[str]:
    """The interpreter argv from a script's ``#!`` line, the way the kernel splits it."""
    try:
        with script.open("rb") as fh:
            first = fh.readline(512)
    except OSError as exc:
        raise RunnerError(f"cannot read script {str(script)!r}: {exc.strerror or exc}") from exc
    if not first.startswith(b"#!"):
        return []
    line = first[2:].decode("utf-8", errors="replace").strip()
    interpreter, _, arg = line.partition(" ")
    if not interpreter:
        return []
    arg = arg.strip()
    return [interpreter, arg] if arg else [interpreter]


class LocalShellRunner(Runner):
    """Runs local shell commands and scripts (both runner types share one plugin).

    Args:
        output_limit: bytes of output kept and streamed per stream.
        sudo_path: the ``sudo`` program; default: looked up on ``PATH`` when needed.
        euid: the effective user id to assume (default: this process's); for tests.
    """

    names = ("local-shell-cmd", "local-shell-script")

    def __init__(
        self,
        *,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        sudo_path: str | None = None,
        euid: int | None = None,
    ) -> None:
        self._output_limit = output_limit
        self._sudo_path = sudo_path
        self._euid = os.geteuid() if euid is None else euid
        self._shell = next(
            (sh for sh in ("/bin/bash", "/usr/bin/bash", "/bin/sh") if os.access(sh, os.X_OK)),
            "/bin/sh",
        )

    async def run(self, ctx: RunContext) -> RunResult:
        """Run the command or script of ``ctx`` and report its exit status and output."""
        params = ctx.runner_parameters
        try:
            if ctx.runner_type == "local-shell-cmd":
                argv, default_cwd = self._command_argv(params)
            else:
                argv, default_cwd = self._script_argv(ctx)
            env = base_environment()
            env.update(ctx.env)
            env.update(stringify_env(params.get("env")))
        except RunnerError as exc:
            return _failure(exc.message)

        cwd = params.get("cwd") or default_cwd
        password = params.get("sudo_password")
        stdin_data: bytes | None = None
        use_sudo = bool(params.get("sudo")) and self._euid != 0
        if use_sudo:
            sudo = self._sudo_path or shutil.which("sudo", path=env.get("PATH"))
            if not sudo or not os.access(sudo, os.X_OK):
                return _failure(
                    "sudo was requested (sudo: true) but the 'sudo' command is not installed "
                    "on this runner host; install sudo and allow the Squall user to use it, "
                    "or run the action without sudo"
                )
            if password:
                # Only sudo may read the password: when it does not ask (NOPASSWD, cached
                # credentials) the password must not be left on the command's stdin, so the
                # command runs with stdin from /dev/null.
                argv = [sudo, "-S", "-p", "", "-E", "-H", "--", *_NO_STDIN, *argv]
                stdin_data = f"{password}\n".encode()
            else:
                argv = [sudo, "-E", "-H", "-n", "--", *argv]

        timeout = params.get("timeout")
        try:
            outcome = await run_process(
                argv,
                sink=ctx.output,
                env=env,
                cwd=cwd,
                time_limit=float(timeout) if timeout else None,
                stdin_data=stdin_data,
                output_limit=self._output_limit,
            )
        except RunnerError as exc:
            return _failure(exc.message)
        return self._finish(outcome, timeout=timeout, used_sudo=use_sudo)

    def _finish(self, outcome: ProcessOutcome, *, timeout: Any, used_sudo: bool) -> RunResult:
        if outcome.timed_out:
            message = f"Action failed to complete in {timeout} seconds"
            return RunResult(ExecutionStatus.TIMEOUT, shell_result(outcome, error=message))
        error = None
        if used_sudo and outcome.return_code != 0:
            error = sudo_error(outcome.stderr)
        status = ExecutionStatus.SUCCEEDED if outcome.return_code == 0 else ExecutionStatus.FAILED
        return RunResult(status, shell_result(outcome, error=error))

    def _command_argv(self, params: Mapping[str, Any]) -> tuple[list[str], str]:
        cmd = params.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise RunnerError("runner parameter 'cmd' is required and must be a non-empty string")
        return [self._shell, "-c", cmd], tempfile.gettempdir()

    def _script_argv(self, ctx: RunContext) -> tuple[list[str], str]:
        script = ctx.script_file()
        interpreter = _shebang(script) or [self._shell]
        return [*interpreter, str(script), *action_arguments(ctx)], str(script.parent)
