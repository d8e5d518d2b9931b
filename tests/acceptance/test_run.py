"""`squall run`: results, exit codes, parameter handling, the demo pack, timeouts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from .conftest import SquallServer, kill_pids, processes_matching, wait_for

pytestmark = pytest.mark.slow


# -- running shell commands -----------------------------------------------------------------


def test_run_core_local_prints_status_and_output(server: SquallServer) -> None:
    result = server.cli("run", "core.local", "cmd=echo hello")
    assert "status: succeeded" in result.stdout, result
    assert "hello" in result.stdout
    assert "core.local" in result.stdout


def test_run_json_is_parseable_with_the_result(server: SquallServer) -> None:
    result, doc = server.run_json("core.local", "cmd=echo hello")
    assert result.code == 0, result
    assert doc["status"] == "succeeded"
    assert doc["result"]["stdout"] == "hello"
    assert doc["result"]["return_code"] == 0
    assert doc["action"]["ref"] == "core.local"
    assert doc["parameters"] == {"cmd": "echo hello"}
    assert doc["start_timestamp"] and doc["end_timestamp"]
    statuses = [entry["status"] for entry in doc["log"]]
    assert statuses[0] == "requested" and statuses[-1] == "succeeded", statuses
    assert "running" in statuses


def test_failing_command_fails_with_its_return_code(server: SquallServer) -> None:
    result = server.cli("run", "core.local", "cmd=echo oops >&2; exit 3", check=False)
    assert result.code == 1, result
    assert "status: failed" in result.stdout, result
    assert "return_code: 3" in result.stdout
    assert "oops" in result.stdout
    result, doc = server.run_json("core.local", "cmd=exit 3")
    assert result.code != 0
    assert doc["status"] == "failed"
    assert doc["result"]["return_code"] == 3
    assert doc["result"]["failed"] is True


@pytest.mark.parametrize(
    "payload",
    [
        '"; touch {m}1; echo "',
        "$(touch {m}2) `touch {m}3` '; touch {m}4; echo ' && touch {m}5 | cat; \\",
    ],
)
def test_echo_has_no_shell_injection(server: SquallServer, tmp_path: Path, payload: str) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}-"
    message = payload.format(m=marker)
    result, doc = server.run_json("core.echo", f"message={message}")
    assert result.code == 0, result
    assert doc["status"] == "succeeded"
    assert doc["result"]["stdout"] == message, "the message must be printed literally"
    created = sorted(p.name for p in tmp_path.iterdir())
    assert not created, f"shell injection: created {created}"


def test_shell_parameters_are_passed_as_data_to_scripts(server: SquallServer) -> None:
    # demo.slow is a local-shell-script with positional integer parameters.
    result, doc = server.run_json("demo.slow", "steps=2", "interval=0")
    assert result.code == 0, result
    assert doc["result"]["stdout"].splitlines()[0] == "starting: 2 steps, 0s apart"


# -- parameter handling ------------------------------------------------------------------------


def test_missing_required_parameter_is_named(server: SquallServer) -> None:
    result = server.cli("run", "core.local", check=False)
    assert result.code == 2, result
    assert "cmd" in result.stderr, result
    assert "required" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_unknown_parameter_is_named(server: SquallServer) -> None:
    result = server.cli("run", "core.local", "cmd=ls", "bogus_param=1", check=False)
    assert result.code == 2, result
    assert "bogus_param" in result.stderr, result
    assert "Traceback" not in result.stderr


def test_wrong_type_is_rejected_naming_the_parameter(server: SquallServer) -> None:
    result = server.cli("run", "core.http", "url=http://x", "timeout=abc", check=False)
    assert result.code == 2, result
    assert "abc" in result.stderr, result
    assert "Traceback" not in result.stderr
    # A user must be told *which* parameter is wrong.
    assert "timeout" in result.stderr, f"the error does not name the parameter: {result}"


def test_wrong_type_on_custom_action_names_the_parameter(server: SquallServer) -> None:
    result = server.cli("run", "acc_types.echo_types", "count=many", check=False)
    assert result.code != 0
    assert "integer" in result.stderr, result
    assert "count" in result.stderr, f"the error does not name the parameter: {result}"


def test_wrong_type_through_the_api_is_rejected(server: SquallServer) -> None:
    with server.api() as api:
        resp = api.post(
            "/api/v1/executions",
            json={"action": "core.http", "parameters": {"url": "http://x", "timeout": "abc"}},
        )
    assert resp.status_code == 400, resp.text
    assert "timeout" in resp.json()["faultstring"]


def test_immutable_parameter_cannot_be_overridden(server: SquallServer) -> None:
    result = server.cli("run", "core.local_sudo", "cmd=id", "sudo=false", check=False)
    assert result.code == 2, result
    assert "immutable" in result.stderr.lower(), result
    assert "sudo" in result.stderr
    with server.api() as api:
        resp = api.post(
            "/api/v1/executions",
            json={"action": "demo.hello", "parameters": {"cmd": "touch /tmp/nope"}},
        )
    assert resp.status_code == 400, resp.text
    assert "immutable" in resp.json()["faultstring"]


def test_unknown_action_is_reported(server: SquallServer) -> None:
    result = server.cli("run", "nosuchpack.nosuchaction", check=False)
    assert result.code == 2, result
    assert "nosuchpack.nosuchaction" in result.stderr, result
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_enum_and_pattern_are_enforced(server: SquallServer) -> None:
    # demo.hello's name forbids quotes, $ and backquotes by pattern.
    result = server.cli("run", "demo.hello", "name=$(id)", check=False)
    assert result.code != 0, result
    assert "name" in result.stderr
    result = server.cli("run", "core.http", "url=http://x", "method=FETCH", check=False)
    assert result.code != 0, result
    assert "method" in result.stderr


def test_cli_values_are_cast_to_declared_types(server: SquallServer) -> None:
    result, doc = server.run_json(
        "acc_types.echo_types",
        "count=3",
        "ratio=0.5",
        "flag=true",
        "items=[1, 2]",
        'mapping={"a": 1}',
        "text=123",
    )
    assert result.code == 0, result
    got = doc["result"]["result"]
    assert got["count"] == {"value": 3, "type": "int"}
    assert got["ratio"] == {"value": 0.5, "type": "float"}
    assert got["flag"] == {"value": True, "type": "bool"}
    assert got["items"] == {"value": [1, 2], "type": "list"}
    assert got["mapping"] == {"value": {"a": 1}, "type": "dict"}
    assert got["text"] == {"value": "123", "type": "str"}, "strings stay strings"


def test_cli_casts_st2_shorthands(server: SquallServer) -> None:
    result, doc = server.run_json(
        "acc_types.echo_types", "items=a,b", "flag=false", "mapping=k1=v1,k2=v2"
    )
    assert result.code == 0, result
    got = doc["result"]["result"]
    assert got["items"] == {"value": ["a", "b"], "type": "list"}
    assert got["flag"] == {"value": False, "type": "bool"}
    assert got["mapping"] == {"value": {"k1": "v1", "k2": "v2"}, "type": "dict"}


# -- the demo pack -----------------------------------------------------------------------------


def test_demo_hello(server: SquallServer) -> None:
    result = server.cli("run", "demo.hello", "name=you")
    assert "status: succeeded" in result.stdout
    assert "Hello, you!" in result.stdout


def test_demo_system_report(server: SquallServer) -> None:
    result, doc = server.run_json("demo.system_report")
    assert result.code == 0, result
    report = doc["result"]["result"]
    assert {"load", "disk", "memory"} <= set(report), report
    assert 0 <= report["disk"]["used_percent"] <= 100


def test_demo_greet_counts_in_the_datastore(server: SquallServer) -> None:
    name = f"user{uuid.uuid4().hex[:8]}"
    _, first = server.run_json("demo.greet", f"name={name}")
    _, second = server.run_json("demo.greet", f"name={name}")
    assert first["status"] == second["status"] == "succeeded", (first, second)
    assert first["result"]["result"]["count"] == 1
    assert second["result"]["result"]["count"] == 2
    assert second["result"]["result"]["message"] == f"Hello, {name}!"


def test_demo_flaky_fails_on_demand(server: SquallServer) -> None:
    result, doc = server.run_json("demo.flaky", "fail=true")
    assert result.code != 0, result
    assert doc["status"] == "failed"
    assert "the demo service did not answer" in result.stdout


# -- timeouts and runners that are not there yet -----------------------------------------------


def test_timeout_kills_the_process_group(server: SquallServer) -> None:
    background = f"sleep 30.{uuid.uuid4().int % 10**6:06d}"
    foreground = f"sleep 31.{uuid.uuid4().int % 10**6:06d}"
    began = time.monotonic()
    result, doc = server.run_json(
        "core.local", f"cmd={background} & {foreground}; wait", "timeout=1"
    )
    elapsed = time.monotonic() - began
    try:
        assert result.code == 1, result
        assert doc["status"] == "timeout", doc["status"]
        assert doc["result"]["return_code"] == -9
        assert elapsed < 10, f"timeout=1 took {elapsed:.1f}s"
        wait_for(
            lambda: not processes_matching(background) and not processes_matching(foreground),
            timeout=5,
            message="the timed-out process group is killed",
        )
    finally:
        kill_pids(
            [pid for pid, _ in processes_matching(background) + processes_matching(foreground)]
        )


def test_python_action_timeout_then_workers_still_serve(server: SquallServer) -> None:
    began = time.monotonic()
    result, doc = server.run_json("acc_types.sleep", "seconds=30", "timeout=1")
    assert result.code != 0, result
    assert doc["status"] == "timeout"
    assert time.monotonic() - began < 10
    result, doc = server.run_json("acc_types.sleep", "seconds=0")
    assert result.code == 0, result
    assert doc["result"]["result"] == {"slept": 0}


def test_ssh_runner_reports_an_unreachable_host(server: SquallServer) -> None:
    result = server.cli("run", "core.remote", "hosts=127.0.0.1:1", "cmd=ls", check=False)
    assert result.code == 1, result
    assert "status: failed" in result.stdout
    # Refused at once, or before that when this machine has no known hosts file.
    assert "cannot connect to 127.0.0.1:1" in result.stdout or (
        "known hosts file" in result.stdout and "127.0.0.1:1" in result.stdout
    ), result
