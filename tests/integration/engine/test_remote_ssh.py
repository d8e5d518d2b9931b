"""core.remote and remote-shell actions through the API, against a real local SSH server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.api.app import create_app
from squall.engine.runtime import Runtime
from squall.testing import eventually
from tests.integration.engine.conftest import ADMIN_PASSWORD, FIXTURE_PACKS, make_settings
from tests.sshd import PASSWORD, USER, SshServer, start_ssh_server

pytestmark = pytest.mark.timeout(90)

TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}
HOSTILE = '; rm -rf / $(id) `id` it\'s "q"\nnext line'
SSH_PACK = {
    "pack.yaml": "name: sshpack\ndescription: SSH runner tests\nversion: 1.0.0\nauthor: tests\n",
    "actions/hostile.yaml": (
        "name: hostile\nrunner_type: remote-shell-cmd\nparameters:\n"
        "  text:\n    type: string\n    required: true\n"
        "  cmd:\n    default: \"printf '<%s>\\\\n' {{ text }}\"\n    immutable: true\n"
    ),
}


@pytest.fixture
async def sshd(tmp_path: Path) -> AsyncIterator[SshServer]:
    server = await start_ssh_server(tmp_path / "sshd")
    yield server
    await server.close()


@pytest.fixture
async def api(db_url: str, tmp_path: Path, sshd: SshServer) -> AsyncIterator[httpx.AsyncClient]:
    packs = tmp_path / "packs"
    for name, text in SSH_PACK.items():
        (packs / "sshpack" / name).parent.mkdir(parents=True, exist_ok=True)
        (packs / "sshpack" / name).write_text(text)
    home = tmp_path / "home"
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{home / 'squall.db'}"
    settings = make_settings(
        home,
        db_url,
        ssh_user=USER,
        ssh_key_file=str(sshd.key_file),
        ssh_known_hosts=str(sshd.known_hosts),
    )
    settings = dataclasses.replace(settings, packs_path=(str(FIXTURE_PACKS), str(packs)))
    rt = await Runtime.open(settings)
    try:
        await rt.ensure_admin()
        results = await rt.packs.register_all()
        assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
        await rt.start_services()
        transport = httpx.ASGITransport(app=create_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://squall") as client:
            resp = await client.post("/auth/v1/tokens", auth=("admin", ADMIN_PASSWORD))
            client.headers["X-Auth-Token"] = resp.json()["token"]
            yield client
    finally:
        await rt.close()


async def start(api: httpx.AsyncClient, action: str, **params: Any) -> str:
    resp = await api.post("/api/v1/executions", json={"action": action, "parameters": params})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def wait(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in TERMINAL else None

    return await eventually(done, timeout=30, message=f"execution {execution_id} to finish")


async def test_core_remote_on_two_hosts_with_password_masked(
    api: httpx.AsyncClient, sshd: SshServer
) -> None:
    execution_id = await start(
        api, "core.remote", hosts=sshd.hosts, cmd="echo hi from $PWD", password=PASSWORD
    )
    doc = await wait(api, execution_id)
    assert doc["status"] == "succeeded", doc["result"]
    assert set(doc["result"]) == {f"127.0.0.1:{p}" for p in sshd.ports}
    for host_result in doc["result"].values():
        assert host_result == {
            "stdout": "hi from /tmp",
            "stderr": "",
            "return_code": 0,
            "succeeded": True,
            "failed": False,
        }
    assert doc["parameters"]["password"] == "********"
    assert doc["liveaction"]["parameters"]["password"] == "********"
    output = (await api.get(f"/api/v1/executions/{execution_id}/output")).text
    assert sorted(output.splitlines()) == sorted(
        f"[127.0.0.1:{p}] hi from /tmp" for p in sshd.ports
    )
    listed = (await api.get("/api/v1/executions", params={"action": "core.remote"})).text
    for text in (str(doc), output, listed):
        assert PASSWORD not in text


async def test_rendered_parameters_reach_the_command_literally(
    api: httpx.AsyncClient, sshd: SshServer
) -> None:
    host = f"127.0.0.1:{sshd.ports[0]}"
    doc = await wait(api, await start(api, "sshpack.hostile", hosts=host, text=HOSTILE))
    assert doc["status"] == "succeeded", doc["result"]
    assert doc["result"][host]["stdout"] == f"<{HOSTILE}>"


async def test_failing_host_fails_the_execution(api: httpx.AsyncClient, sshd: SshServer) -> None:
    hosts = f"127.0.0.1:{sshd.ports[0]},127.0.0.1:1"
    doc = await wait(api, await start(api, "core.remote", hosts=hosts, cmd="echo up"))
    assert doc["status"] == "failed"
    assert doc["result"][f"127.0.0.1:{sshd.ports[0]}"]["stdout"] == "up"
    assert doc["result"]["127.0.0.1:1"]["error"].startswith("cannot connect to 127.0.0.1:1")


async def test_timeout_and_cancel(api: httpx.AsyncClient, sshd: SshServer) -> None:
    host = f"127.0.0.1:{sshd.ports[0]}"
    doc = await wait(api, await start(api, "core.remote", hosts=host, cmd="sleep 60", timeout=1))
    assert doc["status"] == "timeout"
    assert doc["result"][host]["timeout"] is True and doc["result"][host]["return_code"] == -9

    execution_id = await start(api, "core.remote", hosts=host, cmd="echo go; sleep 60")

    async def started() -> bool:
        text = (await api.get(f"/api/v1/executions/{execution_id}/output")).text
        return "go" in text

    await eventually(started, timeout=20, message="remote output")
    pid = sshd.pids[-1]
    await api.delete(f"/api/v1/executions/{execution_id}")
    assert (await wait(api, execution_id))["status"] == "canceled"

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (FileNotFoundError, ProcessLookupError):
            return True

    await eventually(gone, timeout=10, message="the remote command to end")
