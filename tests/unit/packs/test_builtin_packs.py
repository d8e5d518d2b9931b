"""The packs shipped with Squall: they load cleanly, and their scripts do what they say."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from squall.compat import COMPAT_PATH
from squall.packs import LoadedPack, discover_packs, load_pack
from squall.packs_builtin import BUILTIN_PACKS_PATH, builtin_pack_dirs
from squall.runners.catalog import RUNNER_TYPES

SCRIPTS = sorted(BUILTIN_PACKS_PATH.glob("*/actions/**/*.sh"))
PY_ACTIONS = sorted(BUILTIN_PACKS_PATH.glob("*/actions/**/*.py"))


@pytest.fixture(scope="module")
def packs() -> dict[str, LoadedPack]:
    return {
        d.name: load_pack(d, known_runners=RUNNER_TYPES, config_dir=None)
        for d in builtin_pack_dirs()
    }


def test_builtin_packs_are_discovered() -> None:
    assert [d.name for d in discover_packs([BUILTIN_PACKS_PATH])] == [
        "core",
        "demo",
        "linux",
        "packs",
    ]


@pytest.mark.parametrize("name", ["core", "linux", "demo", "packs"])
def test_builtin_pack_loads_without_issues_or_warnings(
    packs: dict[str, LoadedPack], name: str
) -> None:
    pack = packs[name]
    assert pack.issues == []
    assert pack.warnings == []
    assert pack.meta["author"] == "Squall"
    assert pack.version == "1.0.0"
    assert (pack.path / "README.md").is_file()


def test_core_has_stackstorms_action_refs_and_parameters(packs: dict[str, LoadedPack]) -> None:
    expected = {
        "announcement": {"experimental", "message"},
        "ask": set(),
        "echo": {"message", "cmd", "kwarg_op", "sudo", "sudo_password"},
        "error": {"message", "cmd", "kwarg_op", "sudo", "sudo_password"},
        "http": {
            "auth",
            "body",
            "file_content",
            "file_content_type",
            "file_name",
            "file_path",
            "headers",
            "method",
            "params",
            "timeout",
        },
        "inject_trigger": {"trigger", "trigger_name", "payload", "trace_tag"},
        "local": {"cmd", "sudo"},
        "local_sudo": {"cmd", "sudo"},
        "noop": set(),
        "pause": {"max_pause", "random"},
        "remote": {"cmd", "sudo"},
        "remote_sudo": {"cmd", "sudo"},
        "sendmail": {
            "sendmail_binary",
            "from",
            "to",
            "subject",
            "send_empty_body",
            "content_type",
            "body",
            "sudo",
            "attachments",
        },
        "uuid": {"uuid_type"},
    }
    core = packs["core"]
    assert {a.name: set(a.parameters) for a in core.actions} == expected
    runners = {a.name: a.runner_type for a in core.actions}
    assert runners["sendmail"] == "local-shell-script"
    assert runners["uuid"] == runners["pause"] == runners["inject_trigger"] == "python-script"
    assert runners["ask"] == "inquirer"
    sendmail = core.action("sendmail")
    assert sendmail is not None
    positions = {k: v.get("position") for k, v in sendmail.parameters.items()}
    order = "sendmail_binary from to subject send_empty_body content_type body attachments"
    assert positions == {"sudo": None, **{name: i for i, name in enumerate(order.split())}}


def test_demo_config_defaults(packs: dict[str, LoadedPack]) -> None:
    assert packs["demo"].config == {"greeting": "Hello", "counter_prefix": "greetings"}


@pytest.mark.parametrize("path", PY_ACTIONS, ids=lambda p: str(p.relative_to(BUILTIN_PACKS_PATH)))
def test_python_actions_compile(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(BUILTIN_PACKS_PATH)))
def test_shell_scripts_parse_and_are_executable(path: Path) -> None:
    assert os.access(path, os.X_OK), f"{path} is not executable"
    assert path.read_text().startswith("#!/bin/sh\n")
    done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- running the Python actions with the real compat Action base ----------------------------


class FakeActionService:
    """An in-memory datastore standing in for the worker's action service."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_value(self, name: str, local: bool = True, **_: Any) -> str | None:
        return self.values.get(name)

    def set_value(self, name: str, value: str, **_: Any) -> bool:
        self.values[name] = value
        return True

    def delete_value(self, name: str, **_: Any) -> bool:
        return self.values.pop(name, None) is not None

    def list_values(self, prefix: str | None = None, **_: Any) -> list[dict[str, str]]:
        return [
            {"name": k, "value": v} for k, v in self.values.items() if k.startswith(prefix or "")
        ]


@pytest.fixture
def compat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``st2common`` importable, as the Python worker does, and forget it afterwards."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(COMPAT_PATH))
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("st2common", "_builtin_action_")):
            del sys.modules[name]


def run_action(
    packs: dict[str, LoadedPack],
    ref: str,
    *,
    config: dict[str, Any] | None = None,
    action_service: Any = None,
    **params: Any,
) -> tuple[bool, Any]:
    pack_name, name = ref.split(".", 1)
    action = packs[pack_name].action(name)
    assert action is not None and action.entry_point_path is not None
    module_name = f"_builtin_action_{pack_name}_{name}"
    spec = importlib.util.spec_from_file_location(module_name, action.entry_point_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    from st2common.runners.base_action import Action  # type: ignore[import-not-found]

    [cls] = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Action) and obj is not Action
    ]
    output = cls(config=config or {}, action_service=action_service).run(**params)
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], bool):
        return output
    return True, output


@pytest.mark.usefixtures("compat")
class TestCoreActions:
    def test_uuid(self, packs: dict[str, LoadedPack]) -> None:
        ok, value = run_action(packs, "core.uuid")
        assert ok and uuid.UUID(value).version == 4
        ok, value = run_action(packs, "core.uuid", uuid_type="uuid1")
        assert ok and uuid.UUID(value).version == 1
        with pytest.raises(ValueError, match="expected one of uuid1, uuid4"):
            run_action(packs, "core.uuid", uuid_type="uuid7")

    def test_pause(self, packs: dict[str, LoadedPack]) -> None:
        assert run_action(packs, "core.pause", max_pause=0) == (True, {"paused_seconds": 0})
        assert run_action(packs, "core.pause", max_pause=0, random=True)[1]["paused_seconds"] == 0
        with pytest.raises(ValueError, match=">= 0"):
            run_action(packs, "core.pause", max_pause=-1)

    def test_inject_trigger_without_dispatch_says_why(self, packs: dict[str, LoadedPack]) -> None:
        with pytest.raises(RuntimeError, match="cannot dispatch triggers"):
            run_action(
                packs, "core.inject_trigger", action_service=FakeActionService(), trigger_name="p.t"
            )
        with pytest.raises(ValueError, match="trigger_name"):
            run_action(packs, "core.inject_trigger", action_service=FakeActionService())

    def test_inject_trigger_dispatches(self, packs: dict[str, LoadedPack]) -> None:
        calls: list[tuple[Any, ...]] = []

        class Dispatching(FakeActionService):
            def dispatch(self, trigger: str, payload: Any, trace_tag: Any) -> str:
                calls.append((trigger, payload, trace_tag))
                return "ti-1"

        ok, result = run_action(
            packs,
            "core.inject_trigger",
            action_service=Dispatching(),
            trigger="old.style",
            payload={"a": 1},
            trace_tag="t",
        )
        assert ok and calls == [("old.style", {"a": 1}, "t")]
        assert result == {
            "trigger": "old.style",
            "payload": {"a": 1},
            "trace_tag": "t",
            "trigger_instance": "ti-1",
        }


@pytest.mark.usefixtures("compat")
class TestLinuxActions:
    def test_loadavg(self, packs: dict[str, LoadedPack]) -> None:
        ok, result = run_action(packs, "linux.loadavg")
        assert ok and result["cpu_count"] >= 1
        assert set(result["load_per_cpu"]) == {"load1", "load5", "load15"}
        ok, result = run_action(packs, "linux.loadavg", max_load_per_cpu=-1, window=1)
        assert not ok and result["exceeded"] is True and "1-minute load" in result["message"]
        assert run_action(packs, "linux.loadavg", max_load_per_cpu=10**6)[0]

    def test_disk_usage(self, packs: dict[str, LoadedPack]) -> None:
        ok, result = run_action(packs, "linux.disk_usage")
        assert ok and result["filesystems"]
        assert all(fs["type"] not in ("proc", "sysfs") for fs in result["filesystems"])
        ok, result = run_action(packs, "linux.disk_usage", mount="/")
        [root] = result["filesystems"]
        assert ok and root["mount"] == "/" and root["size_kb"] > 0
        ok, result = run_action(packs, "linux.disk_usage", mount="/", threshold=0)
        assert not ok and result["exceeded"][0]["mount"] == "/"
        assert "threshold 0%" in result["message"]
        assert run_action(packs, "linux.disk_usage", mount="/", threshold=100)[0]
        with pytest.raises(ValueError, match="does not exist"):
            run_action(packs, "linux.disk_usage", mount="/no/such/path")

    def test_memory(self, packs: dict[str, LoadedPack]) -> None:
        ok, result = run_action(packs, "linux.memory")
        assert ok and result["total_kb"] > 0 and 0 <= result["used_percent"] <= 100
        ok, result = run_action(packs, "linux.memory", threshold=-1)
        assert not ok and result["exceeded"]

    def test_top_processes(self, packs: dict[str, LoadedPack]) -> None:
        ok, result = run_action(
            packs, "linux.top_processes", sort_by="memory", count=3, sample_seconds=0
        )
        assert ok and 1 <= len(result["processes"]) <= 3
        rss = [p["rss_kb"] for p in result["processes"]]
        assert rss == sorted(rss, reverse=True)
        first = result["processes"][0]
        assert {"pid", "user", "command", "cpu_percent", "memory_percent"} <= set(first)

    def test_check_port(self, packs: dict[str, LoadedPack]) -> None:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            ok, result = run_action(packs, "linux.check_port", host="127.0.0.1", port=port)
            assert ok and result["open"] and result["address"] == "127.0.0.1"
            assert not run_action(packs, "linux.check_port", port=port, expect="closed")[0]
        ok, result = run_action(packs, "linux.check_port", port=port)
        assert not ok and "refused" in result["error"]
        assert run_action(packs, "linux.check_port", port=port, expect="closed")[0]

    def test_service_status_rejects_bad_names(self, packs: dict[str, LoadedPack]) -> None:
        with pytest.raises(ValueError, match="invalid service name"):
            run_action(packs, "linux.service_status", service="nginx; reboot")


@pytest.mark.usefixtures("compat")
class TestDemoActions:
    def test_greet_counts_in_the_datastore(self, packs: dict[str, LoadedPack]) -> None:
        service = FakeActionService()
        config = packs["demo"].config
        ok, first = run_action(
            packs, "demo.greet", config=config, action_service=service, name="Ada L"
        )
        assert ok and first["message"] == "Hello, Ada L!" and first["count"] == 1
        _, second = run_action(
            packs, "demo.greet", config=config, action_service=service, name="Ada L"
        )
        assert second["count"] == 2 and second["summary"] == "Ada L has been greeted 2 times"
        assert service.values == {"greetings.ada_l": "2"}
        custom = {"greeting": "Good evening", "counter_prefix": "g"}
        _, third = run_action(packs, "demo.greet", config=custom, action_service=service, name="Bo")
        assert third["message"] == "Good evening, Bo!" and "g.bo" in service.values

    def test_system_report(self, packs: dict[str, LoadedPack]) -> None:
        ok, report = run_action(packs, "demo.system_report")
        assert ok and {"host", "load", "disk", "memory", "cpu_count"} <= set(report)
        assert report["disk"]["total_gb"] > 0

    def test_flaky(self, packs: dict[str, LoadedPack]) -> None:
        ok, result = run_action(packs, "demo.flaky", fail=True, message="boom")
        assert not ok and result["error"] == "boom" and result["forced"]
        assert run_action(packs, "demo.flaky", failure_rate=0)[0]
        assert not run_action(packs, "demo.flaky", failure_rate=1)[0]
        with pytest.raises(ValueError, match="between 0 and 1"):
            run_action(packs, "demo.flaky", failure_rate=2)


# --- running the shell actions ---------------------------------------------------------------


def positional_argv(pack: LoadedPack, name: str, **params: Any) -> list[str]:
    """Arguments in position order, serialized as the script runners do."""
    action = pack.action(name)
    assert action is not None and action.entry_point_path is not None
    specs = sorted(
        (spec["position"], key) for key, spec in action.parameters.items() if "position" in spec
    )
    argv = [str(action.entry_point_path)]
    for _, key in specs:
        value = params.get(key, action.parameters[key].get("default"))
        if isinstance(value, bool):
            value = "1" if value else "0"
        argv.append("" if value is None else str(value))
    return argv


def test_demo_hello_renders_a_safe_command(packs: dict[str, LoadedPack]) -> None:
    hello = packs["demo"].action("hello")
    assert hello is not None
    import re

    pattern = hello.parameters["name"]["pattern"]
    assert re.search(pattern, "Ada Lovelace, the 1st")
    for hostile in ['"; rm -rf /', "$(id)", "`id`", "a\\"]:
        assert not re.search(pattern, hostile)
    cmd = jinja2.Template(hello.parameters["cmd"]["default"]).render(name="Ada")
    done = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True)
    assert done.stdout == "Hello, Ada!\n"


def test_demo_slow_prints_progress(packs: dict[str, LoadedPack]) -> None:
    argv = positional_argv(packs["demo"], "slow", steps=3, interval=0)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    lines = done.stdout.splitlines()
    assert done.returncode == 0
    assert lines[0] == "starting: 3 steps, 0s apart" and lines[-1] == "done"
    assert [line.split(":")[0] for line in lines[1:-1]] == ["step 1/3", "step 2/3", "step 3/3"]
    assert "step 3/3" in done.stderr
    bad = subprocess.run([argv[0], "x", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "integers" in bad.stderr


def test_linux_largest_paths(packs: dict[str, LoadedPack], tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 300_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "small").write_bytes(b"x" * 10_000)
    argv = positional_argv(packs["linux"], "largest_paths", path=str(tmp_path), count=2)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(str(tmp_path)) and lines[1].endswith(str(tmp_path / "big"))
    missing = positional_argv(packs["linux"], "largest_paths", path=str(tmp_path / "nope"))
    done = subprocess.run(missing, capture_output=True, text=True)
    assert done.returncode == 2 and "is not a directory" in done.stderr


@pytest.fixture
def fake_sendmail(tmp_path: Path) -> Path:
    script = tmp_path / "fake-sendmail"
    script.write_text('#!/bin/sh\necho "ARGS: $*" > "$0.out"\ncat >> "$0.out"\n')
    script.chmod(0o755)
    return script


def test_sendmail_builds_and_sends_the_message(
    packs: dict[str, LoadedPack], fake_sendmail: Path, tmp_path: Path
) -> None:
    attachment = tmp_path / "report.txt"
    attachment.write_text("disk is full\n")
    argv = positional_argv(
        packs["core"],
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="oncall@example.com",
        subject="Disk full\nBcc: attacker@example.com",
        body="<p>see attached</p>",
        attachments=f"{attachment}, ",
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    message = Path(f"{fake_sendmail}.out").read_text()
    assert message.startswith("ARGS: -oi -t\n")
    assert "From: stanley\n" in message and "To: oncall@example.com\n" in message
    # The newline in the subject must not become a header of its own.
    assert "\nBcc:" not in message
    assert "Subject: Disk full Bcc: attacker@example.com\n" in message
    assert "Content-Type: text/html; charset=UTF-8" in message
    assert 'filename="report.txt"' in message and "ZGlzayBpcyBmdWxsCg==" in message


def test_sendmail_skips_empty_body_when_asked(
    packs: dict[str, LoadedPack], fake_sendmail: Path
) -> None:
    argv = positional_argv(
        packs["core"],
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="a@example.com",
        subject="s",
        body="",
        send_empty_body=False,
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0 and "no email sent" in done.stdout
    assert not Path(f"{fake_sendmail}.out").exists()


def test_sendmail_errors_are_clear(packs: dict[str, LoadedPack], tmp_path: Path) -> None:
    argv = positional_argv(
        packs["core"],
        "sendmail",
        sendmail_binary=str(tmp_path / "nope"),
        to="a@example.com",
        subject="s",
        body="b",
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and "was not found or is not executable" in done.stderr


@pytest.mark.skipif(
    any(Path(p).exists() for p in ("/usr/sbin/sendmail", "/usr/lib/sendmail")),
    reason="this host has a sendmail binary",
)
def test_sendmail_without_any_binary(packs: dict[str, LoadedPack], tmp_path: Path) -> None:
    argv = positional_argv(packs["core"], "sendmail", to="a@example.com", subject="s", body="b")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("tr", "sed", "grep", "date", "base64", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir)}
    done = subprocess.run(["/bin/sh", *argv], capture_output=True, text=True, env=env, timeout=10)
    assert done.returncode == 1
    assert "no sendmail binary found" in done.stderr and "msmtp-mta" in done.stderr


def test_overridden_runner_parameters_only_change_what_stackstorm_allows(
    packs: dict[str, LoadedPack],
) -> None:
    overridable = {"default", "description", "enum", "immutable", "required"}
    for pack in packs.values():
        for action in pack.actions:
            runner_params = RUNNER_TYPES[action.runner_type].runner_parameters
            for name, spec in action.parameters.items():
                if name not in runner_params:
                    continue
                changed = {
                    key
                    for key, value in spec.items()
                    if key not in overridable and runner_params[name].get(key) != value
                }
                assert not changed, f"{action.ref}: {name} overrides {changed}"
