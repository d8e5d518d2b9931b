"""local-shell-cmd and local-shell-script against real processes."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from squall.model.status import ExecutionStatus
from squall.runners.local_shell import LocalShellRunner

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def runner():
    r = LocalShellRunner()
    yield r
    await r.close()


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    (tmp_path / "pack" / "actions").mkdir(parents=True)
    return tmp_path / "pack"


def script(pack: Path, name: str, body: str, *, executable: bool = False) -> str:
    path = pack / "actions" / name
    path.write_text(body)
    mode = path.stat().st_mode
    path.chmod(mode | stat.S_IXUSR if executable else mode & ~(stat.S_IXUSR | stat.S_IXGRP))
    return name


async def test_echo_succeeds_with_stackstorm_result(runner, make_ctx):
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "echo hello", "timeout": 10})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result == {
        "stdout": "hello",
        "stderr": "",
        "return_code": 0,
        "succeeded": True,
        "failed": False,
    }
    assert ctx.output.text("stdout") == "hello\n"


async def test_stderr_and_nonzero_exit_fail(runner, make_ctx):
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "echo oops >&2; exit 3"})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert res.result["return_code"] == 3
    assert res.result["stderr"] == "oops"
    assert res.result["failed"] is True and res.result["succeeded"] is False
    assert ctx.output.text("stderr") == "oops\n"


async def test_only_one_trailing_newline_is_stripped(runner, make_ctx):
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "printf 'a\\n\\n'"})
    res = await runner.run(ctx)
    assert res.result["stdout"] == "a\n"


async def test_timeout_kills_the_whole_group(runner, make_ctx, tmp_path, alive, poll):
    pidfile = tmp_path / "child.pid"
    cmd = f"sleep 300 & echo $! > {pidfile}; echo started; wait"
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": cmd, "timeout": 1})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.TIMEOUT
    assert res.result["return_code"] == -9
    assert res.result["stdout"] == "started"
    assert "failed to complete in 1 seconds" in res.result["error"]
    child = int(pidfile.read_text())
    await poll(lambda: not alive(child), within=5)


async def test_cancel_kills_the_group_and_propagates(runner, make_ctx, tmp_path, alive, poll):
    pidfile = tmp_path / "child.pid"
    cmd = f"sleep 300 & echo $! > {pidfile}; wait"
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": cmd, "timeout": 100})
    task = asyncio.create_task(runner.run(ctx))
    await poll(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    child = int(pidfile.read_text())
    assert alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await poll(lambda: not alive(child), within=5)


async def test_output_streams_before_exit_without_newline(runner, make_ctx, tmp_path, poll):
    gate = tmp_path / "gate"
    cmd = f"printf 'progress 50%%'; while [ ! -e {gate} ]; do sleep 0.05; done; echo ' done'"
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": cmd, "timeout": 30})
    task = asyncio.create_task(runner.run(ctx))
    await poll(lambda: ctx.output.text("stdout") == "progress 50%")
    assert not task.done()
    gate.touch()
    res = await task
    assert res.result["stdout"] == "progress 50% done"


async def test_multibyte_split_across_chunks_decodes_whole(runner, make_ctx):
    # "é" is two bytes; the first write ends in the middle of it.
    cmd = "printf '\\303'; sleep 0.2; printf '\\251\\n'"
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": cmd})
    res = await runner.run(ctx)
    assert res.result["stdout"] == "é"
    assert "\ufffd" not in ctx.output.text("stdout")


async def test_env_and_ctx_env_and_clean_base(runner, make_ctx, monkeypatch):
    monkeypatch.setenv("SQUALL_SECRET_SETTING", "do-not-leak")
    ctx = make_ctx(
        "local-shell-cmd",
        runner_parameters={
            "cmd": 'echo "$FOO|$ST2_ACTION_EXECUTION_ID|$SQUALL_SECRET_SETTING|$BOOL"; '
            'test -n "$PATH"',
            "env": {"FOO": "bar baz", "BOOL": True},
        },
        env={"ST2_ACTION_EXECUTION_ID": "exec-42", "FOO": "overridden"},
    )
    res = await runner.run(ctx)
    assert res.result["stdout"] == "bar baz|exec-42||true"
    assert res.status == ExecutionStatus.SUCCEEDED


async def test_cwd_default_and_given(runner, make_ctx, tmp_path, same_path):
    res = await runner.run(make_ctx("local-shell-cmd", runner_parameters={"cmd": "pwd"}))
    assert same_path(res.result["stdout"], "/tmp")
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "pwd", "cwd": str(tmp_path)})
    res = await runner.run(ctx)
    assert same_path(res.result["stdout"], tmp_path)


async def test_missing_cwd_fails_clearly(runner, make_ctx, tmp_path):
    missing = tmp_path / "nope"
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "true", "cwd": str(missing)})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "does not exist" in res.result["error"]


async def test_cmd_does_not_get_action_parameters(runner, make_ctx):
    ctx = make_ctx(
        "local-shell-cmd",
        runner_parameters={"cmd": 'echo "$#:$*"'},
        action_parameters={"x": "1"},
    )
    res = await runner.run(ctx)
    assert res.result["stdout"] == "0:"


ARGS_SCRIPT = """#!/usr/bin/env python3
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}))
"""


async def test_script_runs_without_exec_bit_with_named_and_positional(
    runner, make_ctx, pack, same_path
):
    import json

    entry = script(pack, "args.py", ARGS_SCRIPT)
    specs = {
        "first": {"type": "string", "position": 0},
        "flag": {"type": "boolean", "position": 1},
        "items": {"type": "array", "position": 2},
        "obj": {"type": "object", "position": 3},
        "missing": {"type": "string", "position": 4},
        "name": {"type": "string"},
        "force": {"type": "boolean"},
        "quiet": {"type": "boolean"},
        "empty": {"type": "string"},
    }
    params = {
        "first": "a b",
        "flag": True,
        "items": ["x", "y"],
        "obj": {"k": 1},
        "name": "bob",
        "force": True,
        "quiet": False,
        "empty": "",
    }
    ctx = make_ctx(
        "local-shell-script",
        entry_point=entry,
        pack_path=pack,
        action_parameters=params,
        parameter_specs=specs,
        runner_parameters={"kwarg_op": "--", "timeout": 20},
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    out = json.loads(res.result["stdout"])
    assert out["argv"] == ["--name=bob", "--force", "a b", "1", "x,y", '{"k":1}', ""]
    assert same_path(out["cwd"], pack / "actions")


async def test_kwarg_op(runner, make_ctx, pack):
    import json

    entry = script(pack, "args.py", ARGS_SCRIPT)
    ctx = make_ctx(
        "local-shell-script",
        entry_point=entry,
        pack_path=pack,
        action_parameters={"level": 3},
        parameter_specs={"level": {"type": "integer"}},
        runner_parameters={"kwarg_op": "-"},
    )
    res = await runner.run(ctx)
    assert json.loads(res.result["stdout"])["argv"] == ["-level=3"]


async def test_parameter_values_cannot_inject_shell(runner, make_ctx, pack, tmp_path):
    marker = tmp_path / "pwned"
    entry = script(pack, "echo.sh", 'printf "%s\\n" "$@"\n')  # no shebang: bash
    evil = f"$(touch {marker}); touch {marker}; `touch {marker}`"
    ctx = make_ctx(
        "local-shell-script",
        entry_point=entry,
        pack_path=pack,
        action_parameters={"pos": evil, "named": evil},
        parameter_specs={"pos": {"type": "string", "position": 0}, "named": {"type": "string"}},
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["stdout"].splitlines() == [f"--named={evil}", evil]
    assert not marker.exists()


async def test_executable_script_with_shebang_args(runner, make_ctx, pack):
    entry = script(pack, "s.sh", "#!/bin/bash -e\nfalse\necho unreachable\n", executable=True)
    res = await runner.run(make_ctx("local-shell-script", entry_point=entry, pack_path=pack))
    assert res.status == ExecutionStatus.FAILED
    assert res.result["stdout"] == ""


async def test_missing_entry_point_fails_clearly(runner, make_ctx, pack):
    ctx = make_ctx("local-shell-script", entry_point="nope.sh", pack_path=pack)
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "nope.sh" in res.result["error"] and "not found" in res.result["error"]


async def test_sudo_as_root_runs_directly(make_ctx):
    if os.geteuid() != 0:
        pytest.skip("needs to run as root")
    runner = LocalShellRunner(sudo_path="/nonexistent/sudo")
    res = await runner.run(
        make_ctx("local-shell-cmd", runner_parameters={"cmd": "id -u", "sudo": True})
    )
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["stdout"] == "0"


async def test_sudo_missing_fails_clearly(make_ctx, tmp_path):
    runner = LocalShellRunner(sudo_path=str(tmp_path / "no-sudo-here"), euid=1000)
    ctx = make_ctx("local-shell-cmd", runner_parameters={"cmd": "true", "sudo": True})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "'sudo' command is not installed" in res.result["error"]


async def test_sudo_password_prompt_fails_clearly_instead_of_hanging(make_ctx, tmp_path):
    # A stand-in with sudo's behaviour: -n and no cached credentials → refuse at once.
    fake = tmp_path / "sudo"
    fake.write_text(
        "#!/bin/bash\n"
        'for a in "$@"; do [ "$a" = -n ] && {\n'
        '  echo "sudo: a password is required" >&2; exit 1; }; done\n'
        "read -r pw\n"
        '[ "$pw" = sesame ] || { echo "sudo: 1 incorrect password attempt" >&2; exit 1; }\n'
        'while [ "$1" != -- ]; do shift; done; shift; exec "$@"\n'
    )
    fake.chmod(0o755)
    runner = LocalShellRunner(sudo_path=str(fake), euid=1000)
    res = await runner.run(
        make_ctx(
            "local-shell-cmd", runner_parameters={"cmd": "echo hi", "sudo": True, "timeout": 10}
        )
    )
    assert res.status == ExecutionStatus.FAILED
    assert "sudo needs a password" in res.result["error"]
    ok = await runner.run(
        make_ctx(
            "local-shell-cmd",
            runner_parameters={"cmd": "echo hi", "sudo": True, "sudo_password": "sesame"},
        )
    )
    wrong = await runner.run(
        make_ctx(
            "local-shell-cmd",
            runner_parameters={"cmd": "echo hi", "sudo": True, "sudo_password": "guess"},
        )
    )
    assert wrong.status == ExecutionStatus.FAILED
    assert wrong.result["error"] == "sudo rejected the sudo_password runner parameter"
    assert "guess" not in repr(wrong.result)
    assert ok.status == ExecutionStatus.SUCCEEDED, ok.result
    assert ok.result["stdout"] == "hi"
    assert "sesame" not in repr(ok.result)


async def test_output_cap_truncates_with_note(make_ctx):
    runner = LocalShellRunner(output_limit=1000)
    ctx = make_ctx(
        "local-shell-cmd", runner_parameters={"cmd": "head -c 100000 /dev/zero | tr '\\0' x"}
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["stdout"].startswith("x" * 1000)
    assert "truncated after 1000 bytes" in res.result["stdout"]
    assert len(res.result["stdout"]) < 1100


async def test_sudo_that_does_not_ask_never_hands_the_password_to_the_command(make_ctx, tmp_path):
    # A stand-in for sudo with NOPASSWD: it runs the command without reading stdin.
    fake = tmp_path / "sudo"
    fake.write_text('#!/bin/bash\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n')
    fake.chmod(0o755)
    runner = LocalShellRunner(sudo_path=str(fake), euid=1000)
    res = await runner.run(
        make_ctx(
            "local-shell-cmd",
            runner_parameters={
                "cmd": "cat; echo done",
                "sudo": True,
                "sudo_password": "sesame-not-for-cat",
                "timeout": 10,
            },
        )
    )
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result["stdout"] == "done"
    assert "sesame" not in repr(res.result)
