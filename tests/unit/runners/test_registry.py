"""The runner registry."""

from __future__ import annotations

import pytest

from squall.errors import RunnerError
from squall.runners.base import RunnerTypeSpec
from squall.runners.catalog import RUNNER_TYPES
from squall.runners.local_shell import LocalShellRunner
from squall.runners.noop import NoopRunner
from squall.runners.registry import RunnerRegistry, RunnerSettings
from squall.runners.remote_shell import RemoteShellRunner


def test_unavailable_runner_has_clear_error(monkeypatch):
    name = "later-runner"
    monkeypatch.setitem(RUNNER_TYPES, name, RunnerTypeSpec(name, "later", {}, available=False))
    with pytest.raises(RunnerError) as info:
        RunnerRegistry().get(name)
    assert str(info.value) == f"runner {name!r} is not available yet in this version of Squall"


def test_ssh_runners_share_one_plugin_with_the_deployment_defaults(tmp_path):
    settings = RunnerSettings(
        ssh_user="deploy", ssh_key_file="~/keys/id", ssh_known_hosts=str(tmp_path / "kh")
    )
    registry = RunnerRegistry(settings)
    cmd = registry.get("remote-shell-cmd")
    assert isinstance(cmd, RemoteShellRunner)
    assert registry.get("remote-shell-script") is cmd
    assert cmd._defaults.user == "deploy"
    assert cmd._defaults.known_hosts == str(tmp_path / "kh")
    assert not cmd._defaults.key_file.startswith("~")


def test_unknown_runner():
    with pytest.raises(RunnerError, match="unknown runner type 'nope'"):
        RunnerRegistry().get("nope")


async def test_plugins_are_shared_and_closed():
    registry = RunnerRegistry(RunnerSettings(python_workers=1, http_deny_hosts=("x",)))
    cmd = registry.get("local-shell-cmd")
    assert isinstance(cmd, LocalShellRunner)
    assert registry.get("local-shell-script") is cmd
    assert isinstance(registry.get("noop"), NoopRunner)
    python = registry.get("python-script")
    assert python.pool.max_workers == 1
    registry.get("http-request")
    await registry.close()
    await registry.close()
    assert registry.available("noop") and registry.available("remote-shell-cmd")


@pytest.mark.parametrize("name", ["orquesta", "action-chain", "inquirer"])
async def test_workflow_engine_runner_types_are_not_hosted(name):
    registry = RunnerRegistry()
    assert registry.available(name)
    assert name not in registry.hosted_types and "noop" in registry.hosted_types
    plugin = registry.get(name)
    with pytest.raises(RunnerError, match="must be run by the workflow engine"):
        await plugin.run(_context(name))


def test_settings_defaults():
    settings = RunnerSettings()
    assert settings.python_workers >= 2
    assert settings.python_max_runs_per_worker == 500
    assert settings.output_limit == 10 * 1024 * 1024


def _context(runner_type: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from squall.runners.base import RunContext

    return RunContext(
        execution_id="e",
        action_ref="x.y",
        pack="x",
        runner_type=runner_type,
        entry_point=None,
        pack_path=Path("/nonexistent"),
        runner_parameters={},
        action_parameters={},
        parameter_specs={},
        output=None,  # type: ignore[arg-type]
        datastore=None,  # type: ignore[arg-type]
    )


async def test_noop_result():
    from pathlib import Path

    from squall.model.status import ExecutionStatus
    from squall.runners.base import RunContext

    class NullSink:
        async def write(self, stream: str, data: str) -> None:
            raise AssertionError("noop writes no output")

    ctx = RunContext(
        execution_id="e",
        action_ref="core.noop",
        pack="core",
        runner_type="noop",
        entry_point=None,
        pack_path=Path("/nonexistent"),
        runner_parameters={},
        action_parameters={"ignored": 1},
        parameter_specs={},
        output=NullSink(),
        datastore=None,  # type: ignore[arg-type]
    )
    res = await NoopRunner().run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result == {"failed": False, "succeeded": True, "return_code": 0}
