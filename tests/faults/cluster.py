"""A Squall cluster on one PostgreSQL database: ``squall serve`` processes started, killed and
restarted by the fault-injection suite (and the scale-out benchmark).

Each process is a real ``squall serve --role …`` subprocess sharing one ``SQUALL_HOME`` (for
the datastore key) and one database created for the run and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = ["Cluster", "Proc", "free_port"]

PASSWORD = "faults-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class Proc:
    """One ``squall serve`` process."""

    name: str
    roles: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    #: The process id Squall registered (``host:pid:suffix``), once known.
    squall_id: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Cluster:
    """Processes of one Squall installation on a PostgreSQL database of its own."""

    server_url: str
    packs: Sequence[Path] = ()
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="squall-cluster-")))
    db_name: str = field(default_factory=lambda: f"squall_cluster_{uuid.uuid4().hex[:10]}")
    #: Set by a test that passed (its process logs are then not kept).
    passed: bool = False
    _pool: Any = None
    _tokens: dict[int, str] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return _with_db(self.server_url, self.db_name)

    # --- the database -------------------------------------------------------------------------

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.server_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.db_name}"')

    async def query(self, sql: str, *args: Any) -> list[Any]:
        """Run ``sql`` on the cluster's database (reconnecting after a server restart)."""
        import asyncpg

        for attempt in range(30):
            try:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.db_url, min_size=1, max_size=3, timeout=10
                    )
                return list(await self._pool.fetch(sql, *args))
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                if attempt == 29:
                    raise
                if self._pool is not None:
                    with contextlib.suppress(Exception):
                        self._pool.terminate()
                    self._pool = None
                del exc
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def scalar(self, sql: str, *args: Any) -> Any:
        rows = await self.query(sql, *args)
        return rows[0][0] if rows else None

    # --- processes ----------------------------------------------------------------------------

    def start(self, name: str, roles: str, *, api: bool = False) -> Proc:
        """Start ``squall serve --role roles`` as ``name`` (replacing a dead one)."""
        port = free_port()  # every process gets its own bind address
        log = self.home / f"{name}.log"
        env = {
            **os.environ,
            "SQUALL_HOME": str(self.home),
            "SQUALL_DATABASE_URL": self.db_url,
            "SQUALL_ADMIN_PASSWORD": PASSWORD,
            "SQUALL_LOG_LEVEL": "INFO",
            **({"SQUALL_PACKS_PATH": ":".join(str(p) for p in self.packs)} if self.packs else {}),
            **self.env,
        }
        squall = str(Path(sys.executable).parent / "squall")
        fh = log.open("ab")
        popen = subprocess.Popen(
            [squall, "serve", "--role", roles, "--bind", f"127.0.0.1:{port}"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        fh.close()
        proc = Proc(name, roles, popen, log, port)
        self.procs[name] = proc
        return proc

    async def ready(self, proc: Proc, timeout: float = 60.0) -> Proc:
        """Wait until ``proc`` registered itself (and answers HTTP, for the API role)."""
        deadline = time.monotonic() + timeout
        while True:
            if not proc.alive:
                raise AssertionError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}"
                )
            if proc.squall_id is None:
                import asyncpg

                try:
                    rows = await self.query("SELECT id FROM processes WHERE pid = $1", proc.pid)
                except asyncpg.UndefinedTableError:
                    rows = []  # the first process is still creating the schema
                if rows:
                    proc.squall_id = rows[0][0]
            ok = proc.squall_id is not None
            if ok and {"api", "all"} & set(proc.roles.split(",")):
                try:
                    async with httpx.AsyncClient() as c:
                        ok = (await c.get(f"{proc.url}/healthz", timeout=1)).status_code == 200
                except httpx.HTTPError:
                    ok = False
            if ok:
                return proc
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.name} not ready in {timeout}s:\n{proc.tail()}")
            await asyncio.sleep(0.1)

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)

    async def wait_exit(self, proc: Proc, timeout: float = 30.0) -> int | None:
        deadline = time.monotonic() + timeout
        while proc.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return proc.popen.poll()

    def by_squall_id(self, squall_id: str | None) -> Proc | None:
        return next((p for p in self.procs.values() if p.squall_id == squall_id), None)

    async def token(self, proc: Proc) -> str:
        if proc.pid not in self._tokens:
            async with httpx.AsyncClient() as c:
                resp = await c.post(f"{proc.url}/auth/v1/tokens", auth=("admin", PASSWORD))
                resp.raise_for_status()
                self._tokens[proc.pid] = str(resp.json()["token"])
        return self._tokens[proc.pid]

    # --- teardown -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and drop the database."""
        for proc in self.procs.values():
            if proc.alive:
                self.kill(proc, signal.SIGTERM)
        for proc in self.procs.values():
            if await self.wait_exit(proc, 20) is None:
                self.kill(proc, signal.SIGKILL)
                await self.wait_exit(proc, 5)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool = None
        with contextlib.suppress(Exception):
            await self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
