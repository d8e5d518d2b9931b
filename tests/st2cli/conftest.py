"""The real ``st2`` CLI (PyPI ``st2client`` 3.9.0) against ``squall up``.

``st2client`` pins old exact versions of its dependencies (``jsonschema==3.2.0``,
``cryptography==43.0.3``, ``orjson==3.10.15`` …) that cannot share a virtualenv with Squall,
so ``scripts/setup`` installs it into its own virtualenv, ``.venv-st2`` (pinned by
``constraints-st2.txt``). ``SQUALL_ST2_BIN`` points at another ``st2`` executable.

One ``squall up`` subprocess per session, in a temporary ``SQUALL_HOME`` on a free port, with
the ``st2cli`` fixture pack on ``SQUALL_PACKS_PATH``. The CLI runs with the environment of
DESIGN.md (``ST2_BASE_URL``, ``ST2_API_URL``, ``ST2_AUTH_URL``, ``ST2_STREAM_URL``) and a
private ``HOME`` (so ``~/.st2/config`` and its token cache are the test's own).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PACKS = Path(__file__).resolve().parent / "fixtures" / "packs"
SQUALL = Path(sys.executable).parent / "squall"
PASSWORD = "st2cli-Passw0rd"

T = TypeVar("T")


def st2_executable() -> Path | None:
    configured = os.environ.get("SQUALL_ST2_BIN")
    candidates = [Path(configured)] if configured else [ROOT / ".venv-st2" / "bin" / "st2"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def wait_for(condition: Callable[[], T], *, timeout: float = 15.0, message: str = "") -> T:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message or 'condition'} not met in {timeout}s: {value!r}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SQUALL_", "ST2_"))}


@dataclass(repr=False)
class Result:
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"st2 {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )

    __repr__ = __str__


class Server:
    """``squall up`` plus an ``st2`` CLI configured for it."""

    def __init__(self, workdir: Path, st2: Path | None) -> None:
        self.workdir = workdir
        self.st2_bin = st2
        self.home = workdir / "squall-home"
        self.user_home = workdir / "user-home"
        self.user_home.mkdir()
        self.packs = workdir / "packs"
        shutil.copytree(FIXTURE_PACKS, self.packs)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def start(self) -> None:
        env = _clean_env()
        env.update(
            SQUALL_HOME=str(self.home),
            SQUALL_PACKS_PATH=str(self.packs),
            SQUALL_ADMIN_PASSWORD=PASSWORD,
        )
        with (self.workdir / "up.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(SQUALL), "up", "--bind", f"127.0.0.1:{self.port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"squall up exited: {self.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, message="squall up healthy")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        path = self.workdir / "up.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- the st2 CLI ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = _clean_env()
        env.update(
            HOME=str(self.user_home),
            ST2_BASE_URL=self.url,
            ST2_API_URL=f"{self.url}/api/v1",
            ST2_AUTH_URL=f"{self.url}/auth/v1",
            ST2_STREAM_URL=f"{self.url}/stream/v1",
            COLUMNS="200",
        )
        return env

    def st2(self, *args: str, check: bool = True, timeout: float = 60) -> Result:
        """Run ``st2 ARGS``; with ``check`` the exit code must be 0."""
        assert self.st2_bin is not None, "the st2 CLI is not installed"
        proc = subprocess.run(
            [str(self.st2_bin), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            cwd=self.workdir,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr, args)
        if check:
            assert result.code == 0, f"{result}\n--- squall up ---\n{self.log()}"
        return result

    # --- HTTP, to set scenes up -----------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            resp = httpx.post(f"{self.url}/auth/v1/tokens", auth=("admin", PASSWORD), timeout=10)
            assert resp.status_code == 201, resp.text
            self._token = str(resp.json()["token"])
        return self._token

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token()}, timeout=10)

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.api() as api:
            resp = api.get(f"/api/v1/executions/{execution_id}")
        assert resp.status_code == 200, resp.text
        doc: dict[str, Any] = resp.json()
        return doc

    def wait_status(self, execution_id: str, *statuses: str, timeout: float = 20) -> str:
        return wait_for(
            lambda: (s := self.execution(execution_id)["status"]) in statuses and s,
            timeout=timeout,
            message=f"execution {execution_id} in {statuses}",
        )

    def has_route(self, path: str) -> bool:
        with self.api() as api:
            spec = api.get("/api/v1/openapi.json").json()
        return path in spec.get("paths", {})


@pytest.fixture(scope="session")
def squall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The one ``squall up`` of the session (HTTP tests use it without the st2 CLI)."""
    srv = Server(tmp_path_factory.mktemp("st2cli"), st2_executable())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(squall: Server) -> Server:
    """``squall`` with a logged-in ``st2`` CLI (``~/.st2/config`` names the user, the token
    is cached beside it)."""
    if squall.st2_bin is None:
        reason = "the st2 CLI is not installed: run scripts/setup (it builds .venv-st2)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    squall.st2("login", "admin", "--password", PASSWORD)
    return squall
