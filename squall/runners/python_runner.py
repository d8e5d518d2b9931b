"""The ``python-script`` runner: StackStorm Python actions in warm worker processes.

Result document (StackStorm's): ``{result, stdout, stderr, exit_code}``. ``exit_code`` is 0
when the action succeeded and 1 when it failed (an exception — its traceback is in
``stderr`` — or a ``(False, value)`` return); a timeout gives ``-9`` and status ``timeout``; a
worker that died mid-run gives its exit status and an ``error`` message. ``result`` is the
value ``run()`` returned, made JSON-serialisable (objects JSON cannot represent become their
``str()``). One trailing newline is stripped from ``stdout`` and ``stderr``.

The action runs with the environment of the host's ``RunContext.env`` (``ST2_ACTION_*``),
the ``env`` runner parameter and ``ST2_ACTION_LOG_LEVEL`` (from ``log_level``, or ``DEBUG``
when ``debug`` is set), in the directory of its entry point.
"""

from __future__ import annotations

import sys
from typing import Any

from squall.errors import RunnerError
from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, Runner, RunResult
from squall.runners.local_shell import stringify_env
from squall.runners.process import strip_trailing_newline
from squall.runners.python_host import PythonOutcome, PythonRequest
from squall.runners.python_pool import WorkerPool

__all__ = ["PythonScriptRunner"]

_STATUS = {
    "succeeded": ExecutionStatus.SUCCEEDED,
    "failed": ExecutionStatus.FAILED,
    "timeout": ExecutionStatus.TIMEOUT,
    "crashed": ExecutionStatus.FAILED,
}


def _result(outcome: PythonOutcome, timeout: Any) -> dict[str, Any]:
    if outcome.status == "succeeded":
        exit_code = 0
    elif outcome.status == "failed":
        exit_code = 1
    else:
        exit_code = outcome.exit_code if outcome.exit_code is not None else 1
    doc: dict[str, Any] = {
        "result": outcome.result,
        "stdout": strip_trailing_newline(outcome.stdout),
        "stderr": strip_trailing_newline(outcome.stderr),
        "exit_code": exit_code,
    }
    if outcome.status == "timeout":
        doc["error"] = f"Action failed to complete in {timeout} seconds"
    elif outcome.error:
        doc["error"] = outcome.error
    return doc


class PythonScriptRunner(Runner):
    """Runs Python actions through a :class:`WorkerPool`.

    Args:
        pool: the worker pool (closed by :meth:`close`).
        default_python: interpreter for actions whose ``RunContext.python`` is unset
            (default: the interpreter running Squall).
    """

    names = ("python-script",)

    def __init__(
        self, pool: WorkerPool | None = None, *, default_python: str | None = None
    ) -> None:
        self.pool = pool or WorkerPool()
        self.default_python = default_python or sys.executable

    async def run(self, ctx: RunContext) -> RunResult:
        """Run the action's ``Action.run`` in a warm worker."""
        params = ctx.runner_parameters
        timeout = params.get("timeout")
        try:
            entry = ctx.script_file()
            env = dict(ctx.env)
            env.update(stringify_env(params.get("env")))
            level = "DEBUG" if params.get("debug") else params.get("log_level") or "DEBUG"
            env["ST2_ACTION_LOG_LEVEL"] = str(level)
            request = PythonRequest(
                entry_point=str(entry),
                parameters=ctx.action_parameters,
                pack_path=str(ctx.pack_path) if ctx.pack_path else None,
                config=ctx.pack_config,
                env=env,
            )
            outcome = await self.pool.run(
                ctx.python or self.default_python,
                request,
                sink=ctx.output,
                datastore=ctx.datastore,
                time_limit=float(timeout) if timeout else None,
            )
        except RunnerError as exc:
            doc = {"result": None, "stdout": "", "stderr": "", "exit_code": 1, "error": exc.message}
            return RunResult(ExecutionStatus.FAILED, doc)
        return RunResult(_STATUS[outcome.status], _result(outcome, timeout))

    async def close(self) -> None:
        """Stop the worker pool."""
        await self.pool.close()
