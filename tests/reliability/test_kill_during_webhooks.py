"""SIGKILL ``squall up`` while webhooks are being posted; restart; nothing accepted is lost.

Every webhook answered 202 must have exactly one trigger instance, the matching rule exactly
one enforcement and one execution for it, and every execution must end in a terminal state.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from squall.testing import eventually

PACKS = Path(__file__).parent / "fixtures"
TOTAL = 5000
KILL_AFTER = 1500
PASSWORD = "reliability-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "SQUALL_HOME": str(self.home),
            "SQUALL_PACKS_PATH": str(PACKS),
            "SQUALL_ADMIN_PASSWORD": PASSWORD,
            "SQUALL_LOG_LEVEL": "WARNING",
        }
        squall = str(Path(sys.executable).parent / "squall")
        self.proc = subprocess.Popen(
            [squall, "up", "--bind", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> None:
        async def up() -> bool:
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"{self.url}/healthz", timeout=1)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout=30, message="squall up to answer")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "home", _free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def _token(url: str) -> str:
    async with httpx.AsyncClient() as c:
        resp = await c.post(f"{url}/auth/v1/tokens", auth=("admin", PASSWORD))
        resp.raise_for_status()
        return str(resp.json()["token"])


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sigkill_during_webhook_storm_loses_nothing(server: Server) -> None:
    await server.ready()
    token = await _token(server.url)
    accepted: set[int] = set()
    next_id = 0
    tokens = {"value": token}
    restarted = asyncio.Event()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal next_id
        while next_id < TOTAL:
            n = next_id
            next_id += 1
            try:
                resp = await client.post(
                    f"{server.url}/api/v1/webhooks/reliability",
                    json={"n": n},
                    headers={"X-Auth-Token": tokens["value"]},
                )
            except httpx.HTTPError:
                # The server is down: this one is not accepted; wait for the restart.
                await restarted.wait()
                continue
            if resp.status_code == 202:
                accepted.add(n)

    async def chaos() -> None:
        await eventually(lambda: len(accepted) >= KILL_AFTER, timeout=120, message="load")
        server.kill()
        server.start()
        await server.ready()
        tokens["value"] = await _token(server.url)
        restarted.set()

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(chaos(), *(sender(client) for _ in range(16)))
    assert len(accepted) >= KILL_AFTER + 100, "the restarted server should accept webhooks"

    db = sqlite3.connect(f"file:{server.home / 'squall.db'}?mode=ro", uri=True)

    def settled() -> bool:
        pending = db.execute(
            "SELECT count(*) FROM trigger_instances WHERE status IN ('pending','processing')"
        ).fetchone()[0]
        active = db.execute(
            "SELECT count(*) FROM executions WHERE status NOT IN "
            "('succeeded','failed','timeout','canceled','abandoned')"
        ).fetchone()[0]
        return pending == 0 and active == 0

    await eventually(settled, timeout=120, interval=0.2, message="everything to settle")

    rows = db.execute(
        "SELECT json_extract(payload, '$.body.n') AS n, count(*) FROM trigger_instances "
        "WHERE trigger_type = 'core.st2.webhook' GROUP BY n"
    ).fetchall()
    instances = {int(n): c for n, c in rows if n is not None}
    missing = sorted(accepted - set(instances))
    assert not missing, f"{len(missing)} accepted webhooks have no trigger instance: {missing[:10]}"
    duplicated = {n: c for n, c in instances.items() if c != 1}
    assert not duplicated, f"webhooks stored more than once: {list(duplicated.items())[:10]}"

    enforced = db.execute(
        "SELECT ti.id, count(re.id), count(DISTINCT re.execution_id) FROM trigger_instances ti "
        "LEFT JOIN rule_enforcements re ON re.trigger_instance_id = ti.id "
        "WHERE ti.trigger_type = 'core.st2.webhook' GROUP BY ti.id"
    ).fetchall()
    bad = [row for row in enforced if row[1] != 1 or row[2] != 1]
    assert not bad, f"instances without exactly one enforcement and execution: {bad[:10]}"
    orphans = db.execute(
        "SELECT count(*) FROM rule_enforcements re LEFT JOIN executions e "
        "ON e.id = re.execution_id WHERE e.id IS NULL"
    ).fetchone()[0]
    assert orphans == 0
    statuses = dict(
        db.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall()
    )
    assert set(statuses) <= {"succeeded", "abandoned"}, statuses
    print(
        f"\nposted {TOTAL}, accepted {len(accepted)}, stored {len(instances)} (extra: "
        f"committed but unanswered at the kill), executions {statuses}"
    )
