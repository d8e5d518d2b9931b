"""Shared benchmark helpers: start ``squall up`` in a temporary home, authenticate, measure."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    proc: subprocess.Popen[bytes]
    token: str
    ready_seconds: float

    def rss_mb(self) -> float:
        """Resident memory of the server and its children (warm workers included)."""
        pids = [self.proc.pid]
        with contextlib.suppress(OSError, ValueError):
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            pids += [int(p) for p in out.split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def own_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


@contextlib.contextmanager
def squall_up(
    *, env: dict[str, str] | None = None, packs_path: Sequence[Path] = ()
) -> Iterator[Server]:
    home = Path(tempfile.mkdtemp(prefix="squall-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {
        **os.environ,
        "SQUALL_HOME": str(home),
        "SQUALL_ADMIN_PASSWORD": "bench-password",
        "SQUALL_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    if packs_path:
        full_env["SQUALL_PACKS_PATH"] = ":".join(str(p) for p in packs_path)
    squall = str(Path(sys.executable).parent / "squall")
    started = time.monotonic()
    proc = subprocess.Popen(
        [squall, "up", "--bind", f"127.0.0.1:{port}"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("squall up did not become ready in 30 s")
            time.sleep(0.02)
        ready = time.monotonic() - started
        resp = httpx.post(f"{url}/auth/v1/tokens", auth=("admin", "bench-password"))
        resp.raise_for_status()
        yield Server(url, home, proc, resp.json()["token"], ready)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def emit(name: str, results: dict[str, object]) -> None:
    """Print a result table and a JSON line (for docs/performance.md)."""
    width = max(len(k) for k in results)
    print(f"\n== {name}")
    for key, value in results.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
    print("JSON " + json.dumps({"bench": name, **results}))
