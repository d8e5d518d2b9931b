"""Two in-process Squall runtimes on one PostgreSQL database (two "processes")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from squall.config import load_settings
from squall.engine.runtime import Runtime

FIXTURE_PACKS = Path(__file__).parents[1] / "engine" / "fixtures"


def make_settings(home: Path, db_url: str, **overrides: Any) -> Any:
    return load_settings(
        environ={},
        home=home,
        database_url=db_url,
        packs_path=(str(FIXTURE_PACKS),),
        admin_password="test-password-1",
        lease_seconds=overrides.pop("lease_seconds", 3.0),
        output_flush_interval=0.02,
        python_workers=1,
        **overrides,
    )


@pytest.fixture
async def open_runtime(pg_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await open_runtime(roles, **settings)``: a runtime with its services started."""
    opened: list[Runtime] = []

    async def _open(roles: tuple[str, ...] = ("all",), **overrides: Any) -> Runtime:
        rt = await Runtime.open(make_settings(tmp_path / "home", pg_url, **overrides), roles=roles)
        opened.append(rt)
        if not any(o is not rt for o in opened):
            await rt.ensure_admin()
            results = await rt.packs.register_all()
            assert all(r.ok for r in results)
        await rt.start_services()
        return rt

    try:
        yield _open
    finally:
        for rt in reversed(opened):
            await rt.close()
