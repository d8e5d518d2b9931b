"""The ``action-chain`` runner type: Action chains.

Executions of this runner type are run by the workflow engine (role ``workflow``,
``squall.engine.workflows``), which holds them in the database while their children run;
runner hosts never claim them. The plugin exists so the runner type is available and so a
misrouted execution fails with a clear message instead of hanging.
"""

from __future__ import annotations

from squall.errors import RunnerError
from squall.runners.base import RunContext, Runner, RunResult

__all__ = ["ActionChainRunner"]


class ActionChainRunner(Runner):
    """Marker plugin for ``action-chain`` (run by the workflow engine)."""

    names = ("action-chain",)
    #: Run by the workflow engine, not by a runner host.
    engine_managed = True

    async def run(self, ctx: RunContext) -> RunResult:
        raise RunnerError(
            f"execution {ctx.execution_id} (action-chain) must be run by the workflow engine",
            hint="start a process with the 'workflow' role (squall up runs every role)",
        )
