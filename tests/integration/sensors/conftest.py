"""In-process Squall runtimes whose packs have sensors (the sensor processes are real)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from squall.config import load_settings
from squall.engine.runtime import Runtime

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "good"
FAULTY = FIXTURES / "faulty"


def make_settings(home: Path, db_url: str, packs: Path, **overrides: Any) -> Any:
    database_url = "" if db_url.startswith("sqlite") else db_url
    return load_settings(
        environ={},
        home=home,
        database_url=database_url,
        packs_path=(str(packs),),
        configs_path=str(FIXTURES / "configs"),
        admin_password="test-password-1",
        lease_seconds=overrides.pop("lease_seconds", 3.0),
        output_flush_interval=0.02,
        python_workers=1,
        sensor_stop_grace=overrides.pop("sensor_stop_grace", 2.0),
        **overrides,
    )


class Runtimes:
    """Opens runtimes on one database; the first registers the packs. Closes them at the end."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.tmp_path = tmp_path
        self.opened: list[Runtime] = []

    async def open(
        self, packs: Path, roles: tuple[str, ...] = ("all",), **overrides: Any
    ) -> Runtime:
        home = self.tmp_path / f"home{len(self.opened)}"
        url = self.db_url
        if url.startswith("sqlite"):
            url = f"sqlite:///{home / 'squall.db'}"
        rt = await Runtime.open(make_settings(home, url, packs, **overrides), roles=roles)
        self.opened.append(rt)
        if len(self.opened) == 1:
            await rt.ensure_admin()
            results = await rt.packs.register_all()
            assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
        await rt.start_services()
        return rt

    async def close(self, rt: Runtime) -> None:
        self.opened.remove(rt)
        await rt.close()


async def _runtimes(db_url: str, tmp_path: Path) -> AsyncIterator[Runtimes]:
    rts = Runtimes(db_url, tmp_path)
    try:
        yield rts
    finally:
        for rt in reversed(rts.opened):
            await rt.close()


@pytest.fixture
async def runtimes(db_url: str, tmp_path: Path) -> AsyncIterator[Runtimes]:
    """Runtimes with their services started, on both backends."""
    async for rts in _runtimes(db_url, tmp_path):
        yield rts


@pytest.fixture
async def pg_runtimes(pg_url: str, tmp_path: Path) -> AsyncIterator[Runtimes]:
    """Runtimes ("processes") sharing one PostgreSQL database."""
    async for rts in _runtimes(pg_url, tmp_path):
        yield rts
