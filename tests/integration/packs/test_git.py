"""The git adapter on its own: time limits, credentials, version lookup (real git)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.errors import PackError
from squall.packs.git import clone
from tests.gitpacks import PackRepo


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def git_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


async def test_a_hanging_clone_is_stopped_with_its_helpers(
    silent_server: int, tmp_path: Path
) -> None:
    url = f"git://127.0.0.1:{silent_server}/hangs.git"
    started = time.monotonic()
    with pytest.raises(PackError) as caught:
        await clone(url, tmp_path / "clone", timeout=1.0)
    assert time.monotonic() - started < 10
    assert "git clone took longer than 1s and was stopped" in str(caught.value)
    assert git_processes(f"127.0.0.1:{silent_server}") == []


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://bob:s3cr3t@h/x", "https://h/x"),
        ("https://ghp_s3cr3t@h/x", "https://h/x"),
        ("https://s3cr3t@[::1]:8443/x", "https://[::1]:8443/x"),
    ],
)
async def test_the_clone_keeps_no_user_info(tmp_path: Path, url: str, kept: str) -> None:
    repo = PackRepo(tmp_path / "src", "src")
    repo.version("1.0.0", {"a": "a"})
    cloned = await clone(str(repo.path), tmp_path / "clone", timeout=30)
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", str(cloned.path), "remote", "set-url", "origin", url
    )
    assert await proc.wait() == 0
    cloned.url = url
    await cloned.forget_credentials()
    config = (cloned.path / ".git" / "config").read_text()
    assert "s3cr3t" not in config and f"url = {kept}\n" in config


async def test_versions_are_found_as_stackstorm_finds_them(tmp_path: Path) -> None:
    repo = PackRepo(tmp_path / "src", "src")
    first = repo.version("1.0.0", {"a": "a"}, tag="v1.0.0")
    repo.tag("stable")
    repo.branch("release/2")
    second = repo.version("2.0.0", {"a": "b"})
    repo.switch("main")
    cloned = await clone(repo.url, tmp_path / "clone", timeout=30)
    assert (await cloned.resolve(None)).commit == first
    assert (await cloned.resolve("1.0.0")).name == "v1.0.0"
    assert (await cloned.resolve("stable")).kind == "tag"
    found = await cloned.resolve("release/2")
    assert (found.kind, found.name, found.commit) == ("branch", "release/2", second)
    assert (await cloned.resolve(second[:7])).commit == second
    assert (await cloned.resolve(second.upper())).commit == second
    with pytest.raises(PackError) as caught:
        await cloned.resolve("HEAD~1")
    assert "Tags: v1.0.0, stable" in str(caught.value) or "Tags: stable, v1.0.0" in str(
        caught.value
    )
    assert "Branches: main, release/2" in str(caught.value)
