"""Status names and groups as the Orquesta conductor uses them.

Squall's execution statuses (``squall.model.status``) use the same strings; the groups here
follow Orquesta's meaning, which differs in places (for instance ``pending`` and ``paused``
are not "active" for the conductor: nothing is running on the workflow's behalf).
"""

from __future__ import annotations

__all__ = [
    "ABANDONED",
    "ABENDED_STATUSES",
    "ACTIVE_STATUSES",
    "ALL_STATUSES",
    "CANCELED",
    "CANCELING",
    "CANCEL_STATUSES",
    "COMPLETED_STATUSES",
    "DELAYED",
    "FAILED",
    "PAUSED",
    "PAUSE_STATUSES",
    "PAUSING",
    "PENDING",
    "REQUESTED",
    "RESUMING",
    "RETRYING",
    "RUNNING",
    "RUNNING_STATUSES",
    "SCHEDULED",
    "STARTING_STATUSES",
    "SUCCEEDED",
    "TIMEOUT",
    "UNSET",
]

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
RETRYING = "retrying"
CANCELING = "canceling"
CANCELED = "canceled"
#: A task or workflow that has not been given a status yet (Orquesta writes ``"null"``).
UNSET = "null"

ALL_STATUSES = frozenset(
    {
        REQUESTED,
        SCHEDULED,
        DELAYED,
        RUNNING,
        PENDING,
        PAUSING,
        PAUSED,
        RESUMING,
        SUCCEEDED,
        FAILED,
        TIMEOUT,
        ABANDONED,
        RETRYING,
        CANCELING,
        CANCELED,
        UNSET,
    }
)
STARTING_STATUSES = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, PENDING})
#: Workflow statuses in which new tasks may be scheduled.
RUNNING_STATUSES = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, RESUMING, RETRYING})
#: Task statuses meaning "something is executing for this task".
ACTIVE_STATUSES = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, RESUMING, PAUSING, CANCELING})
PAUSE_STATUSES = frozenset({PAUSING, PAUSED})
CANCEL_STATUSES = frozenset({CANCELING, CANCELED})
ABENDED_STATUSES = frozenset({FAILED, TIMEOUT, ABANDONED})
COMPLETED_STATUSES = frozenset({SUCCEEDED, FAILED, TIMEOUT, ABANDONED, CANCELED})
