"""``squall status``: the service registry as a table and as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from squall.cli.commands.status import cmd_status

DOCS = [
    {
        "id": "web1:812:9c1e02f4",
        "roles": ["api", "rules", "timers"],
        "host": "web1",
        "pid": 812,
        "status": "alive",
        "version": "0.1.0",
        "started_at": "2026-01-01T00:00:00.000000Z",
        "heartbeat_at": "2026-01-01T00:05:00.000000Z",
        "heartbeat_age_seconds": 1.2,
        "in_flight": {"trigger_instances": 0},
        "leases": ["timers"],
        "info": {},
    },
    {
        "id": "run1:977:4b7d10aa",
        "roles": ["runner"],
        "host": "run1",
        "pid": 977,
        "status": "lost",
        "version": "0.1.0",
        "started_at": "2026-01-01T00:00:00.000000Z",
        "heartbeat_at": "2026-01-01T00:01:00.000000Z",
        "heartbeat_age_seconds": 240.0,
        "in_flight": {"executions": 12},
        "leases": [],
        "info": {},
    },
]


class FakeClient:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def get(self, path: str, **_params: Any) -> Any:
        self.paths.append(path)
        return [dict(d) for d in DOCS]


def _args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, "all": False, "database": False, **kw})


def test_table_shows_live_processes_with_work_and_leases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = FakeClient()
    assert cmd_status(_args(), client) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert client.paths == ["/api/v1/service_registry/processes"]
    assert "web1:812:9c1e02f4" in out and "api,rules,timers" in out and "timers" in out
    assert "run1" not in out  # lost processes only with --all
    assert "1 live process(es)" in out


def test_all_and_json_include_lost_processes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_status(_args(all=True, json=True), FakeClient()) == 0  # type: ignore[arg-type]
    docs = json.loads(capsys.readouterr().out)
    assert [(d["host"], d["status"]) for d in docs] == [("web1", "alive"), ("run1", "lost")]
    assert docs[1]["in_flight"] == {"executions": 12}
