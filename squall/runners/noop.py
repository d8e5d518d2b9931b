"""The ``noop`` runner: succeeds at once with StackStorm's static result."""

from __future__ import annotations

from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, Runner, RunResult

__all__ = ["NoopRunner"]


class NoopRunner(Runner):
    """Returns ``{failed: false, succeeded: true, return_code: 0}`` whatever the input."""

    names = ("noop",)

    async def run(self, ctx: RunContext) -> RunResult:
        """Succeed without doing anything."""
        return RunResult(
            ExecutionStatus.SUCCEEDED, {"failed": False, "succeeded": True, "return_code": 0}
        )
