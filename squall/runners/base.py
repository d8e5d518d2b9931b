"""The runner plugin contract.

A runner turns a resolved action request into a result. The runner host (``squall.engine``)
claims an execution, resolves its parameters, builds a :class:`RunContext` and awaits
:meth:`Runner.run`. Cancellation is asyncio cancellation: the host cancels the task that awaits
``run``; a runner that started processes must kill them (the whole process group) before it
lets ``CancelledError`` propagate.

Runners never touch the database. Everything they need goes through the context: output is
streamed through :class:`OutputSink`, datastore access through :class:`DatastoreClient`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from squall.errors import RunnerError
from squall.model.status import ExecutionStatus

__all__ = [
    "DatastoreClient",
    "OutputSink",
    "RunContext",
    "RunResult",
    "Runner",
    "RunnerTypeSpec",
]


class OutputSink(Protocol):
    """Receives the action's output as it is produced (stored in chunks, tail-able)."""

    async def write(self, stream: str, data: str) -> None:
        """Append ``data`` to ``stream`` (``stdout`` or ``stderr``)."""


class DatastoreClient(Protocol):
    """Datastore access on behalf of the execution's user (used by Python actions)."""

    async def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None: ...

    async def set_value(
        self,
        name: str,
        value: str,
        *,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool: ...

    async def delete_value(
        self, name: str, *, local: bool = True, scope: str = "system"
    ) -> bool: ...

    async def list_values(
        self, *, local: bool = True, prefix: str | None = None, scope: str = "system"
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class RunnerTypeSpec:
    """Metadata of a runner type, as served by ``/api/v1/runnertypes``.

    ``runner_parameters`` uses the same format as action parameters (JSON-schema properties
    plus ``required``, ``secret``, ``immutable``, ``position``, ``default``).
    """

    name: str
    description: str
    runner_parameters: Mapping[str, Mapping[str, Any]]
    enabled: bool = True
    output_key: str | None = None
    output_schema: Mapping[str, Any] | None = None
    #: Set for runners that arrive in a later release: registered, but executions fail with a
    #: clear message.
    available: bool = True

    def as_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled and self.available,
            "runner_package": self.name.replace("-", "_"),
            "runner_module": self.name.replace("-", "_"),
            "runner_parameters": {k: dict(v) for k, v in self.runner_parameters.items()},
        }
        if self.output_key:
            doc["output_key"] = self.output_key
        if self.output_schema:
            doc["output_schema"] = dict(self.output_schema)
        return doc


@dataclass
class RunContext:
    """Everything a runner needs for one execution. Built by the runner host."""

    execution_id: str
    action_ref: str
    pack: str
    runner_type: str
    #: ``entry_point`` from the action metadata, relative to the pack's ``actions/`` dir.
    entry_point: str | None
    #: Absolute path of the pack directory (``None`` for actions without files).
    pack_path: Path | None
    #: Resolved, validated, type-cast runner parameters (defaults applied).
    runner_parameters: dict[str, Any]
    #: Resolved, validated, type-cast action parameters (runner parameters excluded).
    action_parameters: dict[str, Any]
    #: The merged parameter metadata (runner + action), for positional serialization.
    parameter_specs: Mapping[str, Mapping[str, Any]]
    output: OutputSink
    datastore: DatastoreClient
    user: str = "admin"
    #: The pack's configuration (``configs/<pack>.yaml`` validated against its schema).
    pack_config: dict[str, Any] = field(default_factory=dict)
    #: Extra environment for the action: ``ST2_ACTION_*`` and ``SQUALL_*`` variables.
    env: dict[str, str] = field(default_factory=dict)
    #: Python interpreter for python-script actions (a pack's virtualenv, or Squall's own).
    python: str | None = None
    #: Execution context (parent, trace, rule …), read-only for runners.
    context: dict[str, Any] = field(default_factory=dict)
    #: Names of secret parameters; runners must not echo their values in messages.
    secret_names: frozenset[str] = frozenset()

    def script_file(self) -> Path:
        """The action's file on this host: ``entry_point`` under the pack's ``actions/``.

        Raises:
            RunnerError: no entry point, no pack directory, or the file does not exist.
        """
        if not self.entry_point:
            raise RunnerError(f"action {self.action_ref} has no entry_point to run")
        path = Path(self.entry_point)
        if not path.is_absolute():
            if self.pack_path is None:
                raise RunnerError(f"action {self.action_ref} has no pack directory")
            path = self.pack_path / "actions" / self.entry_point
        if not path.is_file():
            raise RunnerError(
                f"entry point {self.entry_point!r} of action {self.action_ref} not found at "
                f"{str(path)!r}"
            )
        return path


@dataclass(frozen=True)
class RunResult:
    """Terminal status and result document of one run."""

    status: ExecutionStatus
    result: Any

    def __post_init__(self) -> None:
        if self.status not in {
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.TIMEOUT,
            ExecutionStatus.CANCELED,
        }:
            raise ValueError(f"a run cannot end in status {self.status!r}")


class Runner(abc.ABC):
    """Base class of runner plugins; one module per runner under ``squall.runners``."""

    #: The runner type names this plugin implements (``local-shell-cmd`` …).
    names: tuple[str, ...] = ()

    @abc.abstractmethod
    async def run(self, ctx: RunContext) -> RunResult:
        """Run the action to completion and return its status and result.

        Must honour ``timeout`` runner parameters itself (status ``timeout``). On
        ``asyncio.CancelledError`` kill whatever was started, then re-raise.
        """

    async def close(self) -> None:
        """Release long-lived resources (worker pools, HTTP clients). Idempotent."""
        return None
