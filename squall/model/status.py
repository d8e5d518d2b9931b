"""Execution and workflow statuses, with StackStorm's names."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELABLE_STATUSES",
    "TERMINAL_STATUSES",
    "ExecutionStatus",
    "is_terminal",
]


class ExecutionStatus(StrEnum):
    """Every status an action execution can be in (StackStorm's ``LIVEACTION_STATUS_*``)."""

    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    DELAYED = "delayed"
    RUNNING = "running"
    PENDING = "pending"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABANDONED = "abandoned"
    CANCELING = "canceling"
    CANCELED = "canceled"


TERMINAL_STATUSES: frozenset[str] = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMEOUT,
        ExecutionStatus.ABANDONED,
        ExecutionStatus.CANCELED,
    }
)

ACTIVE_STATUSES: frozenset[str] = frozenset(
    {
        ExecutionStatus.REQUESTED,
        ExecutionStatus.SCHEDULED,
        ExecutionStatus.DELAYED,
        ExecutionStatus.RUNNING,
        ExecutionStatus.PENDING,
        ExecutionStatus.PAUSING,
        ExecutionStatus.PAUSED,
        ExecutionStatus.RESUMING,
        ExecutionStatus.CANCELING,
    }
)

CANCELABLE_STATUSES: frozenset[str] = ACTIVE_STATUSES - {ExecutionStatus.CANCELING}


def is_terminal(status: str) -> bool:
    """True when no further transition is possible."""
    return status in TERMINAL_STATUSES
