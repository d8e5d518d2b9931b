"""Packs and actions: listing, inspection, registration with errors, pack virtualenvs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from .conftest import SquallServer

pytestmark = pytest.mark.slow

CORE_ACTIONS = {
    "local",
    "local_sudo",
    "remote",
    "remote_sudo",
    "http",
    "noop",
    "echo",
    "error",
    "uuid",
    "inject_trigger",
    "pause",
    "ask",
    "sendmail",
    "announcement",
}


@pytest.fixture(scope="module")
def packs_server(start_server: Callable[..., SquallServer]) -> Iterator[SquallServer]:
    """A server with a broken pack and a pack with requirements.txt on SQUALL_PACKS_PATH."""
    srv = start_server(packs=["acc_broken", "acc_venv"])
    yield srv
    srv.stop()


def refs_in(text: str) -> set[str]:
    return set(re.findall(r"^(\w+\.\w+)\s", text, flags=re.MULTILINE))


def test_pack_list_shows_builtin_and_user_packs(packs_server: SquallServer) -> None:
    result = packs_server.cli("pack", "list")
    first_column = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert {"core", "linux", "demo", "acc_venv", "acc_broken"} <= first_column, result
    docs = packs_server.cli("pack", "list", "--json").json()
    refs = {d["ref"] for d in docs}
    assert {"core", "linux", "demo", "acc_venv", "acc_broken"} <= refs


def test_action_list_shows_core_refs(packs_server: SquallServer) -> None:
    everything = refs_in(packs_server.cli("action", "list").stdout)
    core = {f"core.{name}" for name in CORE_ACTIONS}
    assert core <= everything, core - everything
    assert "demo.hello" in everything and "linux.loadavg" in everything

    only_core = packs_server.cli("action", "list", "-p", "core")
    assert refs_in(only_core.stdout) == core, only_core
    docs = packs_server.cli("action", "list", "--pack", "core", "--json").json()
    assert {d["ref"] for d in docs} == core


def test_linux_pack_diagnostics_run(packs_server: SquallServer) -> None:
    _, doc = packs_server.run_json("linux.loadavg")
    assert doc["status"] == "succeeded", doc
    result, doc = packs_server.run_json("linux.disk_usage")
    assert doc["status"] == "succeeded", result


def test_action_get_shows_merged_parameters(packs_server: SquallServer) -> None:
    result = packs_server.cli("action", "get", "core.local")
    assert "local-shell-cmd" in result.stdout
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line and not line.startswith(" ") and len(line.split()) > 1
    }
    for name in ("cmd", "cwd", "env", "kwarg_op", "sudo", "sudo_password", "timeout"):
        assert name in rows, f"parameter {name} missing from:\n{result.stdout}"
    assert "required" in rows["cmd"]
    assert "immutable" in rows["sudo"]
    assert "60" in rows["timeout"], "the runner's default timeout is merged in"
    assert "secret" in rows["sudo_password"]

    local_sudo = packs_server.cli("action", "get", "core.local_sudo").stdout
    sudo_row = next(line for line in local_sudo.splitlines() if line.startswith("sudo "))
    assert "true" in sudo_row and "immutable" in sudo_row, sudo_row


def test_action_get_unknown(packs_server: SquallServer) -> None:
    result = packs_server.cli("action", "get", "core.nope", check=False)
    assert result.code != 0
    assert "core.nope" in result.stderr and "not found" in result.stderr, result


def test_broken_pack_reports_files_with_lines(packs_server: SquallServer) -> None:
    result = packs_server.cli("pack", "register", check=False)
    assert result.code != 0, result
    out = result.stdout + result.stderr
    assert re.search(r"bad_yaml\.yaml(:| line |, line )4\b", out), out
    assert re.search(r"bad_runner\.yaml(:| line |, line )4\b", out), out
    assert "no-such-runner" in out
    assert re.search(r"missing_entry\.yaml(:| line |, line )5\b", out), out
    assert "does_not_exist.py" in out
    assert re.search(r"bad_param_type\.yaml(:| line |, line )8\b", out), out
    assert "strnig" in out
    assert "good.yaml" not in out, "the good file is not reported"
    assert "Traceback" not in out


def test_good_action_of_broken_pack_is_registered(packs_server: SquallServer) -> None:
    refs = refs_in(packs_server.cli("action", "list", "-p", "acc_broken").stdout)
    assert refs == {"acc_broken.good"}, "only the good action is registered"
    result = packs_server.cli("run", "acc_broken.good")
    assert "still-registered" in result.stdout
    for bad in ("bad_runner", "bad_yaml", "missing_entry", "bad_param_type"):
        assert packs_server.cli("action", "get", f"acc_broken.{bad}", check=False).code == 2


def test_register_is_idempotent_and_quick(packs_server: SquallServer) -> None:
    before = packs_server.cli("action", "list", "--json").json()
    timings = []
    for _ in range(2):
        began = time.monotonic()
        result = packs_server.cli("pack", "register", "core", "demo", "linux", "acc_venv")
        timings.append(time.monotonic() - began)
        assert result.code == 0, result
    after = packs_server.cli("action", "list", "--json").json()
    assert sorted(a["ref"] for a in after) == sorted(a["ref"] for a in before), "no duplicates"
    assert max(timings) < 5, f"pack register took {timings}"


def test_register_unknown_pack(packs_server: SquallServer) -> None:
    result = packs_server.cli("pack", "register", "nosuchpack", check=False)
    assert result.code != 0, result
    assert "nosuchpack" in result.stderr + result.stdout


def test_register_picks_up_new_and_removed_actions(packs_server: SquallServer) -> None:
    assert packs_server.packs_path is not None
    actions = packs_server.packs_path / "acc_broken" / "actions"
    added = actions / "added.yaml"
    added.write_text(
        "---\nname: added\nrunner_type: local-shell-cmd\nentry_point: ''\n"
        "parameters:\n  cmd:\n    type: string\n    default: echo added-later\n"
    )
    try:
        packs_server.cli("pack", "register", "acc_broken", check=False)
        assert "added-later" in packs_server.cli("run", "acc_broken.added").stdout
    finally:
        added.unlink()
    packs_server.cli("pack", "register", "acc_broken", check=False)
    gone = packs_server.cli("action", "get", "acc_broken.added", check=False)
    assert gone.code != 0, "a removed action file unregisters the action"


def test_pack_with_requirements_gets_a_virtualenv(packs_server: SquallServer) -> None:
    venv_python = packs_server.home / "virtualenvs" / "acc_venv" / "bin" / "python"
    assert venv_python.exists(), f"no virtualenv at {venv_python.parent.parent}"
    # The requirement is not importable by Squall's own interpreter, only in the pack's venv.
    own = subprocess.run([sys.executable, "-c", "import acc_mylib"], capture_output=True)
    assert own.returncode != 0
    result, doc = packs_server.run_json("acc_venv.use_lib")
    assert result.code == 0, result
    got = doc["result"]["result"]
    assert got["answer"] == "acc-mylib-42"
    assert str(packs_server.home / "virtualenvs" / "acc_venv") in got["module"]


def test_failing_requirements_leave_nothing_half_registered(packs_server: SquallServer) -> None:
    assert packs_server.packs_path is not None
    pack = packs_server.packs_path / "acc_badreq"
    (pack / "actions").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "---\nname: acc_badreq\ndescription: bad requirements\nversion: 1.0.0\nauthor: t\n"
    )
    (pack / "requirements.txt").write_text("./vendored/does-not-exist\n")
    (pack / "actions" / "a.yaml").write_text(
        "---\nname: a\nrunner_type: python-script\nentry_point: a.py\nparameters: {}\n"
    )
    (pack / "actions" / "a.py").write_text(
        "from st2common.runners.base_action import Action\n\n\n"
        "class A(Action):\n    def run(self):\n        return 1\n"
    )
    try:
        result = packs_server.cli("pack", "register", "acc_badreq", check=False)
        assert result.code == 1, result
        assert "requirements.txt" in result.stdout + result.stderr, result
        listed = packs_server.cli("action", "list", "-p", "acc_badreq", "--json").json()
        assert listed == [], "a pack whose requirements failed is not registered"
        assert not (packs_server.home / "virtualenvs" / "acc_badreq").exists()
    finally:
        shutil.rmtree(pack)
