"""The ``inquirer`` runner type: Inquiries (core.ask).

Executions of this runner type are run by the workflow engine (role ``workflow``,
``squall.engine.inquiries``), which holds them ``pending`` in the database until the
inquiry is answered or times out; runner hosts never claim them. The plugin exists so the
runner type is available and so a misrouted execution fails with a clear message instead
of hanging.
"""

from __future__ import annotations

from squall.errors import RunnerError
from squall.runners.base import RunContext, Runner, RunResult

__all__ = ["InquirerRunner"]


class InquirerRunner(Runner):
    """Marker plugin for ``inquirer`` (run by the workflow engine)."""

    names = ("inquirer",)
    #: Run by the workflow engine, not by a runner host.
    engine_managed = True

    async def run(self, ctx: RunContext) -> RunResult:
        raise RunnerError(
            f"execution {ctx.execution_id} (inquirer) must be run by the workflow engine",
            hint="start a process with the 'workflow' role (squall up runs every role)",
        )
