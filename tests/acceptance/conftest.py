"""Acceptance fixtures: a real `squall up` subprocess in a temporary home, driven by the CLI.

``SquallServer`` starts ``squall up --bind 127.0.0.1:<free port>`` with its own ``SQUALL_HOME``
(and optionally ``SQUALL_PACKS_PATH`` pointing at copies of the fixture packs under
``fixtures/packs``), waits for ``GET /healthz`` and stops it with SIGINT (then SIGKILL).
``server.cli(...)`` runs the real ``squall`` console script against it, with
``SQUALL_URL``/``SQUALL_HOME`` set and ``XDG_CONFIG_HOME`` pointing at a private directory, so
nothing from the developer's environment leaks in. When a test fails, the server's output is
attached to the report.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_PACKS = FIXTURES / "packs"
SQUALL = Path(sys.executable).parent / "squall"
START_TIMEOUT = 30.0

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy and return it (sync code)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last value: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Bytecode for the many short-lived `squall` processes goes to a cache outside the
# repository; without it (PYTHONDONTWRITEBYTECODE is common in CI shells) every CLI call
# compiles the package from source.
PYCACHE = Path(tempfile.gettempdir()) / f"squall-acceptance-pycache-{os.getuid()}"


def clean_env() -> dict[str, str]:
    """The ambient environment without any Squall or StackStorm settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SQUALL_", "ST2_"))
        and k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def copy_packs(names: list[str], dest: Path) -> Path:
    """Copy fixture packs to ``dest`` (a pack directory of its own, safe to write into)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(FIXTURE_PACKS / name, dest / name, dirs_exist_ok=True)
    return dest


def processes_matching(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose command line contains ``text``."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, stat, args = parts
        if text in args and not stat.startswith("Z"):
            found.append((int(pid), args))
    return found


def kill_pids(pids: list[int]) -> None:
    """SIGKILL processes this test started (by pid), ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(repr=False)
class CliResult:
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"squall {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )

    __repr__ = __str__


class SquallServer:
    """One `squall up` subprocess with its home, URL and a CLI bound to it."""

    def __init__(
        self,
        home: Path,
        workdir: Path,
        *,
        packs_path: Path | None = None,
        admin_password: str | None = None,
        home_via_flag: bool = False,
    ) -> None:
        self.home = home
        self.workdir = workdir
        self.packs_path = packs_path
        self.admin_password = admin_password
        self.home_via_flag = home_via_flag
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.xdg = workdir / "xdg"
        self.xdg.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.touched = 0.0
        self._token: str | None = None

    # -- process ------------------------------------------------------------------------

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"up-{self.starts}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"up-{self.starts}.stderr"

    def server_env(self) -> dict[str, str]:
        env = clean_env()
        if not self.home_via_flag:
            env["SQUALL_HOME"] = str(self.home)
        if self.packs_path is not None:
            env["SQUALL_PACKS_PATH"] = str(self.packs_path)
        if self.admin_password is not None:
            env["SQUALL_ADMIN_PASSWORD"] = self.admin_password
        return env

    def start(self, *, new_port: bool = False) -> SquallServer:
        if new_port:
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        self.starts += 1
        self.touched = time.monotonic()
        argv = [str(SQUALL), "up", "--bind", f"127.0.0.1:{self.port}"]
        if self.home_via_flag:
            argv += ["--home", str(self.home)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, env=self.server_env(), cwd=self.workdir
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"squall up exited with {self.proc.returncode}\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"squall up not healthy in {START_TIMEOUT}s\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT, wait, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def output(self, start: int | None = None) -> str:
        n = self.starts if start is None else start
        parts = []
        for kind in ("stdout", "stderr"):
            path = self.workdir / f"up-{n}.{kind}"
            if path.exists():
                parts.append(f"--- squall up #{n} {kind} ---\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def all_output(self) -> str:
        return "\n".join(self.output(n) for n in range(1, self.starts + 1))

    # -- clients ------------------------------------------------------------------------

    def cli_env(self) -> dict[str, str]:
        env = clean_env()
        env.update(
            SQUALL_URL=self.url,
            SQUALL_HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.xdg),
        )
        return env

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> CliResult:
        """Run ``squall ARGS``; with ``check`` assert exit code 0."""
        self.touched = time.monotonic()
        proc = subprocess.run(
            [str(SQUALL), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.cli_env(),
            cwd=self.workdir,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr, args)
        if check:
            assert result.code == 0, str(result)
        return result

    def popen_cli(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(SQUALL), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.cli_env(),
            cwd=self.workdir,
        )

    def token(self) -> str:
        if self._token is None:
            creds = json.loads((self.home / "credentials").read_text())
            resp = httpx.post(
                f"{self.url}/auth/v1/tokens",
                auth=(creds["user"], creds["password"]),
                timeout=10,
            )
            assert resp.status_code == 201, resp.text
            self._token = resp.json()["token"]
        return self._token

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token()}, timeout=10)

    # -- conveniences -------------------------------------------------------------------

    def run_json(self, *args: str, check: bool = False) -> tuple[CliResult, dict[str, Any]]:
        result = self.cli("run", *args, "--json", check=check)
        try:
            doc = result.json()
        except ValueError as exc:
            raise AssertionError(f"not JSON: {result}") from exc
        return result, doc

    def run_async(self, *args: str) -> str:
        doc = self.cli("run", *args, "--async", "--json").json()
        execution_id: str = doc["id"]
        return execution_id

    def submit(self, ref: str, **parameters: Any) -> str:
        """Request an execution over HTTP (typed parameters); returns its id.

        For setting the scene cheaply; tests of `squall run` itself use ``cli``.
        """
        with self.api() as api:
            resp = api.post("/api/v1/executions", json={"action": ref, "parameters": parameters})
        assert resp.status_code == 201, resp.text
        execution_id: str = resp.json()["id"]
        return execution_id

    def execution(self, execution_id: str) -> dict[str, Any]:
        """The execution document, read over HTTP."""
        with self.api() as api:
            resp = api.get(f"/api/v1/executions/{execution_id}")
        assert resp.status_code == 200, resp.text
        doc: dict[str, Any] = resp.json()
        return doc

    def status(self, execution_id: str) -> str:
        """The execution's status, read over HTTP (cheap enough to poll)."""
        with self.api() as api:
            resp = api.get(
                f"/api/v1/executions/{execution_id}", params={"include_attributes": "status"}
            )
            if resp.status_code == 401:  # token from before a restart on a fresh home
                self._token = None
                return self.status(execution_id)
        assert resp.status_code == 200, resp.text
        status: str = resp.json()["status"]
        return status

    def wait_status(self, execution_id: str, *statuses: str, timeout: float = 15.0) -> str:
        return wait_for(
            lambda: (s := self.status(execution_id)) in statuses and s,
            timeout=timeout,
            interval=0.05,
            message=f"execution {execution_id} in {statuses}",
        )


_SERVERS: list[SquallServer] = []


@pytest.fixture(scope="session")
def start_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SquallServer]]:
    """Factory: start a `squall up` in a fresh home; every server is stopped at the end.

    Keyword arguments: ``packs`` (names of fixture packs to put on ``SQUALL_PACKS_PATH``),
    ``admin_password`` (``None`` = let Squall generate one), ``home_via_flag``.
    """
    started: list[SquallServer] = []

    def _start(
        *,
        packs: list[str] | None = None,
        admin_password: str | None = "acceptance-Passw0rd",
        home_via_flag: bool = False,
    ) -> SquallServer:
        workdir = tmp_path_factory.mktemp("squall")
        packs_path = copy_packs(packs, workdir / "packs") if packs is not None else None
        server = SquallServer(
            workdir / "home",
            workdir,
            packs_path=packs_path,
            admin_password=admin_password,
            home_via_flag=home_via_flag,
        )
        started.append(server)
        _SERVERS.append(server)
        return server.start()

    yield _start
    for server in started:
        server.stop()
        _SERVERS.remove(server)


@pytest.fixture(scope="session")
def server(start_server: Callable[..., SquallServer]) -> SquallServer:
    """One server shared by the modules whose tests do not interfere (fresh ids, unique
    key names), with the ``acc_types`` fixture pack and ``SQUALL_ADMIN_PASSWORD`` set.

    Session-scoped rather than per module: each first start costs 1-2 s of the suite's
    90 s budget on a 2-core machine. Tests that need a fresh home or kill the server start
    their own with ``start_server``.
    """
    return start_server(packs=["acc_types"], admin_password="acceptance-Passw0rd")


_TEST_START = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_TEST_START] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and call.when == "call":
        began = item.stash.get(_TEST_START, 0.0)
        for srv in [s for s in _SERVERS if s.touched >= began]:
            tail = srv.all_output()[-6000:]
            report.sections.append((f"squall up {srv.url} (home {srv.home})", tail))
    return report
