"""Which plugin runs which runner type, configured from :class:`RunnerSettings`.

The registry creates runner plugins lazily, one instance per plugin (``local-shell-cmd`` and
``local-shell-script`` share one), and closes them all with :meth:`RunnerRegistry.close`.
Runner types that Squall lists but does not implement yet (``available=False`` in
:data:`~squall.runners.catalog.RUNNER_TYPES`) raise a clear :class:`~squall.errors.RunnerError`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from squall.errors import RunnerError
from squall.runners.base import Runner, RunnerTypeSpec
from squall.runners.catalog import RUNNER_TYPES
from squall.runners.process import DEFAULT_OUTPUT_LIMIT

__all__ = ["ENGINE_RUNNER_TYPES", "RunnerRegistry", "RunnerSettings"]

#: Runner types whose executions the workflow engine runs (runner hosts never claim them).
ENGINE_RUNNER_TYPES: frozenset[str] = frozenset({"orquesta", "action-chain", "inquirer"})


def _default_workers() -> int:
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class RunnerSettings:
    """Deployment settings of the runners.

    Attributes:
        python_workers: warm Python worker processes alive at most (all interpreters).
        python_max_runs_per_worker: executions a Python worker serves before it is replaced.
        python_interpreter: interpreter for Python actions of packs without a virtualenv.
        http_allow_hosts: hosts HTTP actions may reach (empty: all not denied).
        http_deny_hosts: hosts HTTP actions may never reach.
        output_limit: bytes of stdout/stderr kept and streamed per stream and execution.
        ssh_user: default SSH login user (empty: the user Squall runs as).
        ssh_key_file: default private key file (empty: OpenSSH's default key files).
        ssh_known_hosts: known hosts file (empty: ``~/.ssh/known_hosts``; ``off``: no check).
    """

    python_workers: int = field(default_factory=_default_workers)
    python_max_runs_per_worker: int = 500
    python_interpreter: str = field(default_factory=lambda: sys.executable)
    http_allow_hosts: tuple[str, ...] = ()
    http_deny_hosts: tuple[str, ...] = ()
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    ssh_user: str = ""
    ssh_key_file: str = ""
    ssh_known_hosts: str = ""


def _local_shell(settings: RunnerSettings) -> Runner:
    from squall.runners.local_shell import LocalShellRunner

    return LocalShellRunner(output_limit=settings.output_limit)


def _python(settings: RunnerSettings) -> Runner:
    from squall.runners.python_pool import WorkerPool
    from squall.runners.python_runner import PythonScriptRunner

    pool = WorkerPool(
        max_workers=settings.python_workers,
        max_runs_per_worker=settings.python_max_runs_per_worker,
        output_limit=settings.output_limit,
    )
    return PythonScriptRunner(pool, default_python=settings.python_interpreter)


def _http(settings: RunnerSettings) -> Runner:
    from squall.runners.http_request import HttpRequestRunner

    return HttpRequestRunner(
        allow_hosts=settings.http_allow_hosts, deny_hosts=settings.http_deny_hosts
    )


def _remote_shell(settings: RunnerSettings) -> Runner:
    from squall.runners.remote_shell import RemoteShellRunner
    from squall.runners.ssh_client import SshDefaults

    defaults = SshDefaults.from_settings(
        user=settings.ssh_user, key_file=settings.ssh_key_file, known_hosts=settings.ssh_known_hosts
    )
    return RemoteShellRunner(defaults, output_limit=settings.output_limit)


def _noop(settings: RunnerSettings) -> Runner:
    from squall.runners.noop import NoopRunner

    return NoopRunner()


def _orquesta(settings: RunnerSettings) -> Runner:
    from squall.runners.orquesta import OrquestaRunner

    return OrquestaRunner()


def _action_chain(settings: RunnerSettings) -> Runner:
    from squall.runners.action_chain import ActionChainRunner

    return ActionChainRunner()


def _announcement(settings: RunnerSettings) -> Runner:
    from squall.runners.announcement import AnnouncementRunner

    return AnnouncementRunner()


def _inquirer(settings: RunnerSettings) -> Runner:
    from squall.runners.inquirer import InquirerRunner

    return InquirerRunner()


#: Plugin factories by key, and the runner types each one serves.
_FACTORIES: dict[str, Callable[[RunnerSettings], Runner]] = {
    "local-shell": _local_shell,
    "python-script": _python,
    "http-request": _http,
    "remote-shell": _remote_shell,
    "noop": _noop,
    "orquesta": _orquesta,
    "action-chain": _action_chain,
    "inquirer": _inquirer,
    "announcement": _announcement,
}
_PLUGIN_OF: dict[str, str] = {
    "local-shell-cmd": "local-shell",
    "local-shell-script": "local-shell",
    "remote-shell-cmd": "remote-shell",
    "remote-shell-script": "remote-shell",
    "python-script": "python-script",
    "http-request": "http-request",
    "noop": "noop",
    "orquesta": "orquesta",
    "action-chain": "action-chain",
    "inquirer": "inquirer",
    "announcement": "announcement",
}


class RunnerRegistry:
    """Runner plugins by runner type name.

    Args:
        settings: deployment settings (defaults when omitted).
    """

    def __init__(self, settings: RunnerSettings | None = None) -> None:
        self.settings = settings or RunnerSettings()
        self._plugins: dict[str, Runner] = {}

    @property
    def specs(self) -> Mapping[str, RunnerTypeSpec]:
        """Every runner type Squall knows, available or not."""
        return RUNNER_TYPES

    @property
    def hosted_types(self) -> list[str]:
        """Runner types a runner host claims: all but those the workflow engine runs."""
        return sorted(n for n in RUNNER_TYPES if n not in ENGINE_RUNNER_TYPES)

    def available(self, name: str) -> bool:
        """True when executions of runner type ``name`` can run in this version."""
        spec = RUNNER_TYPES.get(name)
        return bool(spec and spec.available and name in _PLUGIN_OF)

    def get(self, name: str) -> Runner:
        """The plugin that runs runner type ``name``.

        Raises:
            RunnerError: the runner type is unknown, or not available in this version.
        """
        spec = RUNNER_TYPES.get(name)
        if spec is None:
            known = ", ".join(sorted(RUNNER_TYPES))
            raise RunnerError(f"unknown runner type {name!r}", hint=f"known runner types: {known}")
        if not self.available(name):
            raise RunnerError(f"runner {name!r} is not available yet in this version of Squall")
        key = _PLUGIN_OF[name]
        plugin = self._plugins.get(key)
        if plugin is None:
            plugin = self._plugins[key] = _FACTORIES[key](self.settings)
        return plugin

    async def close(self) -> None:
        """Close every plugin created so far (worker pools, HTTP clients). Idempotent."""
        plugins, self._plugins = list(self._plugins.values()), {}
        errors: list[BaseException] = []
        for plugin in plugins:
            try:
                await plugin.close()
            except Exception as exc:  # close the others before reporting
                errors.append(exc)
        if errors:
            raise RunnerError(f"closing runners failed: {errors[0]}") from errors[0]
