"""remote-shell-cmd and remote-shell-script against a real SSH server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path

import pytest

from squall.model.status import ExecutionStatus
from squall.runners.remote_shell import RemoteShellRunner
from squall.runners.ssh_client import SshDefaults
from tests.sshd import PASSWORD, USER, SshServer, start_ssh_server

pytestmark = pytest.mark.timeout(60)

HOSTILE = ["; rm -rf /", "$(id)", "`id`", 'it\'s "quoted"', "two\nlines", "$HOME *"]


@pytest.fixture
async def sshd(tmp_path: Path):
    server = await start_ssh_server(tmp_path / "sshd")
    yield server
    await server.close()


def make_runner(server: SshServer, **overrides: object) -> RemoteShellRunner:
    defaults = {
        "user": USER,
        "key_file": str(server.key_file),
        "known_hosts": str(server.known_hosts),
    }
    defaults.update(overrides)  # type: ignore[arg-type]
    return RemoteShellRunner(SshDefaults(**defaults))  # type: ignore[arg-type]


@pytest.fixture
def runner(sshd: SshServer) -> RemoteShellRunner:
    return make_runner(sshd)


def remote(make_ctx, hosts: str, cmd: str, **params: object):  # type: ignore[no-untyped-def]
    return make_ctx(
        "remote-shell-cmd", runner_parameters={"hosts": hosts, "cmd": cmd, "timeout": 20, **params}
    )


async def test_command_on_two_hosts_gives_a_result_per_host(runner, sshd, make_ctx):
    ctx = remote(make_ctx, sshd.hosts, "echo hello; echo warn >&2", env={"GREETING": "hi there"})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    a, b = (f"127.0.0.1:{p}" for p in sshd.ports)
    expected = {
        "stdout": "hello",
        "stderr": "warn",
        "return_code": 0,
        "succeeded": True,
        "failed": False,
    }
    assert res.result == {a: expected, b: expected}
    # Several hosts: each streamed line names its host.
    assert sorted(ctx.output.text("stdout").splitlines()) == sorted(
        [f"[{a}] hello", f"[{b}] hello"]
    )
    assert sorted(ctx.output.text("stderr").splitlines()) == sorted([f"[{a}] warn", f"[{b}] warn"])


async def test_one_host_streams_raw_output_with_env_and_cwd(runner, sshd, make_ctx, tmp_path):
    ctx = remote(
        make_ctx,
        f"127.0.0.1:{sshd.ports[0]}",
        'printf "%s|%s\\n" "$GREETING" "$(pwd)"',
        env={"GREETING": "hi $(id) 'x'"},
        cwd=str(tmp_path),
    )
    res = await runner.run(ctx)
    out = f"hi $(id) 'x'|{tmp_path}"
    assert res.result[f"127.0.0.1:{sshd.ports[0]}"]["stdout"] == out
    assert ctx.output.text("stdout") == out + "\n"


async def test_unreachable_host_fails_the_execution_with_every_host_reported(
    runner, sshd, make_ctx
):
    a, b = (f"127.0.0.1:{p}" for p in sshd.ports)
    res = await runner.run(remote(make_ctx, f"{a},{b},127.0.0.1:1", "echo ok"))
    assert res.status == ExecutionStatus.FAILED
    assert res.result[a]["succeeded"] is True and res.result[b]["succeeded"] is True
    down = res.result["127.0.0.1:1"]
    assert down["failed"] is True and down["return_code"] == 255 and down["timeout"] is False
    assert down["error"].startswith("cannot connect to 127.0.0.1:1: ")


async def test_nonzero_exit_on_one_host_fails_the_execution(runner, sshd, make_ctx, tmp_path):
    flag = tmp_path / "first-done"
    # The hosts run one at a time: the first one creates the flag, the second one fails.
    mark = shlex.quote(str(flag))
    cmd = f"if [ -e {mark} ]; then echo late >&2; exit 3; fi; touch {mark}; echo first"
    res = await runner.run(remote(make_ctx, sshd.hosts, cmd))
    a, b = (f"127.0.0.1:{p}" for p in sshd.ports)
    assert res.status == ExecutionStatus.FAILED
    assert res.result[a] == {
        "stdout": "first",
        "stderr": "",
        "return_code": 0,
        "succeeded": True,
        "failed": False,
    }
    assert res.result[b] == {
        "stdout": "",
        "stderr": "late",
        "return_code": 3,
        "succeeded": False,
        "failed": True,
    }


async def test_timeout_marks_the_host_and_ends_the_remote_process(
    runner, sshd, make_ctx, tmp_path, alive, poll
):
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = remote(make_ctx, host, "echo started; sleep 300", timeout=1)
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.TIMEOUT
    r = res.result[host]
    assert r["failed"] is True and r["succeeded"] is False and r["timeout"] is True
    assert r["return_code"] == -9 and r["stdout"] == "started"
    assert "failed to complete in 1 seconds" in r["error"]
    await poll(lambda: not alive(sshd.pids[-1]), within=5)


async def test_timeout_on_one_host_and_success_on_the_other_is_a_timeout(
    runner, sshd, make_ctx, tmp_path
):
    flag = tmp_path / "slow"
    cmd = f"if [ -e {shlex.quote(str(flag))} ]; then sleep 300; fi; touch {shlex.quote(str(flag))}"
    res = await runner.run(remote(make_ctx, sshd.hosts, cmd, timeout=1))
    a, b = (f"127.0.0.1:{p}" for p in sshd.ports)
    assert res.result[a]["succeeded"] is True
    assert res.result[b]["timeout"] is True
    assert res.status == ExecutionStatus.TIMEOUT


async def test_cancel_closes_the_session_and_kills_the_remote_command(
    runner, sshd, make_ctx, alive, poll
):
    ctx = remote(make_ctx, f"127.0.0.1:{sshd.ports[0]}", "echo started; sleep 300", timeout=100)
    task = asyncio.create_task(runner.run(ctx))
    await poll(lambda: "started" in ctx.output.text("stdout"), within=10)
    pid = sshd.pids[-1]
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await poll(lambda: not alive(pid), within=5)


async def test_password_auth(sshd, make_ctx):
    runner = make_runner(sshd, key_file=str(sshd.root / "missing-key"))
    ctx = remote(
        make_ctx, f"127.0.0.1:{sshd.ports[0]}", "whoami >/dev/null; echo in", password=PASSWORD
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert PASSWORD not in repr(res.result) and PASSWORD not in "".join(sshd.commands)


async def test_wrong_password_is_a_clear_error(runner, sshd, make_ctx):
    host = f"127.0.0.1:{sshd.ports[0]}"
    res = await runner.run(remote(make_ctx, host, "echo in", password="wrong-pass"))
    assert res.status == ExecutionStatus.FAILED
    error = res.result[host]["error"]
    assert error.startswith(
        f"authentication failed for {USER}@127.0.0.1 (port {sshd.ports[0]}, password)"
    )
    assert "wrong-pass" not in repr(res.result)


async def test_key_material_and_user_at_host(sshd, make_ctx):
    runner = make_runner(sshd, user="nobody-else", key_file="")
    material = sshd.key_file.read_text()
    host = f"{USER}@127.0.0.1:{sshd.ports[1]}"
    res = await runner.run(remote(make_ctx, host, "echo key", private_key=material))
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result[host]["stdout"] == "key"
    assert "PRIVATE KEY" not in repr(res.result)


async def test_key_path_and_wrong_user(sshd, make_ctx):
    runner = make_runner(sshd, key_file="")
    host = f"127.0.0.1:{sshd.ports[0]}"
    ok = await runner.run(remote(make_ctx, host, "echo key", private_key=str(sshd.key_file)))
    assert ok.result[host]["stdout"] == "key"
    bad = await runner.run(remote(make_ctx, host, "echo key", username="mallory"))
    assert bad.result[host]["error"].startswith("authentication failed for mallory@127.0.0.1")


async def test_unknown_host_key_is_refused(sshd, make_ctx, tmp_path):
    other = tmp_path / "other_known_hosts"
    other.write_text(
        "[127.0.0.1]:1 ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIDXdMtDbJKZfmx4aRNvf4b1Y1YUkt3b0CX1jMTOrd9wn\n"
    )
    runner = make_runner(sshd, known_hosts=str(other))
    host = f"127.0.0.1:{sshd.ports[0]}"
    res = await runner.run(remote(make_ctx, host, "echo in"))
    assert res.status == ExecutionStatus.FAILED
    assert res.result[host]["error"].startswith(
        f"host key of 127.0.0.1:{sshd.ports[0]} is not trusted"
    )
    assert "SQUALL_SSH_KNOWN_HOSTS=off" in res.result[host]["error"]
    assert sshd.commands == []


async def test_known_hosts_off_is_explicit(sshd, make_ctx, caplog):
    defaults = SshDefaults.from_settings(user=USER, key_file=str(sshd.key_file), known_hosts="off")
    assert defaults.known_hosts is None
    assert "host key checking is OFF" in caplog.text
    res = await RemoteShellRunner(defaults).run(
        remote(make_ctx, f"127.0.0.1:{sshd.ports[0]}", "echo in")
    )
    assert res.status == ExecutionStatus.SUCCEEDED


async def test_missing_known_hosts_file_is_a_clear_error(sshd, make_ctx, tmp_path):
    runner = make_runner(sshd, known_hosts=str(tmp_path / "nope"))
    host = f"127.0.0.1:{sshd.ports[0]}"
    res = await runner.run(remote(make_ctx, host, "echo in"))
    assert "known hosts file" in res.result[host]["error"]
    assert "does not exist" in res.result[host]["error"]


async def test_bad_hosts_parameter_fails_clearly(runner, make_ctx):
    res = await runner.run(remote(make_ctx, "", "echo in"))
    assert res.status == ExecutionStatus.FAILED
    assert "runner parameter 'hosts' is required" in res.result["error"]
    res = await runner.run(remote(make_ctx, "host:99999", "echo in"))
    assert "invalid port" in res.result["error"]


async def test_sudo_password_goes_to_stdin_not_the_command_line(runner, sshd, make_ctx):
    secret = "sudo-'$(id)'-pw"
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = remote(make_ctx, host, "echo as-root", sudo=True, sudo_password=secret)
    res = await runner.run(ctx)
    assert sshd.commands[0].startswith("sudo -S -p '[squall-sudo-")
    assert " -E -H -- bash -c " in sshd.commands[0]
    assert "echo as-root" in sshd.commands[0]
    assert secret not in sshd.commands[0] and secret not in repr(res.result)


# Fake sudo commands for the test server: options up to "--", then the command.
_SUDO_NOPASSWD = """#!/bin/sh
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""
_SUDO_ASKS = """#!/bin/sh
while [ "$1" != "--" ]; do
    if [ "$1" = "-p" ]; then prompt="$2"; shift; fi
    shift
done
shift
printf '%s' "$prompt" >&2
IFS= read -r password || { echo "sudo: no password was provided" >&2; exit 1; }
if [ "$password" != "$EXPECTED_SUDO_PASSWORD" ]; then
    echo "sudo: 1 incorrect password attempt" >&2
    exit 1
fi
echo "asked and answered" >&2
exec "$@"
"""


def _fake_sudo(sshd: SshServer, tmp_path: Path, script: str, password: str) -> None:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text(script)
    sudo.chmod(0o755)
    sshd.env.update(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        EXPECTED_SUDO_PASSWORD=password,
    )


async def test_sudo_that_does_not_ask_never_hands_the_password_to_the_command(
    runner, sshd, make_ctx, tmp_path
):
    secret = "the-sudo-secret"
    _fake_sudo(sshd, tmp_path, _SUDO_NOPASSWD, secret)  # NOPASSWD, or cached credentials
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = remote(make_ctx, host, "cat; echo done", sudo=True, sudo_password=secret)
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result[host]["stdout"] == "done"
    assert secret not in repr(res.result) and secret not in ctx.output.text("stdout")


async def test_sudo_that_asks_gets_the_password_and_the_command_does_not(
    runner, sshd, make_ctx, tmp_path
):
    secret = "the-sudo-secret"
    _fake_sudo(sshd, tmp_path, _SUDO_ASKS, secret)
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = remote(make_ctx, host, "cat; echo done", sudo=True, sudo_password=secret)
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    # sudo read the password; the prompt is not in the output; cat read nothing.
    assert res.result[host]["stdout"] == "done"
    assert res.result[host]["stderr"] == "asked and answered"
    assert ctx.output.text("stderr") == "asked and answered\n"
    assert secret not in repr(res.result)

    # A wrong password: sudo refuses it (and does not wait for another one).
    ctx = remote(make_ctx, host, "echo in", sudo=True, sudo_password="wrong")
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert res.result[host]["error"] == "sudo rejected the sudo_password runner parameter"


async def test_script_with_hostile_arguments_and_lib(sshd, make_ctx, tmp_path):
    pack = tmp_path / "pack"
    (pack / "actions" / "lib").mkdir(parents=True)
    (pack / "actions" / "lib" / "helper.sh").write_text("helper() { echo helper-ok; }\n")
    (pack / "actions" / "show.sh").write_text(
        '#!/bin/sh\n. "$(dirname "$0")/lib/helper.sh"\nhelper\n'
        'for a in "$@"; do printf "<%s>\\n" "$a"; done\npwd\necho "$0" >&2\n'
    )
    runner = make_runner(sshd)
    specs = {
        "first": {"type": "string", "position": 0},
        "named": {"type": "string"},
        "flag": {"type": "boolean"},
    }
    params = {"first": HOSTILE[0], "named": "\n".join(HOSTILE), "flag": True}
    remote_dir = tmp_path / "remote-tmp"
    remote_dir.mkdir()
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = make_ctx(
        "remote-shell-script",
        runner_parameters={
            "hosts": host,
            "timeout": 20,
            "dir": str(remote_dir),
            "cwd": str(tmp_path),
        },
        action_parameters=params,
        parameter_specs=specs,
        entry_point="show.sh",
        pack_path=pack,
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    lines = res.result[host]["stdout"]
    named = "\n".join(HOSTILE)
    assert lines == f"helper-ok\n<--named={named}>\n<--flag>\n<{HOSTILE[0]}>\n{tmp_path}"
    script_path = res.result[host]["stderr"]
    assert script_path.startswith(f"{remote_dir}/squall-exec-1-") and script_path.endswith(
        "/show.sh"
    )
    assert list(remote_dir.iterdir()) == []  # the copy was removed


async def test_script_timeout_still_removes_the_copy(sshd, make_ctx, tmp_path):
    pack = tmp_path / "pack"
    (pack / "actions").mkdir(parents=True)
    (pack / "actions" / "slow.sh").write_text("#!/bin/sh\necho begun\nsleep 300\n")
    remote_dir = tmp_path / "remote-tmp"
    remote_dir.mkdir()
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = make_ctx(
        "remote-shell-script",
        runner_parameters={"hosts": host, "timeout": 1, "dir": str(remote_dir)},
        entry_point="slow.sh",
        pack_path=pack,
    )
    res = await make_runner(sshd).run(ctx)
    assert res.status == ExecutionStatus.TIMEOUT
    assert res.result[host]["stdout"] == "begun"
    assert list(remote_dir.iterdir()) == []


async def test_cancel_during_the_copy_still_removes_it(sshd, make_ctx, tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    (pack / "actions").mkdir(parents=True)
    (pack / "actions" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    remote_dir = tmp_path / "remote-tmp"
    remote_dir.mkdir()
    copied = asyncio.Event()
    real_copy = RemoteShellRunner._copy

    async def slow_copy(*args: object) -> None:  # the upload stalls (a large lib/)
        await real_copy(*args)  # type: ignore[arg-type]
        copied.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(RemoteShellRunner, "_copy", staticmethod(slow_copy))
    host = f"127.0.0.1:{sshd.ports[0]}"
    ctx = make_ctx(
        "remote-shell-script",
        runner_parameters={"hosts": host, "timeout": 20, "dir": str(remote_dir)},
        entry_point="run.sh",
        pack_path=pack,
    )
    task = asyncio.create_task(make_runner(sshd).run(ctx))
    await asyncio.wait_for(copied.wait(), 10)
    assert len(list(remote_dir.iterdir())) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(remote_dir.iterdir()) == []
    assert [c.split()[:3] for c in sshd.commands] == [["rm", "-rf", "--"]]  # never ran


async def test_bastion_host_relays_the_connection(runner, sshd, make_ctx):
    bastion, target = (f"127.0.0.1:{p}" for p in sshd.ports)
    res = await runner.run(remote(make_ctx, target, "echo via", bastion_host=bastion))
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result == {
        target: {
            "stdout": "via",
            "stderr": "",
            "return_code": 0,
            "succeeded": True,
            "failed": False,
        }
    }
    assert sshd.commands == ["echo via"]


async def test_a_cancel_while_connecting_through_the_bastion_closes_it(
    runner, sshd, make_ctx, poll
):
    # The target accepts TCP connections but never speaks SSH.
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, w: accepted.append(w), "127.0.0.1", 0)
    try:
        port = silent.sockets[0].getsockname()[1]
        bastion = f"127.0.0.1:{sshd.ports[0]}"
        ctx = remote(make_ctx, f"127.0.0.1:{port}", "echo via", bastion_host=bastion)
        task = asyncio.create_task(runner.run(ctx))
        await poll(lambda: sshd.connections == 1, within=10)
        await asyncio.sleep(0.2)  # connecting to the target through it
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await poll(lambda: sshd.connections == 0, within=5)
    finally:
        silent.close()
        for writer in accepted:
            writer.close()
        await silent.wait_closed()
