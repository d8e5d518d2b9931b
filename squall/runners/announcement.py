"""The ``announcement`` runner: publish a message on the event stream.

Nothing is sent from here: the execution's result *is* the announcement. When an
``announcement`` execution succeeds, ``/stream/v1/stream`` emits ``st2.announcement__<route>``
with the result as its data (``squall/engine/stream.py``), to every process's clients and to
clients that reconnect later with ``Last-Event-ID``.
"""

from __future__ import annotations

from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, Runner, RunResult

__all__ = ["AnnouncementRunner"]


class AnnouncementRunner(Runner):
    """Succeeds with the action's parameters (the payload), as StackStorm's runner does."""

    names = ("announcement",)

    async def run(self, ctx: RunContext) -> RunResult:
        """Check the ``experimental`` acknowledgement and return the payload."""
        if not ctx.runner_parameters.get("experimental"):
            error = f"action {ctx.action_ref}: the announcement runner needs experimental=true"
            return RunResult(ExecutionStatus.FAILED, {"error": error})
        return RunResult(ExecutionStatus.SUCCEEDED, dict(ctx.action_parameters))
