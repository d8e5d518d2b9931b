"""python-script: warm workers, the st2common Action API, failures, timeouts, streaming."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

from squall.model.status import ExecutionStatus
from squall.runners.python_pool import WorkerPool
from squall.runners.python_runner import PythonScriptRunner

pytestmark = pytest.mark.timeout(90)

ACTIONS = {
    "hello.py": """
        import os
        from st2common.runners.base_action import Action
        from lib.util import shout

        class Hello(Action):
            def run(self, name="world"):
                print("hello", name)
                self.logger.info("said hello")
                return {"greeting": shout(name), "pid": os.getpid(), "cwd": os.getcwd()}
    """,
    "pid.py": """
        import os
        from st2common.runners.base_action import Action

        class Pid(Action):
            def run(self):
                return os.getpid()
    """,
    "fail_tuple.py": """
        from st2common.runners.base_action import Action

        class Fail(Action):
            def run(self):
                return (False, {"reason": "asked to fail"})
    """,
    "ok_tuple.py": """
        from st2common.runners.base_action import Action

        class Ok(Action):
            def run(self):
                return (True, [1, 2])
    """,
    "boom.py": """
        from st2common.runners.base_action import Action

        def helper():
            raise ValueError("kaboom")

        class Boom(Action):
            def run(self):
                print("before")
                helper()
    """,
    "kv.py": """
        from st2common.runners.base_action import Action

        class Kv(Action):
            def run(self):
                svc = self.action_service
                before = svc.get_value("greeting")
                svc.set_value("counter", "1", ttl=60)
                listed = sorted(kv.name for kv in svc.list_values(prefix="c"))
                deleted = svc.delete_value("greeting")
                after = svc.get_value("greeting")
                return {"before": before, "listed": listed, "deleted": deleted, "after": after}
    """,
    "config.py": """
        from st2common.runners.base_action import Action

        class Cfg(Action):
            def run(self):
                return self.config
    """,
    "crash.py": """
        import os, sys
        from st2common.runners.base_action import Action

        class Crash(Action):
            def run(self):
                sys.stderr.write("about to die\\n")
                sys.stderr.flush()
                os._exit(7)
    """,
    "sleepy.py": """
        import os, subprocess, sys, time
        from st2common.runners.base_action import Action

        class Sleepy(Action):
            def run(self, pidfile):
                child = subprocess.Popen(["sleep", "300"])
                with open(pidfile, "w") as fh:
                    fh.write(f"{os.getpid()} {child.pid}")
                time.sleep(300)
    """,
    "stream.py": """
        import os, subprocess, sys, time
        from st2common.runners.base_action import Action

        class Stream(Action):
            def run(self, gate):
                sys.stdout.write("tick ")
                sys.stdout.flush()
                while not os.path.exists(gate):
                    time.sleep(0.02)
                subprocess.run(["echo", "from child"], check=True)
                print("tock", file=sys.stderr)
                return "streamed"
    """,
    "env.py": """
        import os
        from st2common.runners.base_action import Action

        class Env(Action):
            def run(self, names):
                return {n: os.environ.get(n) for n in names}
    """,
    "weird.py": """
        import math
        from st2common.runners.base_action import Action

        class Thing:
            def __str__(self):
                return "a thing"

        class Weird(Action):
            def run(self):
                return {"thing": Thing(), "nan": math.nan, (1, 2): "tuple key"}
    """,
    "syspath.py": """
        import sys
        from st2common.runners.base_action import Action

        class SysPath(Action):
            def run(self):
                try:
                    import python_worker  # noqa: F401
                    shadowed = True
                except ImportError:
                    shadowed = False
                return {"path": sys.path, "shadowed": shadowed}
    """,
    "exit0.py": """
        import sys
        from st2common.runners.base_action import Action

        class Quits(Action):
            def run(self):
                sys.exit(3)
    """,
    "old_init.py": """
        from st2common.runners.base_action import Action

        class Old(Action):
            def __init__(self, config):
                super(Old, self).__init__(config)
                self.extra = "set in __init__"

            def run(self):
                return [self.extra, self.config, self.action_service.get_value("k")]
    """,
    "base_and_leaf.py": """
        from st2common.runners.base_action import Action

        class Base(Action):
            def run(self):
                return self.kind()

        class Leaf(Base):
            def kind(self):
                return "leaf"
    """,
}


def write_pack(root: Path, name: str, actions: dict[str, str], util: str) -> Path:
    pack = root / name
    (pack / "actions" / "lib").mkdir(parents=True)
    for filename, body in actions.items():
        (pack / "actions" / filename).write_text(textwrap.dedent(body))
    (pack / "actions" / "lib" / "__init__.py").write_text("")
    (pack / "actions" / "lib" / "util.py").write_text(textwrap.dedent(util))
    return pack


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return write_pack(tmp_path, "pk", ACTIONS, "def shout(s):\n    return s.upper()\n")


@pytest.fixture
async def runner():
    r = PythonScriptRunner(WorkerPool(max_workers=2, max_runs_per_worker=500))
    yield r
    await r.close()


@pytest.fixture
def py_ctx(make_ctx, pack):
    def factory(entry: str, *, timeout: int = 30, pack_path: Path | None = None, **kw):
        runner_parameters = {"timeout": timeout, **kw.pop("runner_parameters", {})}
        return make_ctx(
            "python-script",
            entry_point=entry,
            pack_path=pack_path or pack,
            runner_parameters=runner_parameters,
            **kw,
        )

    return factory


async def test_hello_returns_result_and_output(runner, py_ctx, pack, same_path):
    ctx = py_ctx("hello.py", action_parameters={"name": "bob"})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result["exit_code"] == 0
    assert res.result["result"]["greeting"] == "BOB"
    assert same_path(res.result["result"]["cwd"], pack / "actions")
    assert res.result["stdout"] == "hello bob"
    assert "INFO actions.python.Hello [-] said hello" in res.result["stderr"]
    assert set(res.result) == {"result", "stdout", "stderr", "exit_code"}


async def test_warm_worker_is_reused(runner, py_ctx):
    pids = [(await runner.run(py_ctx("pid.py"))).result["result"] for _ in range(5)]
    assert len(set(pids)) == 1


async def test_worker_recycled_after_max_runs(py_ctx):
    async with WorkerPool(max_workers=1, max_runs_per_worker=3) as pool:
        runner = PythonScriptRunner(pool)
        pids = [(await runner.run(py_ctx("pid.py"))).result["result"] for _ in range(7)]
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[0]
    assert pids[6] not in (pids[0], pids[3])


async def test_false_tuple_fails_with_value(runner, py_ctx):
    res = await runner.run(py_ctx("fail_tuple.py"))
    assert res.status == ExecutionStatus.FAILED
    assert res.result["result"] == {"reason": "asked to fail"}
    assert res.result["exit_code"] == 1


async def test_true_tuple_succeeds_with_value(runner, py_ctx):
    res = await runner.run(py_ctx("ok_tuple.py"))
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["result"] == [1, 2]


async def test_exception_fails_with_traceback_on_stderr(runner, py_ctx):
    ctx = py_ctx("boom.py")
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert res.result["exit_code"] == 1
    assert res.result["result"] is None
    assert res.result["stdout"] == "before"
    stderr = res.result["stderr"]
    assert "Traceback (most recent call last)" in stderr
    assert "in helper" in stderr and "ValueError: kaboom" in stderr
    assert ctx.output.text("stderr").rstrip("\n") == stderr


async def test_sys_exit_nonzero_fails(runner, py_ctx):
    res = await runner.run(py_ctx("exit0.py"))
    assert res.status == ExecutionStatus.FAILED
    assert "sys.exit(3)" in res.result["stderr"]


async def test_action_service_round_trip(runner, py_ctx, new_datastore):
    ds = new_datastore({"greeting": "hi", "color": "red"})
    res = await runner.run(py_ctx("kv.py", datastore=ds))
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result["result"] == {
        "before": "hi",
        "listed": ["color", "counter"],
        "deleted": True,
        "after": None,
    }
    assert ds.items[("system", "counter")] == "1"
    assert ("system", "greeting") not in ds.items


async def test_config_is_passed(runner, py_ctx):
    config = {"api": {"url": "https://x"}, "retries": 3}
    res = await runner.run(py_ctx("config.py", pack_config=config))
    assert res.result["result"] == config


async def test_crash_fails_clearly_and_worker_is_replaced(runner, py_ctx):
    first = (await runner.run(py_ctx("pid.py"))).result["result"]
    res = await runner.run(py_ctx("crash.py"))
    assert res.status == ExecutionStatus.FAILED
    assert res.result["exit_code"] == 7
    assert "exited unexpectedly with exit code 7" in res.result["error"]
    assert "about to die" in res.result["error"]
    after = await runner.run(py_ctx("pid.py"))
    assert after.status == ExecutionStatus.SUCCEEDED
    assert after.result["result"] != first


async def test_timeout_kills_worker_and_its_children(runner, py_ctx, tmp_path, alive, poll):
    pidfile = tmp_path / "pids"
    ctx = py_ctx("sleepy.py", timeout=1, action_parameters={"pidfile": str(pidfile)})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.TIMEOUT
    assert res.result["exit_code"] == -9
    assert "failed to complete in 1 seconds" in res.result["error"]
    worker_pid, child_pid = map(int, pidfile.read_text().split())
    await poll(lambda: not alive(worker_pid) and not alive(child_pid), within=5)
    assert (await runner.run(py_ctx("pid.py"))).status == ExecutionStatus.SUCCEEDED


async def test_cancel_kills_worker(runner, py_ctx, tmp_path, alive, poll):
    pidfile = tmp_path / "pids"
    ctx = py_ctx("sleepy.py", timeout=100, action_parameters={"pidfile": str(pidfile)})
    task = asyncio.create_task(runner.run(ctx))
    await poll(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2)
    worker_pid, child_pid = map(int, pidfile.read_text().split())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await poll(lambda: not alive(worker_pid) and not alive(child_pid), within=5)
    assert (await runner.run(py_ctx("pid.py"))).status == ExecutionStatus.SUCCEEDED


async def test_output_streams_live_and_sentinel_is_stripped(runner, py_ctx, tmp_path, poll):
    gate = tmp_path / "gate"
    ctx = py_ctx("stream.py", action_parameters={"gate": str(gate)})
    task = asyncio.create_task(runner.run(ctx))
    await poll(lambda: ctx.output.text("stdout") == "tick ")
    assert not task.done()
    gate.touch()
    res = await task
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["result"] == "streamed"
    assert res.result["stdout"] == "tick from child"
    assert res.result["stderr"] == "tock"
    every_chunk = "".join(data for _, data in ctx.output.chunks)
    assert "squall-end" not in every_chunk and "\x00" not in every_chunk
    # The next execution in the same worker starts with clean output.
    nxt = py_ctx("pid.py")
    await runner.run(nxt)
    assert nxt.output.chunks == []


async def test_env_is_set_per_run_and_restored(runner, py_ctx):
    names = ["ST2_ACTION_EXECUTION_ID", "CUSTOM", "ST2_ACTION_LOG_LEVEL", "PYTHONPATH"]
    first = await runner.run(
        py_ctx(
            "env.py",
            action_parameters={"names": names},
            env={"ST2_ACTION_EXECUTION_ID": "e-1"},
            runner_parameters={"env": {"CUSTOM": 5}, "log_level": "INFO"},
        )
    )
    got = first.result["result"]
    assert got["ST2_ACTION_EXECUTION_ID"] == "e-1"
    assert got["CUSTOM"] == "5"
    assert got["ST2_ACTION_LOG_LEVEL"] == "INFO"
    assert got["PYTHONPATH"].endswith("compat")
    second = await runner.run(py_ctx("env.py", action_parameters={"names": names}))
    assert second.result["result"]["CUSTOM"] is None
    assert second.result["result"]["ST2_ACTION_EXECUTION_ID"] is None


async def test_non_serialisable_result_becomes_str(runner, py_ctx):
    res = await runner.run(py_ctx("weird.py"))
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result["result"] == {"thing": "a thing", "nan": "nan", "(1, 2)": "tuple key"}
    json.dumps(res.result, allow_nan=False)


async def test_leaf_action_class_is_chosen(runner, py_ctx):
    res = await runner.run(py_ctx("base_and_leaf.py"))
    assert res.result["result"] == "leaf"


async def test_packs_sharing_a_worker_get_their_own_lib(runner, py_ctx, tmp_path):
    other = write_pack(
        tmp_path, "other", {"hello.py": ACTIONS["hello.py"]}, "def shout(s):\n    return s[::-1]\n"
    )
    a = await runner.run(py_ctx("hello.py", action_parameters={"name": "abc"}))
    b = await runner.run(py_ctx("hello.py", action_parameters={"name": "abc"}, pack_path=other))
    assert a.result["result"]["pid"] == b.result["result"]["pid"]
    assert a.result["result"]["greeting"] == "ABC"
    assert b.result["result"]["greeting"] == "cba"


async def test_missing_entry_point_fails_clearly(runner, py_ctx):
    res = await runner.run(py_ctx("nope.py"))
    assert res.status == ExecutionStatus.FAILED
    assert "not found" in res.result["error"]


async def test_missing_interpreter_fails_clearly(runner, py_ctx, tmp_path):
    res = await runner.run(py_ctx("pid.py", python=str(tmp_path / "bin" / "python")))
    assert res.status == ExecutionStatus.FAILED
    assert "cannot start Python interpreter" in res.result["error"]


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    path = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


async def test_virtualenv_worker_does_not_see_host_site_packages(py_ctx, venv):
    python = str(venv / "bin" / "python")
    async with WorkerPool(max_workers=1) as pool:
        runner = PythonScriptRunner(pool)
        res = await runner.run(py_ctx("syspath.py", python=python))
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    path = res.result["result"]["path"]
    host_site = sysconfig.get_paths()["purelib"]
    assert host_site not in path
    assert any(p.startswith(str(venv)) for p in path)
    assert res.result["result"]["shadowed"] is False


async def test_concurrent_runs_are_bounded_by_pool_size(py_ctx, tmp_path, poll):
    async with WorkerPool(max_workers=2) as pool:
        runner = PythonScriptRunner(pool)
        gate = tmp_path / "gate"
        ctxs = [py_ctx("stream.py", action_parameters={"gate": str(gate)}) for _ in range(4)]
        tasks = [asyncio.create_task(runner.run(c)) for c in ctxs]
        await poll(lambda: sum(c.output.text("stdout") == "tick " for c in ctxs) == 2)
        assert pool.size == 2
        gate.touch()
        results = await asyncio.gather(*tasks)
    assert all(r.status == ExecutionStatus.SUCCEEDED for r in results)


async def test_hundred_sequential_runs_are_fast(runner, py_ctx):
    await runner.run(py_ctx("pid.py"))  # warm up
    started = time.perf_counter()
    for _ in range(100):
        res = await runner.run(py_ctx("pid.py"))
        assert res.status == ExecutionStatus.SUCCEEDED
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"100 warm runs took {elapsed:.2f}s"


async def test_worker_that_dies_at_start_fails_clearly(runner, py_ctx, tmp_path):
    fake = tmp_path / "broken-python"
    fake.write_text("#!/bin/sh\necho 'ImportError: no module named encodings' >&2\nexit 1\n")
    fake.chmod(0o755)
    res = await runner.run(py_ctx("pid.py", python=str(fake)))
    assert res.status == ExecutionStatus.FAILED
    assert "failed to start (exit code 1)" in res.result["error"]
    assert "no module named encodings" in res.result["error"]


async def test_action_with_config_only_init(runner, py_ctx, new_datastore):
    ctx = py_ctx("old_init.py", pack_config={"a": 1}, datastore=new_datastore({"k": "v"}))
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED, res.result
    assert res.result["result"] == ["set in __init__", {"a": 1}, "v"]
