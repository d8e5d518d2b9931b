"""Fixtures of the runner integration tests: fakes of the host's ports and a context factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from squall.runners.base import RunContext


class RecordingSink:
    """An OutputSink that keeps every chunk, in order, with its arrival time."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []

    async def write(self, stream: str, data: str) -> None:
        self.chunks.append((stream, data))

    def text(self, stream: str) -> str:
        return "".join(data for s, data in self.chunks if s == stream)


class MemoryDatastore:
    """An in-memory DatastoreClient (a fake: real behaviour, no storage)."""

    def __init__(self, items: dict[str, str] | None = None) -> None:
        self.items: dict[tuple[str, str], str] = {
            ("system", k): v for k, v in (items or {}).items()
        }
        self.calls: list[str] = []

    async def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        self.calls.append(f"get_value {name}")
        return self.items.get((scope, name))

    async def set_value(
        self,
        name: str,
        value: str,
        *,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        self.calls.append(f"set_value {name}")
        self.items[(scope, name)] = value
        return True

    async def delete_value(self, name: str, *, local: bool = True, scope: str = "system") -> bool:
        self.calls.append(f"delete_value {name}")
        return self.items.pop((scope, name), None) is not None

    async def list_values(
        self, *, local: bool = True, prefix: str | None = None, scope: str = "system"
    ) -> list[dict[str, Any]]:
        self.calls.append("list_values")
        return [
            {"name": k, "value": v, "scope": s}
            for (s, k), v in sorted(self.items.items())
            if s == scope and (prefix is None or k.startswith(prefix))
        ]


ContextFactory = Callable[..., RunContext]


@pytest.fixture
def make_ctx(tmp_path: Path) -> ContextFactory:
    """Build a RunContext with a recording sink and an in-memory datastore."""

    def factory(
        runner_type: str,
        *,
        runner_parameters: dict[str, Any] | None = None,
        action_parameters: dict[str, Any] | None = None,
        parameter_specs: dict[str, dict[str, Any]] | None = None,
        entry_point: str | None = None,
        pack_path: Path | None = None,
        **extra: Any,
    ) -> RunContext:
        return RunContext(
            execution_id=extra.pop("execution_id", "exec-1"),
            action_ref=extra.pop("action_ref", "tests.action"),
            pack="tests",
            runner_type=runner_type,
            entry_point=entry_point,
            pack_path=pack_path,
            runner_parameters=dict(runner_parameters or {}),
            action_parameters=dict(action_parameters or {}),
            parameter_specs=dict(parameter_specs or {}),
            output=extra.pop("output", None) or RecordingSink(),
            datastore=extra.pop("datastore", None) or MemoryDatastore(),
            **extra,
        )

    return factory


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


@pytest.fixture
def poll() -> Callable[..., Awaitable[None]]:
    """``await poll(cond, within=…)``: wait for a condition with a deadline."""
    return eventually


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or exiting while read
        return False


@pytest.fixture
def alive() -> Callable[[int], bool]:
    """``alive(pid)``: is that process still running."""
    return pid_alive


@pytest.fixture
def new_datastore() -> Callable[..., MemoryDatastore]:
    """``new_datastore({"k": "v"})``: a fresh in-memory datastore."""
    return MemoryDatastore


@pytest.fixture
def new_sink() -> Callable[[], RecordingSink]:
    """``new_sink()``: a fresh recording output sink."""
    return RecordingSink


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


@pytest.fixture
def same_path() -> Callable[[str | Path, str | Path], bool]:
    """``same_path(a, b)``: do both name the same file once resolved."""
    return _same_path
