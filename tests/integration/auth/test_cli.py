"""``squall user``, ``squall apikey``, ``squall rbac`` and ``squall logout`` against a served
API (the CLI runs in a thread; the server in the test's event loop)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from squall.api.app import create_app
from squall.engine.runtime import Runtime
from squall.errors import AuthError


@pytest.fixture
async def served(
    runtime: Runtime, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    if not db_url.startswith("sqlite"):
        pytest.skip("the CLI does not depend on the database backend")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    for var in ("SQUALL_API_KEY", "SQUALL_TOKEN", "ST2_API_KEY", "ST2_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SQUALL_URL", url)
    monkeypatch.setenv("SQUALL_HOME", str(runtime.settings.home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    try:
        yield url
    finally:
        server.should_exit = True
        await task


@dataclass
class Result:
    code: int
    out: str
    err: str


async def squall(*argv: str) -> Result:
    """Run the ``squall`` CLI in a subprocess (the test's event loop keeps serving)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "squall.cli.main",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_user_commands(served: str) -> None:
    added = await squall("user", "add", "bob", "--password", "bob-pass-12", "-r", "observer")
    assert added.code == 0, added.err
    assert "created user 'bob' (roles: observer)" in added.out
    listed = await squall("user", "list", "--json")
    users = {u["name"]: u for u in json.loads(listed.out)}
    assert users["bob"]["roles"] == ["observer"] and users["bob"]["enabled"]
    disabled = await squall("user", "update", "bob", "--disable")
    assert disabled.code == 0 and "disabled" in disabled.out
    assert (await squall("user", "passwd", "bob", "--password", "bob-pass-34")).code == 0
    dup = await squall("user", "add", "bob", "--password", "bob-pass-56")
    assert dup.code == 2 and "already exists" in dup.err
    assert (await squall("user", "delete", "bob")).code == 0
    gone = await squall("user", "get", "bob")
    assert gone.code == 2 and "does not exist" in gone.err


async def test_apikey_and_rbac_commands(
    served: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await squall("apikey", "create", "-k", "-m", "purpose=ci")
    assert created.code == 0, created.err
    key = created.out.strip()
    assert len(key) > 30
    (listed,) = json.loads((await squall("apikey", "list", "--json")).out)
    assert key not in json.dumps(listed) and listed["metadata"] == {"purpose": "ci"}
    monkeypatch.setenv("SQUALL_API_KEY", key)
    who = await squall("whoami", "--json")
    assert json.loads(who.out)["authentication"]["method"] == "api_key"
    monkeypatch.delenv("SQUALL_API_KEY")
    assert (await squall("apikey", "disable", listed["id"])).code == 0
    monkeypatch.setenv("SQUALL_API_KEY", key)
    refused = await squall("whoami")
    assert refused.code == 4 and "disabled" in refused.err  # EXIT_AUTH
    monkeypatch.delenv("SQUALL_API_KEY")
    roles = runtime.settings.rbac_dir / "roles"
    roles.mkdir(parents=True)
    (roles / "ops.yaml").write_text(
        "name: ops\npermission_grants:\n  - resource_uid: pack:alpha\n"
        "    permission_types: [action_execute]\n"
    )
    loaded = await squall("rbac", "load")
    assert loaded.code == 0 and "roles ops" in loaded.out
    listed_roles = (await squall("rbac", "roles")).out
    assert "system_admin" in listed_roles and "ops" in listed_roles
    assert "inquiry_respond" in (await squall("rbac", "permissions", "inquiry")).out
    assignments = json.loads((await squall("rbac", "assignments", "--json")).out)
    assert {"user": "admin", "role": "system_admin"}.items() <= assignments[0].items()


async def test_logout_revokes_the_cached_token(
    served: str, runtime: Runtime, tmp_path: Path
) -> None:
    from tests.integration.auth.conftest import ADMIN_PASSWORD

    assert (await squall("login", "admin", "--password", ADMIN_PASSWORD)).code == 0
    cache = json.loads((tmp_path / "xdg" / "squall" / "tokens.json").read_text())
    token = cache[served]["token"]
    assert (await runtime.auth.check_token(token)).user == "admin"
    out = await squall("logout")
    assert out.code == 0, out.err
    runtime.auth.forget()
    with pytest.raises(AuthError, match="revoked"):
        await runtime.auth.check_token(token)
    assert served not in json.loads((tmp_path / "xdg" / "squall" / "tokens.json").read_text())
