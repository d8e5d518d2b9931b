"""`squall execution list|get|tail|cancel|re-run` and `squall run --async`."""

from __future__ import annotations

import re
import selectors
import subprocess
import time
import uuid

import pytest

from .conftest import SquallServer, kill_pids, processes_matching, wait_for

pytestmark = pytest.mark.slow

ID = re.compile(r"\b[0-9a-f]{24}\b")


def unique_sleep(seconds: int = 60) -> str:
    """A `sleep` command line that no other process on the machine has."""
    return f"sleep {seconds}.{uuid.uuid4().int % 10**6:06d}"


def test_async_prints_an_id_and_get_shows_the_result(server: SquallServer) -> None:
    result = server.cli("run", "core.local", "cmd=echo async-ok", "--async")
    ids = ID.findall(result.stdout)
    assert ids, f"no execution id in: {result}"
    execution_id = ids[0]
    server.wait_status(execution_id, "succeeded")
    shown = server.cli("execution", "get", execution_id)
    assert execution_id in shown.stdout
    assert "status: succeeded" in shown.stdout
    assert "async-ok" in shown.stdout
    doc = server.cli("execution", "get", execution_id, "--json").json()
    assert doc["id"] == execution_id
    assert doc["result"]["stdout"] == "async-ok"


def test_get_unknown_execution(server: SquallServer) -> None:
    result = server.cli("execution", "get", "0123456789abcdef01234567", check=False)
    assert result.code != 0
    assert "not found" in result.stderr.lower(), result
    assert "Traceback" not in result.stderr


def test_list_table_newest_first_with_limit(server: SquallServer) -> None:
    ids = [server.submit("core.local", cmd=f"echo list-{i}") for i in range(3)]
    for execution_id in ids:
        server.wait_status(execution_id, "succeeded")
    table = server.cli("execution", "list", "-n", "3")
    lines = [line for line in table.stdout.splitlines() if line.strip()]
    header = lines[0].lower()
    for column in ("id", "action", "status"):
        assert column in header, f"no {column} column: {lines[0]}"
    rows = [line for line in lines[1:] if ID.search(line)]
    assert len(rows) == 3, table
    assert [ID.findall(row)[0] for row in rows] == list(reversed(ids)), "newest first"
    assert all("core.local" in row and "succeeded" in row for row in rows)

    docs = server.cli("execution", "list", "-n", "2", "--json").json()
    assert isinstance(docs, list)
    assert [d["id"] for d in docs] == [ids[2], ids[1]]
    assert all(d["status"] == "succeeded" for d in docs)


def test_list_filters_by_action_and_status(server: SquallServer) -> None:
    failed = server.submit("core.local", cmd="exit 5")
    server.wait_status(failed, "failed")
    docs = server.cli("execution", "list", "--status", "failed", "--json").json()
    assert failed in [d["id"] for d in docs]
    assert all(d["status"] == "failed" for d in docs)
    docs = server.cli("execution", "list", "--action", "core.noop", "--json").json()
    assert all(d["action"]["ref"] == "core.noop" for d in docs)


def _read_line(proc: subprocess.Popen[str], sel: selectors.BaseSelector, deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            return proc.stdout.readline()
    raise AssertionError("no output line from `squall execution tail` in time")


def test_tail_streams_output_while_running(server: SquallServer) -> None:
    # 4 steps 1 s apart: step 2 is printed ~1 s after the start, the action ends at ~3 s.
    execution_id = server.submit("demo.slow", steps=4, interval=1)
    proc = server.popen_cli("execution", "tail", execution_id)
    sel = selectors.DefaultSelector()
    try:
        assert proc.stdout is not None
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 10
        line = ""
        while "step 2/4" not in line:
            line = _read_line(proc, sel, deadline)
            assert line, "tail ended before the second progress line"
        # That line reached the tail while the action was still working.
        status = server.status(execution_id)
        assert status == "running", f"output arrived only at the end (status {status})"
        out, err = proc.communicate(timeout=20)
    finally:
        sel.close()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert "step 4/4" in out and "done" in out
    assert f"execution {execution_id}: succeeded" in err


def test_tail_of_finished_execution_prints_its_output(server: SquallServer) -> None:
    execution_id = server.submit("core.local", cmd="echo line-one; echo line-two")
    server.wait_status(execution_id, "succeeded")
    result = server.cli("execution", "tail", execution_id, timeout=20)
    assert "line-one" in result.stdout and "line-two" in result.stdout


def test_cancel_kills_the_process_group(server: SquallServer) -> None:
    background, foreground = unique_sleep(), unique_sleep()
    execution_id = server.run_async("core.local", f"cmd={background} & {foreground}; wait")
    try:
        server.wait_status(execution_id, "running")
        wait_for(
            lambda: processes_matching(background) and processes_matching(foreground),
            timeout=5,
            message="both sleeps started",
        )
        began = time.monotonic()
        result = server.cli("execution", "cancel", execution_id)
        assert execution_id in result.stdout
        server.wait_status(execution_id, "canceled", timeout=5)
        assert time.monotonic() - began < 5
        wait_for(
            lambda: not processes_matching(background) and not processes_matching(foreground),
            timeout=5,
            message="every process of the canceled action is gone",
        )
    finally:
        kill_pids(
            [pid for pid, _ in processes_matching(background) + processes_matching(foreground)]
        )
    shown = server.cli("execution", "get", execution_id, "--json").json()
    assert shown["status"] == "canceled"
    assert shown["end_timestamp"]
    assert [e["status"] for e in shown["log"]][-1] == "canceled"


def test_cancel_python_action(server: SquallServer) -> None:
    execution_id = server.submit("acc_types.sleep", seconds=60)
    server.wait_status(execution_id, "running")
    server.cli("execution", "cancel", execution_id)
    server.wait_status(execution_id, "canceled", timeout=5)
    # The worker pool still serves Python actions afterwards.
    result, doc = server.run_json("acc_types.sleep", "seconds=0")
    assert result.code == 0, result
    assert doc["result"]["result"] == {"slept": 0}


def test_cancel_finished_execution_is_an_error(server: SquallServer) -> None:
    execution_id = server.submit("core.noop")
    server.wait_status(execution_id, "succeeded")
    result = server.cli("execution", "cancel", execution_id, check=False)
    assert result.code == 2, result
    assert "cannot be canceled" in result.stderr
    assert server.status(execution_id) == "succeeded"


def test_rerun_same_and_overridden_parameters(server: SquallServer) -> None:
    _, original = server.run_json("core.local", "cmd=echo first")
    assert original["status"] == "succeeded"

    again = server.cli("execution", "re-run", original["id"], "--json").json()
    assert again["id"] != original["id"]
    assert again["parameters"] == {"cmd": "echo first"}
    assert again["status"] == "succeeded"
    assert again["result"]["stdout"] == "first"

    changed = server.cli("execution", "re-run", original["id"], "cmd=echo second", "--json")
    doc = changed.json()
    assert doc["id"] not in (original["id"], again["id"])
    assert doc["parameters"]["cmd"] == "echo second"
    assert doc["result"]["stdout"] == "second"


def test_rerun_casts_overrides_and_validates(server: SquallServer) -> None:
    _, original = server.run_json("acc_types.echo_types", "count=1")
    doc = server.cli("execution", "re-run", original["id"], "count=7", "--json").json()
    assert doc["result"]["result"]["count"] == {"value": 7, "type": "int"}
    bad = server.cli("execution", "re-run", original["id"], "nope=1", check=False)
    assert bad.code != 0
    assert "nope" in bad.stderr, bad


def test_rerun_a_workflow_from_its_failed_task(server: SquallServer) -> None:
    flag = f"acc_flag_{uuid.uuid4().hex[:8]}"
    _, first = server.run_json("acc_types.rerun_flow", f"flag={flag}")
    assert first["status"] == "failed", first
    server.cli("key", "set", flag, "ok")

    bad = server.cli("execution", "re-run", first["id"], "--tasks", "nope", check=False)
    assert bad.code != 0 and "nope" in bad.stderr, bad
    lonely = server.cli("execution", "re-run", first["id"], "--no-reset", "check", check=False)
    assert lonely.code != 0 and "--tasks" in lonely.stderr, lonely

    doc = server.cli("execution", "re-run", first["id"], "--tasks", "check", "--json").json()
    assert doc["status"] == "succeeded", doc
    assert doc["result"]["output"] == {"checked": "passed"}
    assert doc["context"]["re-run"] == {"ref": first["id"], "tasks": ["check"], "reset": ["check"]}
    children = server.cli("execution", "list", "--all", "--json").json()
    names = sorted(
        c["context"]["orquesta"]["task_name"] for c in children if c.get("parent") == doc["id"]
    )
    assert names == ["check", "last"]  # "first" kept its result from the failed run


def test_run_timeout_stops_waiting_but_not_the_execution(server: SquallServer) -> None:
    command = unique_sleep(30)
    try:
        result = server.cli("run", "--timeout", "1", "core.local", f"cmd={command}", check=False)
        assert result.code == 1, result
        ids = ID.findall(result.stderr + result.stdout)
        assert ids, result
        assert "still running" in result.stderr
        assert server.status(ids[0]) == "running", "the execution keeps running"
        server.cli("execution", "cancel", ids[0])
        server.wait_status(ids[0], "canceled", timeout=5)
    finally:
        kill_pids([pid for pid, _ in processes_matching(command)])


def test_tail_of_failed_execution_exits_1(server: SquallServer) -> None:
    execution_id = server.submit("core.local", cmd="echo partial; exit 4")
    server.wait_status(execution_id, "failed")
    result = server.cli("execution", "tail", execution_id, check=False, timeout=20)
    assert result.code == 1, result
    assert "partial" in result.stdout
    assert f"execution {execution_id}: failed" in result.stderr


def test_a_burst_of_executions_all_complete(server: SquallServer) -> None:
    with server.api() as api:
        ids = []
        for i in range(40):
            resp = api.post(
                "/api/v1/executions",
                json={
                    "action": "core.local" if i % 4 == 0 else "core.noop",
                    "parameters": {"cmd": f"echo {i}"} if i % 4 == 0 else {},
                },
            )
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
    assert len(set(ids)) == len(ids)
    for execution_id in ids:
        server.wait_status(execution_id, "succeeded", timeout=20)
    docs = server.cli("execution", "list", "-n", "40", "--json").json()
    assert [d["id"] for d in docs] == list(reversed(ids))
