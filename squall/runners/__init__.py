"""Runner plugins: turn a resolved action request into a result.

The contract is in :mod:`squall.runners.base`; runner types and their parameters in
:mod:`squall.runners.catalog`; :class:`RunnerRegistry` hands out the plugins. Plugins live in
one module each: :mod:`~squall.runners.noop`, :mod:`~squall.runners.local_shell`,
:mod:`~squall.runners.python_runner` (warm workers: :mod:`~squall.runners.python_pool`),
:mod:`~squall.runners.http_request`.
"""

from __future__ import annotations

from squall.runners.base import (
    DatastoreClient,
    OutputSink,
    RunContext,
    Runner,
    RunnerTypeSpec,
    RunResult,
)
from squall.runners.catalog import RUNNER_TYPES, SHELL_COMMAND_PARAMS, SHELL_COMMAND_RUNNERS
from squall.runners.registry import RunnerRegistry, RunnerSettings

__all__ = [
    "RUNNER_TYPES",
    "SHELL_COMMAND_PARAMS",
    "SHELL_COMMAND_RUNNERS",
    "DatastoreClient",
    "OutputSink",
    "RunContext",
    "RunResult",
    "Runner",
    "RunnerRegistry",
    "RunnerSettings",
    "RunnerTypeSpec",
]
