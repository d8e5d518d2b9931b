"""Fuzzing: schemathesis against ``/api/v1/openapi.json`` of a real ``squall up``.

Every operation of the document is called with generated requests (examples, boundary
values, random data, then stateful sequences that reuse ids from earlier responses),
authenticated with an admin token. Checks: no 5xx (``not_a_server_error``) and responses that
match their documented schema (``response_schema_conformance``). The SSE stream (``/stream``)
is left out: its responses never end.

CI runs a quick, seeded pass (a few minutes at most). The long run:

    SQUALL_FUZZ_EXAMPLES=200 SQUALL_FUZZ_MAX_TIME=3600 SQUALL_FUZZ_SEED=random \\
        .venv/bin/pytest tests/fuzz -s
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SQUALL = Path(sys.executable).parent / "squall"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
PASSWORD = "fuzz-Passw0rd"
EXAMPLES = int(os.environ.get("SQUALL_FUZZ_EXAMPLES", "8"))
MAX_TIME = int(os.environ.get("SQUALL_FUZZ_MAX_TIME", "150"))
SEED = os.environ.get("SQUALL_FUZZ_SEED", "20261201")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(MAX_TIME + 180)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def squall_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not SCHEMATHESIS.exists():
        pytest.fail("schemathesis is not installed: run scripts/setup")
    workdir = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQUALL_", "ST2_"))}
    env.update(SQUALL_HOME=str(workdir / "home"), SQUALL_ADMIN_PASSWORD=PASSWORD)
    log = workdir / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SQUALL), "up", "--bind", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"squall up exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("squall up did not become healthy in 30 s")
            time.sleep(0.1)
        yield url, log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_no_server_errors_and_responses_match_the_document(
    squall_up: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = squall_up
    token = httpx.post(f"{url}/auth/v1/tokens", auth=("admin", PASSWORD), timeout=10).json()[
        "token"
    ]
    argv = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/api/v1/openapi.json",
        "--header",
        f"X-Auth-Token: {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--request-timeout",
        "20",
        "--exclude-path-regex",
        "^/stream/",
        "--no-shrink",
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if SEED != "random":
        argv += ["--seed", SEED]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=MAX_TIME + 150, cwd=tmp_path
    )
    report = proc.stdout[-12000:] + proc.stderr[-3000:]
    server_errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    assert proc.returncode == 0, (
        f"schemathesis found failures (exit {proc.returncode}):\n{report}\n"
        f"--- squall up log (tail) ---\n{log.read_text()[-6000:]}"
    )
    assert "Tested:" in proc.stdout, report
    assert not server_errors, log.read_text()[-6000:]
