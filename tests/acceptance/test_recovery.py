"""Restarts of `squall up`: clean restarts keep history; crash recovery after kill -9.

Both tests restart the same dedicated server (one first start for the module); each only
relies on what it created itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from .conftest import SquallServer, kill_pids, processes_matching, wait_for

pytestmark = pytest.mark.slow


def unique_sleep(seconds: int = 60) -> str:
    return f"sleep {seconds}.{uuid.uuid4().int % 10**6:06d}"


@pytest.fixture(scope="module")
def restartable(start_server: Callable[..., SquallServer]) -> Iterator[SquallServer]:
    srv = start_server()
    yield srv
    srv.stop()


def test_clean_restart_keeps_history_and_data(restartable: SquallServer) -> None:
    srv = restartable
    command = unique_sleep(1)
    try:
        done = srv.submit("core.local", cmd="echo kept")
        srv.wait_status(done, "succeeded")
        secret = f"kept-{uuid.uuid4().hex}"
        srv.cli("key", "set", "restart_secret", secret, "--encrypt")
        # A short action still running at Ctrl-C is allowed to finish.
        running = srv.run_async("core.local", f"cmd={command}")
        srv.wait_status(running, "running")

        began = time.monotonic()
        code = srv.stop()
        assert code == 0, f"squall up exited with {code} on SIGINT"
        assert time.monotonic() - began < 10
        srv.start()

        ids = [d["id"] for d in srv.cli("execution", "list", "--json").json()]
        assert done in ids and running in ids
        kept = srv.execution(done)
        assert kept["status"] == "succeeded" and kept["result"]["stdout"] == "kept"
        assert srv.status(running) == "succeeded"
        decrypted = srv.cli("key", "get", "restart_secret", "--decrypt", "--json").json()
        assert decrypted["value"] == secret, "the datastore and its key survive a restart"
    finally:
        kill_pids([pid for pid, _ in processes_matching(command)])


def test_kill9_marks_running_execution_abandoned(restartable: SquallServer) -> None:
    srv = restartable
    command = unique_sleep()
    try:
        earlier = srv.submit("core.local", cmd="echo before-crash")
        srv.wait_status(earlier, "succeeded")
        running = srv.run_async("core.local", f"cmd={command}")
        srv.wait_status(running, "running")
        wait_for(lambda: processes_matching(command), timeout=5, message="sleep started")

        srv.kill9()  # the action's own process may survive its parent; cleaned up below
        srv.start()

        # Never left running: abandoned soon after the restart, not after the sleep ends.
        srv.wait_status(running, "abandoned", timeout=15)
        doc = srv.execution(running)
        assert doc["end_timestamp"], doc
        assert [e["status"] for e in doc["log"]][-1] == "abandoned"

        after = srv.cli("run", "core.local", "cmd=echo after-restart")
        assert "after-restart" in after.stdout

        listed = srv.cli("execution", "list").stdout
        rows = {line.split()[0]: line for line in listed.splitlines() if line.strip()}
        assert "abandoned" in rows[running]
        assert "succeeded" in rows[earlier]
    finally:
        kill_pids([pid for pid, _ in processes_matching(command)])
