"""Fault injection: a Squall cluster on PostgreSQL under a steady webhook load, broken on purpose.

Two processes of each of ``api``, ``rules`` (with ``timers``), ``runner`` (with ``scheduler``
and ``gc``) and ``workflow`` serve one database while a sender posts webhooks to both API
processes: most run ``core.noop``, some a slow shell action (retried by an
``action.retry {retry_on: abandoned}`` policy when its runner dies), some a two-task Orquesta
workflow; an interval timer fires every second. Then, one after the other:

* ``kill -9`` a runner while it runs actions;
* ``kill -9`` a workflow engine while workflows run;
* ``kill -9`` a rules engine while it holds a batch of claimed trigger instances;
* ``kill -9`` the timers leader;
* terminate every database connection of the cluster (a lost connection mid-run);
* ``SIGTERM`` a runner while it runs actions (they must finish, not be abandoned);
* long mode only: restart PostgreSQL itself.

Each killed process is started again. At the end, with the load stopped: every accepted
webhook is stored once and enforced exactly once, every execution and workflow is terminal,
and timer ticks are neither duplicated nor missing beyond the lease gap. A table shows what
was sent, accepted and enforced, the executions by final status and each recovery time.

Quick mode (the default, in CI): lease 6 s, about two minutes. Long mode::

    SQUALL_FAULTS_MODE=long .venv/bin/pytest tests/faults -s

uses the default 30 s lease, a heavier and longer load, and restarts PostgreSQL
(``pg_ctlcluster``; it briefly disconnects every other user of the server, which is why the
quick mode terminates only this cluster's connections instead). The restart waits up to a
minute for the server to have no session on another database, and is skipped (and says so
in the table) if it never does, unless ``SQUALL_FAULTS_PG_RESTART_FORCE=1``. Set
``SQUALL_FAULTS_PG_RESTART`` to the restart command if ``pg_ctlcluster`` is not the way.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shlex
import shutil
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.testing import eventually
from tests.faults.cluster import Cluster, Proc

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("SQUALL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
LONG = os.environ.get("SQUALL_FAULTS_MODE", "quick") == "long"
LEASE = 30.0 if LONG else 6.0
RATE = 60.0 if LONG else 30.0  # webhooks per second
STEADY = 20.0 if LONG else 3.0  # seconds of plain load between faults
ACTIVE = ("requested", "scheduled", "delayed", "running", "canceling", "pausing", "paused")
TERMINAL = ("succeeded", "failed", "timeout", "canceled", "abandoned")

LAYOUT = {
    "api1": "api",
    "api2": "api",
    "rules1": "rules,timers",
    "rules2": "rules,timers",
    "runner1": "runner,scheduler,gc",
    "runner2": "runner,scheduler,gc",
    "workflow1": "workflow",
    "workflow2": "workflow",
}


@dataclass
class Phase:
    fault: str
    sent_before: int
    accepted_before: int
    sent: int = 0
    accepted: int = 0
    recovered_s: float | None = None
    detail: str = ""


@dataclass
class Load:
    """Posts webhooks at a fixed rate to every live API process, round robin."""

    cluster: Cluster
    rate: float
    sent: int = 0
    accepted: set[int] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    MAX_IN_FLIGHT = 24

    @staticmethod
    def kind(n: int) -> str:
        r = n % 20
        return "slow" if r in (3, 11, 17) else "flow" if r in (7, 15) else "noop"

    async def post(self, client: httpx.AsyncClient, n: int, kind: str | None = None) -> bool:
        apis = [p for p in self.cluster.procs.values() if p.roles == "api" and p.alive]
        if not apis:
            self.errors["no api"] += 1
            return False
        api = apis[n % len(apis)]
        self.sent += 1
        try:
            token = await self.cluster.token(api)
            resp = await client.post(
                f"{api.url}/api/v1/webhooks/faults",
                json={"kind": kind or self.kind(n), "n": n},
                headers={"X-Auth-Token": token},
            )
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return False
        if resp.status_code == 202:
            self.accepted.add(n)
            return True
        self.errors[str(resp.status_code)] += 1
        return False

    async def run(self) -> None:
        # A bounded number of requests in flight: a sender that piles up requests while the
        # cluster is slow measures its own HTTP client, not Squall.
        pending: set[asyncio.Task[bool]] = set()
        limits = httpx.Limits(max_connections=self.MAX_IN_FLIGHT)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:
            start = time.monotonic()
            i = 0
            while not self._stop.is_set():
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                i += 1
                if len(pending) >= self.MAX_IN_FLIGHT:
                    self.errors["not sent (backpressure)"] += 1
                    continue
                task = asyncio.create_task(self.post(client, next(self._counter)))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending, timeout=30)

    async def burst(self, count: int) -> None:
        """Post ``count`` webhooks at once (a batch for the rules engines)."""
        limits = httpx.Limits(max_connections=self.MAX_IN_FLIGHT)
        async with httpx.AsyncClient(timeout=30, limits=limits) as c:
            gate = asyncio.Semaphore(self.MAX_IN_FLIGHT)

            async def one() -> None:
                async with gate:
                    await self.post(c, next(self._counter), "noop")

            await asyncio.gather(*(one() for _ in range(count)))

    def stop(self) -> None:
        self._stop.set()


async def _timed(check: Callable[[], Awaitable[object]], timeout: float, what: str) -> float:
    started = time.monotonic()
    await eventually(check, timeout=timeout, interval=0.1, message=what)
    return time.monotonic() - started


async def _restart(cluster: Cluster, proc: Proc) -> None:
    await cluster.wait_exit(proc, 30)
    await cluster.ready(cluster.start(proc.name, proc.roles, api=proc.roles == "api"))


# --- the faults ---------------------------------------------------------------------------------


async def _running_actions(cluster: Cluster, runner: Proc) -> list[str]:
    """Wait until ``runner`` runs some ``faults.slow`` actions; their ids."""

    async def busy() -> list[str]:
        rows = await cluster.query(
            "SELECT id FROM executions WHERE lease_owner = $1 AND status = 'running' "
            "AND action_ref = 'faults.slow'",
            runner.squall_id,
        )
        return [r[0] for r in rows]

    return await eventually(
        busy, timeout=30, interval=0.05, message=f"{runner.name} running actions"
    )


async def kill_runner(cluster: Cluster, load: Load) -> tuple[float, str]:
    runner = cluster.procs["runner1"]
    held = await _running_actions(cluster, runner)
    cluster.kill(runner)
    t0 = time.monotonic()

    async def abandoned() -> bool:
        n = await cluster.scalar(
            "SELECT count(*) FROM executions WHERE id = ANY($1) AND status = 'abandoned'", held
        )
        return bool(n == len(held))

    await eventually(abandoned, timeout=LEASE + 15, interval=0.1, message="abandonment")
    took = time.monotonic() - t0
    retried = await cluster.scalar(
        "SELECT count(*) FROM executions WHERE context->'policies'->'retry'->>'retried_execution'"
        " = ANY($1)",
        held,
    )
    assert took <= LEASE + 5, f"abandoned after {took:.1f}s, lease {LEASE}s"
    await _restart(cluster, runner)
    return took, f"{len(held)} running actions abandoned, {retried} retried by policy"


async def kill_workflow(cluster: Cluster, load: Load) -> tuple[float, str]:
    engine = cluster.procs["workflow1"]

    async def running() -> list[str]:
        rows = await cluster.query("SELECT id FROM workflow_executions WHERE status = 'running'")
        return [r[0] for r in rows]

    runs = await eventually(running, timeout=30, interval=0.05, message="workflows running")
    cluster.kill(engine)

    async def finished() -> bool:
        n = await cluster.scalar(
            f"SELECT count(*) FROM executions WHERE id = ANY($1) AND status IN {TERMINAL}", runs
        )
        return bool(n == len(runs))

    took = await _timed(finished, LEASE + 30, "the running workflows to finish")
    await _restart(cluster, engine)
    return took, f"{len(runs)} running workflows all finished"


async def kill_rules(cluster: Cluster, load: Load) -> tuple[float, str]:
    leader = await cluster.scalar("SELECT owner FROM leases WHERE name = 'timers'")
    victim = next(
        p for p in (cluster.procs["rules1"], cluster.procs["rules2"]) if p.squall_id != leader
    )

    async def claims() -> list[str]:
        rows = await cluster.query(
            "SELECT id FROM trigger_instances WHERE claimed_by = $1 AND status = 'processing'",
            victim.squall_id,
        )
        return [r[0] for r in rows]

    # Catch it holding a batch: freeze it (SIGSTOP) as soon as it has claims, check they are
    # still uncommitted, then kill it. A batch takes milliseconds, so try a few bursts.
    held: list[str] = []
    t0 = time.monotonic()
    for _attempt in range(10):
        burst = asyncio.create_task(load.burst(200))
        try:
            await eventually(claims, timeout=10, interval=0.002, message="a claimed batch")
        except AssertionError:
            await burst
            continue
        cluster.kill(victim, signal.SIGSTOP)
        t0 = time.monotonic()  # frozen: as good as dead from here
        held = await claims()
        await burst
        if held:
            break
        cluster.kill(victim, signal.SIGCONT)
    cluster.kill(victim)
    if not held:
        t0 = time.monotonic()

    async def processed() -> bool:
        n = await cluster.scalar(
            "SELECT count(*) FROM trigger_instances WHERE id = ANY($1) AND status = 'processed'",
            held,
        )
        return bool(n == len(held))

    await eventually(processed, timeout=LEASE + 15, interval=0.1, message="the dead batch")
    took = time.monotonic() - t0
    assert held, "never caught the rules engine holding a batch"
    assert took <= LEASE + 5, f"the batch was processed {took:.1f}s after the kill"
    await _restart(cluster, victim)
    return took, f"its batch of {len(held)} claimed instances processed by the other engine"


async def kill_timers_leader(cluster: Cluster, load: Load) -> tuple[float, str]:
    owner = await cluster.scalar("SELECT owner FROM leases WHERE name = 'timers'")
    leader = cluster.by_squall_id(owner)
    assert leader is not None, f"no known process holds the timers lease ({owner})"
    cluster.kill(leader)

    async def taken() -> bool:
        now = await cluster.scalar(
            "SELECT owner FROM leases WHERE name = 'timers' AND expires_at > now()"
        )
        return now is not None and now != owner

    took = await _timed(taken, LEASE + 10, "another process to take the timers lease")
    assert took <= LEASE + 5, f"timers taken over after {took:.1f}s, lease {LEASE}s"
    await _restart(cluster, leader)
    return took, f"lease moved from {leader.name}"


async def _probe(cluster: Cluster, load: Load, timeout: float) -> float:
    """Time until a webhook posted now has run its execution."""
    started = time.monotonic()
    marker = 10_000_000 + int(started * 1000) % 1_000_000
    async with httpx.AsyncClient(timeout=10) as client:

        async def through() -> bool:
            if marker not in load.accepted:
                await load.post(client, marker, "noop")
                if marker not in load.accepted:
                    return False
            n = await cluster.scalar(
                "SELECT count(*) FROM executions e JOIN rule_enforcements r "
                "ON r.execution_id = e.id JOIN trigger_instances t ON t.id = r.trigger_instance_id"
                " WHERE (t.payload->'body'->>'n')::bigint = $1 AND e.status = 'succeeded'",
                marker,
            )
            return bool(n)

        await eventually(through, timeout=timeout, interval=0.2, message="a probe webhook")
    return time.monotonic() - started


async def terminate_connections(cluster: Cluster, load: Load) -> tuple[float, str]:
    killed = await cluster.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    took = await _probe(cluster, load, LEASE + 30)
    dead = [p.name for p in cluster.procs.values() if not p.alive]
    assert not dead, f"processes exited after losing their connections: {dead}"
    return took, f"{killed} connections terminated; every process reconnected"


async def sigterm_runner(cluster: Cluster, load: Load) -> tuple[float, str]:
    runner = cluster.procs["runner2"]
    held = await _running_actions(cluster, runner)
    cluster.kill(runner, signal.SIGTERM)
    t0 = time.monotonic()
    code = await cluster.wait_exit(runner, 30)
    took = time.monotonic() - t0
    statuses = Counter(
        r[0] for r in await cluster.query("SELECT status FROM executions WHERE id = ANY($1)", held)
    )
    assert code == 0, f"runner2 exited with {code}:\n{runner.tail()}"
    assert statuses == Counter({"succeeded": len(held)}), statuses
    await _restart(cluster, runner)
    return took, f"{len(held)} running actions finished before exit"


async def _others_on_server(cluster: Cluster) -> int:
    """Sessions of other databases on the server (other people's work a restart would cut)."""
    return int(
        await cluster.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL "
            "AND datname <> current_database() AND pid <> pg_backend_pid()"
        )
    )


async def restart_postgres(cluster: Cluster, load: Load) -> tuple[float, str]:
    # The server may be shared (other test suites): wait up to a minute for it to be ours
    # alone, and restart anyway only when SQUALL_FAULTS_PG_RESTART_FORCE is set.
    deadline = time.monotonic() + 60
    while await _others_on_server(cluster) and time.monotonic() < deadline:
        await asyncio.sleep(1)
    if await _others_on_server(cluster) and not os.environ.get("SQUALL_FAULTS_PG_RESTART_FORCE"):
        return 0.0, "skipped: other databases on the server are in use"
    command = os.environ.get("SQUALL_FAULTS_PG_RESTART")
    if command:
        argv = shlex.split(command)
    else:
        versions = sorted(os.listdir("/etc/postgresql"))
        argv = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]
    proc = await asyncio.create_subprocess_exec(*argv)
    assert await asyncio.wait_for(proc.wait(), 120) == 0, f"{argv} failed"
    took = await _probe(cluster, load, 120)
    dead = [p.name for p in cluster.procs.values() if not p.alive]
    assert not dead, f"processes exited during the PostgreSQL restart: {dead}"
    return took, "every process reconnected"


FAULTS: list[tuple[str, Callable[[Cluster, Load], Awaitable[tuple[float, str]]]]] = [
    ("kill -9 runner mid-action", kill_runner),
    ("kill -9 workflow engine mid-workflow", kill_workflow),
    ("kill -9 rules engine mid-batch", kill_rules),
    ("kill -9 timers leader", kill_timers_leader),
    ("terminate all DB connections", terminate_connections),
    ("SIGTERM runner mid-action", sigterm_runner),
]
if LONG:
    FAULTS.append(("restart PostgreSQL", restart_postgres))


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture
async def cluster() -> object:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        await conn.close()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unavailable: {exc!r}")
        pytest.skip(f"PostgreSQL unavailable ({PG_URL}): {exc!r}")
    c = Cluster(
        PG_URL,
        packs=[FIXTURES],
        env={"SQUALL_LEASE_SECONDS": str(LEASE), "SQUALL_SHUTDOWN_GRACE": "15"},
    )
    await c.create()
    try:
        yield c
    finally:
        await c.stop()
        if c.passed:
            shutil.rmtree(c.home, ignore_errors=True)  # else the process logs stay there
        else:
            print(f"process logs: {c.home}")


async def _settled(cluster: Cluster) -> bool:
    pending = await cluster.scalar(
        "SELECT count(*) FROM trigger_instances WHERE status IN ('pending', 'processing')"
    )
    active = await cluster.scalar(f"SELECT count(*) FROM executions WHERE status IN {ACTIVE}")
    events = await cluster.scalar("SELECT count(*) FROM workflow_events")
    return pending == 0 and active == 0 and events == 0


@pytest.mark.timeout(1800 if LONG else 300)
async def test_faults_under_load(cluster: Cluster) -> None:
    started = time.monotonic()
    first = cluster.start("api1", LAYOUT["api1"], api=True)
    await cluster.ready(first)  # creates the schema and registers the packs
    for name, roles in LAYOUT.items():
        if name != "api1":
            cluster.start(name, roles, api=roles == "api")
    for name in LAYOUT:
        await cluster.ready(cluster.procs[name])
    await eventually(
        lambda: cluster.scalar("SELECT owner FROM leases WHERE name = 'timers'"),
        timeout=30,
        message="a timers leader",
    )

    load = Load(cluster, RATE)
    sender = asyncio.create_task(load.run())
    phases: list[Phase] = []
    try:
        await asyncio.sleep(STEADY)
        for fault, inject in FAULTS:
            print(f"[{time.monotonic() - started:6.1f}s] {fault}", flush=True)
            phase = Phase(fault, load.sent, len(load.accepted))
            phase.recovered_s, phase.detail = await inject(cluster, load)
            print(f"[{time.monotonic() - started:6.1f}s]   {phase.detail}", flush=True)
            await asyncio.sleep(STEADY)
            phase.sent = load.sent - phase.sent_before
            phase.accepted = len(load.accepted) - phase.accepted_before
            phases.append(phase)
    finally:
        load.stop()
        await sender
    settle = await _timed(lambda: _settled(cluster), 2 * LEASE + 60, "the cluster to settle")

    report = await _check(cluster, load, phases)
    cluster.passed = True
    print(report)
    print(f"total {time.monotonic() - started:.0f}s (settled {settle:.1f}s after the load)")


async def _check(cluster: Cluster, load: Load, phases: list[Phase]) -> str:
    # Every accepted webhook stored exactly once.
    rows = await cluster.query(
        "SELECT (payload->'body'->>'n')::bigint AS n, count(*) FROM trigger_instances "
        "WHERE trigger_type = 'core.st2.webhook' GROUP BY 1"
    )
    stored = {r[0]: r[1] for r in rows}
    missing = sorted(load.accepted - set(stored))
    assert not missing, f"{len(missing)} accepted webhooks were lost: {missing[:10]}"
    twice = {n: c for n, c in stored.items() if c != 1}
    assert not twice, f"webhooks stored more than once: {list(twice.items())[:10]}"

    # Every trigger instance processed, enforced exactly once, with its execution. The
    # interval timer keeps ticking after the cluster settled: a tick being processed right
    # now is not stuck, so the check is repeated for a moment (far less than the lease a
    # stuck claim would need to be taken over).
    async def _not_enforced_once() -> list[Any]:
        return await cluster.query(
            "SELECT t.id, t.trigger_type, t.status, count(r.id) FROM trigger_instances t "
            "LEFT JOIN rule_enforcements r ON r.trigger_instance_id = t.id "
            "GROUP BY t.id, t.trigger_type, t.status "
            "HAVING count(r.id) <> 1 OR t.status <> 'processed'"
        )

    bad = await _not_enforced_once()
    deadline = time.monotonic() + min(3.0, LEASE / 2)
    while bad and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        bad = await _not_enforced_once()
    assert not bad, f"instances not enforced exactly once: {[tuple(b) for b in bad[:10]]}"
    orphans = await cluster.scalar(
        "SELECT count(*) FROM rule_enforcements r LEFT JOIN executions e "
        "ON e.id = r.execution_id WHERE e.id IS NULL"
    )
    assert orphans == 0, f"{orphans} enforcements without their execution"

    # Nothing left running; every workflow finished.
    statuses = {
        r[0]: r[1]
        for r in await cluster.query("SELECT status, count(*) FROM executions GROUP BY 1")
    }
    assert set(statuses) <= set(TERMINAL), statuses
    abandoned = await cluster.query(
        "SELECT status, action_ref, left(coalesce(convert_from(substring(result from 2), 'UTF8')"
        "::json->>'error', convert_from(substring(result from 2), 'UTF8')), 160), count(*) "
        "FROM executions WHERE status IN ('abandoned', 'failed') AND get_byte(result, 0) = 106 "
        "GROUP BY 1, 2, 3"
    )
    workflows = {
        r[0]: r[1]
        for r in await cluster.query("SELECT status, count(*) FROM workflow_executions GROUP BY 1")
    }
    assert set(workflows) <= set(TERMINAL), workflows

    # Timer ticks: one instance per fired tick, gaps no longer than the takeover.
    ticks = [
        (r[0], r[1])
        for r in await cluster.query(
            "SELECT tick_at, trigger_instance_id FROM timer_ticks ORDER BY tick_at"
        )
    ]
    fired = [t for t, instance in ticks if instance is not None]
    instances = await cluster.scalar(
        "SELECT count(*) FROM trigger_instances WHERE trigger_type = 'core.st2.IntervalTimer'"
    )
    assert instances == len(fired), f"{instances} timer instances for {len(fired)} fired ticks"
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired)]
    worst = max(gaps, default=0.0)
    assert worst <= LEASE + 5, f"a {worst:.1f}s gap between timer ticks (lease {LEASE}s)"

    enforced = await cluster.scalar("SELECT count(*) FROM rule_enforcements")
    lines = [
        "",
        f"fault injection ({'long' if LONG else 'quick'} mode, lease {LEASE:.0f}s, "
        f"{RATE:.0f} webhooks/s, {len(LAYOUT)} processes)",
        f"{'fault':<38} {'sent':>6} {'accepted':>9} {'recovered':>10}  detail",
    ]
    for p in phases:
        rec = f"{p.recovered_s:.1f}s" if p.recovered_s is not None else "-"
        lines.append(f"{p.fault:<38} {p.sent:>6} {p.accepted:>9} {rec:>10}  {p.detail}")
    lines += [
        f"{'total':<38} {load.sent:>6} {len(load.accepted):>9}",
        f"webhooks: sent {load.sent}, accepted {len(load.accepted)}, stored {len(stored)}, "
        f"lost 0, duplicated 0; refused/failed: {dict(load.errors) or 'none'}",
        f"enforcements: {enforced} (exactly one per trigger instance)",
        "executions: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        "workflows: " + ", ".join(f"{k} {v}" for k, v in sorted(workflows.items())),
        *(f"  {status}: {n} x {ref} ({why})" for status, ref, why, n in abandoned),
        f"timer ticks: fired {len(fired)}, skipped {len(ticks) - len(fired)}, "
        f"duplicated 0, longest gap {worst:.1f}s",
    ]
    return "\n".join(lines)
