"""``POST /api/v1/packs/install`` from git: real ``git`` on local repositories, on both
backends. Every failure must leave the previously installed version in place and working."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.engine.pack_install import INSTALL_RECORD
from squall.engine.runtime import Runtime
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.store import executions as exrepo
from squall.store.util import utcnow
from squall.testing import eventually
from tests.gitpacks import PackRepo, pack_yaml, shell_action
from tests.integration.auth.conftest import USER_PASSWORD

TERMINAL = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


async def install(api: httpx.AsyncClient, *specs: str, **extra: Any) -> httpx.Response:
    return await api.post("/api/v1/packs/install", json={"packs": list(specs), **extra})


async def installed(api: httpx.AsyncClient, *specs: str, **extra: Any) -> dict[str, Any]:
    resp = await install(api, *specs, **extra)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["ok"] is True and body["rolled_back"] is False, body
    return body


def fault(resp: httpx.Response, status: int = 400) -> str:
    assert resp.status_code == status, resp.text
    return str(resp.json()["faultstring"])


async def run(api: httpx.AsyncClient, ref: str) -> str:
    """Run an action and return its stdout (it must succeed)."""
    resp = await api.post("/api/v1/executions", json={"action": ref, "parameters": {}})
    assert resp.status_code == 201, resp.text
    execution_id = resp.json()["id"]

    async def done() -> dict[str, Any] | None:
        doc = (await api.get(f"/api/v1/executions/{execution_id}")).json()
        return doc if doc["status"] in TERMINAL else None

    doc = await eventually(done, timeout=20, message=f"{ref} to finish")
    assert doc["status"] == "succeeded", doc
    return str(doc["result"]["stdout"]).strip()


async def actions_of(api: httpx.AsyncClient, pack: str) -> set[str]:
    resp = await api.get("/api/v1/actions", params={"pack": pack})
    assert resp.status_code == 200, resp.text
    return {a["name"] for a in resp.json()}


async def pack_doc(api: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    resp = await api.get(f"/api/v1/packs/{ref}")
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


def leftovers(packs_dir: Path) -> list[str]:
    """Staging directories left in the install directory (there must be none)."""
    return sorted(p.name for p in packs_dir.glob(".squall-install-*"))


# --- installing -----------------------------------------------------------------------------


async def test_install_from_a_file_url_records_source_and_commit(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    head = hello_repo.git("rev-parse", "main")
    body = await installed(api, hello_repo.url)

    [pack] = body["packs"]
    assert pack["ref"] == "hello" and pack["version"] == "2.0.0"
    assert pack["install"]["source"] == hello_repo.url
    assert pack["install"]["commit"] == head
    assert pack["install"]["resolved"] == "default branch main"
    assert pack["install"]["installed_by"] == "admin"
    assert await actions_of(api, "hello") == {"greet", "extra"}
    assert await run(api, "hello.greet") == "v2"

    doc = await pack_doc(api, "hello")
    assert doc["version"] == "2.0.0"
    assert doc["path"] == str(packs_dir / "hello")
    assert doc["install"]["commit"] == head and doc["install"]["source"] == hello_repo.url
    target = packs_dir / "hello"
    assert json.loads((target / INSTALL_RECORD).read_text())["commit"] == head
    assert (target / ".git").is_dir()  # a clone, as StackStorm keeps it
    assert leftovers(packs_dir) == []


async def test_install_from_a_plain_path_at_a_tag(
    api: httpx.AsyncClient, hello_repo: PackRepo
) -> None:
    tagged = hello_repo.git("rev-parse", "v1.0.0^{commit}")
    body = await installed(api, f"{hello_repo.path}=v1.0.0")
    assert body["packs"][0]["install"]["commit"] == tagged
    assert body["packs"][0]["install"]["resolved"] == "tag v1.0.0"
    assert body["packs"][0]["install"]["source"] == str(hello_repo.path)
    assert await actions_of(api, "hello") == {"greet"}
    assert await run(api, "hello.greet") == "v1"
    assert (await pack_doc(api, "hello"))["version"] == "1.0.0"


async def test_a_version_number_finds_its_v_tag(
    api: httpx.AsyncClient, hello_repo: PackRepo
) -> None:
    body = await installed(api, f"{hello_repo.url}=1.0.0")
    assert body["packs"][0]["install"]["resolved"] == "tag v1.0.0"
    assert body["packs"][0]["install"]["version"] == "1.0.0"


async def test_install_at_a_branch(api: httpx.AsyncClient, hello_repo: PackRepo) -> None:
    body = await installed(api, f"{hello_repo.url}=dev")
    assert body["packs"][0]["install"]["commit"] == hello_repo.git("rev-parse", "dev")
    assert body["packs"][0]["install"]["resolved"] == "branch dev"
    assert await run(api, "hello.greet") == "dev"
    assert (await pack_doc(api, "hello"))["version"] == "2.1.0-dev"


async def test_install_at_a_commit_full_and_abbreviated(
    api: httpx.AsyncClient, hello_repo: PackRepo
) -> None:
    first = hello_repo.git("rev-list", "--max-parents=0", "main")
    await installed(api, f"{hello_repo.url}={first}")
    assert (await pack_doc(api, "hello"))["install"]["commit"] == first
    assert await run(api, "hello.greet") == "v1"

    second = hello_repo.git("rev-parse", "main")
    body = await installed(api, f"{hello_repo.url}={second[:10]}")
    assert body["packs"][0]["install"]["resolved"] == "commit"
    assert (await pack_doc(api, "hello"))["install"]["commit"] == second
    assert await run(api, "hello.greet") == "v2"


async def test_reinstall_at_another_version_replaces_the_actions(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    await installed(api, hello_repo.url)
    assert await actions_of(api, "hello") == {"greet", "extra"}
    await installed(api, f"{hello_repo.url}=v1.0.0")
    assert await actions_of(api, "hello") == {"greet"}
    assert (await api.get("/api/v1/actions/hello.extra")).status_code == 404
    assert not (packs_dir / "hello" / "actions" / "extra.yaml").exists()
    assert await run(api, "hello.greet") == "v1"
    # and forward again: the same spec twice is just a reinstall
    await installed(api, hello_repo.url)
    await installed(api, hello_repo.url)
    assert await actions_of(api, "hello") == {"greet", "extra"}
    assert sorted(p.name for p in packs_dir.iterdir() if not p.name.startswith(".")) == ["hello"]
    assert leftovers(packs_dir) == []


async def test_each_install_is_recorded_as_a_packs_install_execution(
    api: httpx.AsyncClient, hello_repo: PackRepo
) -> None:
    body = await installed(api, f"{hello_repo.url}=v1.0.0")
    doc = (await api.get(f"/api/v1/executions/{body['execution_id']}")).json()
    assert doc["action"]["ref"] == "packs.install" and doc["status"] == "succeeded"
    assert doc["parameters"] == {"packs": [f"{hello_repo.url}=v1.0.0"], "force": False}
    assert doc["result"]["output"] == {"packs_list": ["hello"], "warning_list": []}
    assert doc["context"]["user"] == "admin"
    assert [e["status"] for e in doc["log"]] == ["running", "succeeded"]


async def running_squall_install(runtime: Runtime) -> str:
    """A running ``packs.squall_install`` execution (as the packs.install workflow starts
    one); returns its id."""
    action, bundle = await runtime.executions.action("packs.squall_install")
    row = exrepo.new_row(
        id=new_id(),
        action_ref=action.ref,
        action_snapshot=action.snapshot,
        runner_type=bundle.runner.name,
        parameters={"packs": ["x"]},
        context={"user": "admin"},
        user="admin",
        now=utcnow(),
        status=ExecutionStatus.RUNNING,
    )
    await runtime.db.write(lambda conn: exrepo.insert(conn, [row]))
    return str(row["id"])


async def test_only_the_installing_execution_itself_skips_the_record(
    runtime: Runtime, api: httpx.AsyncClient, hello_repo: PackRepo
) -> None:
    execution_id = await running_squall_install(runtime)

    async def install_as(token: str, claimed: str) -> dict[str, Any]:
        resp = await api.post(
            "/api/v1/packs/install",
            json={"packs": [hello_repo.url]},
            headers={"X-Squall-Execution-Id": claimed, "X-Auth-Token": token},
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    # An admin's own token naming some execution: recorded all the same.
    admin_token = str(api.headers["X-Auth-Token"])
    assert "execution_id" in await install_as(admin_token, execution_id)
    # A token of another execution.
    other, _ = await runtime.auth.issue_token("admin", metadata={"execution_id": "f" * 24})
    assert "execution_id" in await install_as(other, execution_id)
    # The execution's own token: it is the record.
    own, _ = await runtime.auth.issue_token("admin", metadata={"execution_id": execution_id})
    assert "execution_id" not in await install_as(own, execution_id)
    # ... but only while it runs.
    await runtime.db.write(
        lambda conn: exrepo.finish(
            conn, execution_id, status=ExecutionStatus.SUCCEEDED, result={}, now=utcnow()
        )
    )
    assert "execution_id" in await install_as(own, execution_id)


async def test_a_client_that_goes_away_leaves_a_recorded_install(
    runtime: Runtime, api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    async def records() -> list[dict[str, Any]]:
        resp = await api.get("/api/v1/executions", params={"action": "packs.install"})
        found: list[dict[str, Any]] = resp.json()
        return found

    packs_dir.mkdir(parents=True, exist_ok=True)
    # Another "process" holds the install lock, so the request waits inside the install.
    fd = os.open(packs_dir / ".squall-install.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        request = asyncio.ensure_future(install(api, hello_repo.url))
        installing = runtime.packs.installer._tasks
        await eventually(lambda: bool(installing), timeout=10, message="the install to start")
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
    finally:
        os.close(fd)
    done = await eventually(records, timeout=20, message="the install to be recorded")
    assert [d["status"] for d in done] == ["succeeded"]
    assert done[0]["parameters"]["packs"] == [hello_repo.url]
    assert (packs_dir / "hello" / INSTALL_RECORD).is_file()


async def test_progress_streams_as_json_lines(api: httpx.AsyncClient, hello_repo: PackRepo) -> None:
    resp = await api.post(
        "/api/v1/packs/install",
        json={"packs": [f"{hello_repo.url}=v1.0.0"]},
        headers={"Accept": "application/x-ndjson"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
    steps = [e["progress"] for e in events if "progress" in e]
    assert steps[0] == f"cloning {hello_repo.url} …"
    assert any(s.startswith("checking out tag v1.0.0") for s in steps), steps
    assert "registering hello …" in steps
    assert events[-1]["status"] == 200 and events[-1]["result"]["ok"] is True

    bad = await api.post(
        "/api/v1/packs/install",
        json={"packs": [f"{hello_repo.url}=v9"]},
        headers={"Accept": "application/x-ndjson"},
    )
    last = json.loads(bad.text.splitlines()[-1])
    assert last["status"] == 400 and "not a valid version" in last["result"]["faultstring"]


# --- failures leave the installed version alone ----------------------------------------------


@pytest.fixture
async def v1_installed(api: httpx.AsyncClient, hello_repo: PackRepo) -> str:
    """``hello`` installed at v1.0.0; returns its commit."""
    body = await installed(api, f"{hello_repo.url}=v1.0.0")
    commit: str = body["packs"][0]["install"]["commit"]
    return commit


async def assert_still_v1(api: httpx.AsyncClient, packs_dir: Path, commit: str) -> None:
    doc = await pack_doc(api, "hello")
    assert doc["version"] == "1.0.0" and doc["install"]["commit"] == commit
    assert await actions_of(api, "hello") == {"greet"}
    assert await run(api, "hello.greet") == "v1"
    assert json.loads((packs_dir / "hello" / INSTALL_RECORD).read_text())["commit"] == commit
    assert leftovers(packs_dir) == []


async def test_unreachable_url_says_what_git_said(
    api: httpx.AsyncClient, packs_dir: Path, tmp_path: Path, v1_installed: str
) -> None:
    # Port 1 on the loopback interface: refused at once, no network needed.
    message = fault(await install(api, "https://127.0.0.1:1/acme/hello.git"))
    assert "cannot clone https://127.0.0.1:1/acme/hello.git: fatal: unable to access" in message
    assert "127.0.0.1 port 1" in message  # git's own last line
    message = fault(await install(api, "ssh://git@127.0.0.1:1/acme/hello.git=v1.0.0"))
    assert "cannot clone ssh://***@127.0.0.1:1/acme/hello.git: ssh: connect to host" in message
    assert "Connection refused; fatal: Could not read from remote repository" in message

    missing = fault(await install(api, f"file://{tmp_path}/nowhere.git"))
    assert f"cannot install 'file://{tmp_path}/nowhere.git': no directory" in missing
    empty = tmp_path / "empty.git"
    empty.mkdir()
    PackRepo(empty, "empty")  # a repository without commits
    message = fault(await install(api, str(empty)))
    assert f"{empty} has no commits" in message
    await assert_still_v1(api, packs_dir, v1_installed)


async def test_passwords_in_urls_are_not_shown(
    api: httpx.AsyncClient, packs_dir: Path, v1_installed: str
) -> None:
    message = fault(await install(api, "https://bob:s3cr3t@127.0.0.1:1/acme/hello.git"))
    assert "s3cr3t" not in message and "https://***@127.0.0.1:1" in message
    message = fault(await install(api, "https://ghp_T0KEN@127.0.0.1:1/acme/hello.git=-x"))
    assert "ghp_T0KEN" not in message and "https://***@127.0.0.1:1" in message


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_git(hello_repo: PackRepo) -> Iterator[str]:
    """``hello_repo`` over git's dumb HTTP protocol (a static file server); yields the
    ``host:port`` to put in URLs."""
    hello_repo.git("update-server-info")
    handler = functools.partial(_QuietFiles, directory=str(hello_repo.path / ".git"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_token_in_the_user_name_is_kept_nowhere(
    api: httpx.AsyncClient, http_git: str, packs_dir: Path
) -> None:
    url = f"http://ghp_T0KEN@{http_git}/"
    resp = await api.post(
        "/api/v1/packs/install",
        json={"packs": [f"{url}=v1.0.0"]},
        headers={"Accept": "application/x-ndjson"},
    )
    assert resp.status_code == 200 and "ghp_T0KEN" not in resp.text, resp.text
    events = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
    last = events[-1]
    assert last["status"] == 200, last
    assert last["result"]["packs"][0]["install"]["source"] == f"http://***@{http_git}/"
    assert events[0] == {"progress": f"cloning http://***@{http_git}/ …"}
    for path in (packs_dir / "hello").rglob("*"):
        if path.is_file():
            assert b"ghp_T0KEN" not in path.read_bytes(), path
    config = (packs_dir / "hello" / ".git" / "config").read_text()
    assert f"url = http://{http_git}/\n" in config
    doc = (await api.get(f"/api/v1/executions/{last['result']['execution_id']}")).json()
    assert doc["parameters"]["packs"] == [f"http://***@{http_git}/=v1.0.0"]
    assert "ghp_T0KEN" not in json.dumps(doc)


async def test_packs_install_executions_show_no_user_info(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    spec = "https://ghp_T0KEN@127.0.0.1:1/acme/hello.git=v1.0.0"
    resp = await api.post(
        "/api/v1/executions", json={"action": "packs.install", "parameters": {"packs": [spec]}}
    )
    assert resp.status_code == 201, resp.text
    parent = resp.json()["id"]
    assert "ghp_T0KEN" not in resp.text

    async def child() -> list[dict[str, Any]] | None:
        found = (await api.get("/api/v1/executions", params={"parent": parent})).json()
        return found or None

    [task] = await eventually(child, timeout=20, message="the squall_install step")
    assert task["action"]["ref"] == "packs.squall_install"
    for doc in (task, (await api.get(f"/api/v1/executions/{parent}")).json()):
        assert doc["parameters"]["packs"] == ["https://***@127.0.0.1:1/acme/hello.git=v1.0.0"]
    listing = await api.get("/api/v1/executions", params={"action": "packs.install"})
    assert listing.status_code == 200 and parent in listing.text
    assert "ghp_T0KEN" not in listing.text


async def test_unknown_version_lists_the_available_ones(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    message = fault(await install(api, f"{hello_repo.url}=v9.9.9"))
    assert f'"v9.9.9" is not a valid version, hash, tag or branch in {hello_repo.url}' in message
    assert "Tags: v1.0.0" in message and "dev" in message and "main" in message
    await assert_still_v1(api, packs_dir, v1_installed)


async def test_repository_without_pack_yaml(
    api: httpx.AsyncClient, tmp_path: Path, packs_dir: Path, v1_installed: str
) -> None:
    repo = PackRepo(tmp_path / "repos" / "notapack", "notapack")
    repo.write("README.md", "nothing here\n").commit("readme")
    message = fault(await install(api, repo.url))
    assert "no pack.yaml at the top of the repository" in message
    await assert_still_v1(api, packs_dir, v1_installed)


async def test_invalid_pack_yaml(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    hello_repo.write("pack.yaml", "---\nref: hello\nname: hello\nversion: 3.0.0\n")
    hello_repo.commit("pack.yaml without author and description")
    message = fault(await install(api, hello_repo.url))
    assert f"cannot install {hello_repo.url!r}: invalid pack.yaml" in message
    assert "pack.yaml:" in message and "author" in message
    await assert_still_v1(api, packs_dir, v1_installed)


async def test_broken_action_file_names_file_and_line(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    hello_repo.write("pack.yaml", pack_yaml("hello", "3.0.0"))
    hello_repo.write("actions/greet.yaml", "---\nname: greet\nrunner_type: local-shell-cmd\n")
    hello_repo.write("actions/broken.yaml", "---\nname: broken\nrunner_type: [unclosed\n")
    hello_repo.commit("a broken action")
    message = fault(await install(api, hello_repo.url))
    assert "pack hello has errors" in message
    assert "actions/broken.yaml:3" in message, message
    await assert_still_v1(api, packs_dir, v1_installed)


async def test_registration_failure_rolls_back_to_the_previous_version(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    # Loads fine, but its rule names an action that exists nowhere: only registration,
    # which checks references across packs, can tell.
    hello_repo.version("3.0.0", {"greet": "v3", "third": "third"})
    hello_repo.write(
        "rules/on_hook.yaml",
        "---\nname: on_hook\npack: hello\ntrigger:\n  type: core.st2.webhook\n"
        "  parameters: {url: hello}\naction:\n  ref: hello.missing\n",
    )
    hello_repo.commit("a rule with a dangling action")
    resp = await install(api, hello_repo.url)
    message = fault(resp)
    assert "hello.missing" in message and "previous versions restored" in message
    assert resp.json()["rolled_back"] is True
    await assert_still_v1(api, packs_dir, v1_installed)
    record = (await api.get(f"/api/v1/executions/{resp.json()['execution_id']}")).json()
    assert record["status"] == "failed" and record["result"]["output"]["packs_list"] == []
    assert "hello.missing" in record["result"]["errors"][0]["message"]
    assert (await api.get("/api/v1/rules/hello.on_hook")).status_code == 404


async def test_a_failed_new_pack_leaves_nothing_behind(
    api: httpx.AsyncClient, tmp_path: Path, packs_dir: Path
) -> None:
    repo = PackRepo(tmp_path / "repos" / "fresh", "fresh")
    repo.write("pack.yaml", pack_yaml("fresh", "0.1.0"))
    repo.write("actions/ok.yaml", shell_action("ok", "ok"))
    repo.write(
        "rules/dangling.yaml",
        "---\nname: dangling\npack: fresh\ntrigger:\n  type: core.st2.webhook\n"
        "  parameters: {url: fresh}\naction:\n  ref: fresh.nothing\n",
    )
    repo.commit("dangling rule")
    fault(await install(api, repo.url))
    assert (await api.get("/api/v1/packs/fresh")).status_code == 404
    assert (await api.get("/api/v1/actions/fresh.ok")).status_code == 404
    assert not (packs_dir / "fresh").exists()
    assert leftovers(packs_dir) == []


async def test_one_bad_spec_installs_none_of_the_request(
    api: httpx.AsyncClient, hello_repo: PackRepo, tmp_path: Path, packs_dir: Path
) -> None:
    other = PackRepo(tmp_path / "repos" / "other", "other")
    other.version("1.0.0", {"hi": "hi"})
    fault(await install(api, other.url, f"{hello_repo.url}=nope"))
    assert (await api.get("/api/v1/packs/other")).status_code == 404
    assert not (packs_dir / "other").exists()
    body = await installed(api, other.url, f"{hello_repo.url}=v1.0.0")
    assert [p["ref"] for p in body["packs"]] == ["other", "hello"]


# --- what is refused --------------------------------------------------------------------------


async def test_options_and_command_transports_are_refused(
    api: httpx.AsyncClient, hello_repo: PackRepo, tmp_path: Path, packs_dir: Path
) -> None:
    marker = tmp_path / "pwned"
    for spec in [
        f"--upload-pack=touch {marker}",
        f"-u touch {marker}",
        f"--template={tmp_path}",
        f"ext::sh -c touch% {marker}",
        f"ssh://-oProxyCommand=touch%20{marker}/x",
        "git@-oProxyCommand=touch:x",
        f"{hello_repo.url}=--upload-pack=touch {marker}",
        f"{hello_repo.url}=-b",
        "fd::17",
    ]:
        resp = await install(api, spec)
        assert resp.status_code == 400, (spec, resp.text)
        assert "packs:" in resp.json()["faultstring"], (spec, resp.text)
    assert not marker.exists()
    assert not (packs_dir / "hello").exists()


async def test_a_hand_made_directory_is_replaced_only_with_force(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    manual = packs_dir / "hello"
    (manual / "actions").mkdir(parents=True)
    (manual / "pack.yaml").write_text(pack_yaml("hello", "0.0.1"))
    (manual / "actions" / "greet.yaml").write_text(shell_action("greet", "manual"))
    message = fault(await install(api, hello_repo.url), 409)
    assert "was not installed by `pack install`" in message and "force" in message
    assert (manual / "pack.yaml").read_text() == pack_yaml("hello", "0.0.1")

    await installed(api, hello_repo.url, force=True)
    assert await run(api, "hello.greet") == "v2"


async def test_another_copy_in_the_install_dir_is_a_conflict(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    # An earlier install under another directory name sorts first: it would win.
    shutil.copytree(packs_dir / "hello", packs_dir / "aaa_hello", symlinks=True)
    message = fault(await install(api, hello_repo.url), 409)
    assert f"pack 'hello' is already on the pack search path at {packs_dir / 'aaa_hello'}" in (
        message
    )
    assert "force" in message

    # force moves the other pack-installed copy away, so the new one is what runs.
    body = await installed(api, hello_repo.url, force=True)
    assert body["packs"][0]["version"] == "2.0.0"
    assert not (packs_dir / "aaa_hello").exists()
    assert (await pack_doc(api, "hello"))["path"] == str(packs_dir / "hello")
    assert await run(api, "hello.greet") == "v2"
    assert leftovers(packs_dir) == []


async def test_force_does_not_remove_a_hand_made_copy_elsewhere(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path, v1_installed: str
) -> None:
    manual = packs_dir / "aaa_manual"
    (manual / "actions").mkdir(parents=True)
    (manual / "pack.yaml").write_text(pack_yaml("hello", "0.0.1"))
    (manual / "actions" / "greet.yaml").write_text(shell_action("greet", "manual"))
    for extra in ({}, {"force": True}):
        message = fault(await install(api, hello_repo.url, **extra), 409)
        assert str(manual) in message
    assert "force does not remove it" in message
    assert (manual / "pack.yaml").read_text() == pack_yaml("hello", "0.0.1")
    assert json.loads((packs_dir / "hello" / INSTALL_RECORD).read_text())["commit"] == (
        v1_installed
    )


async def test_builtin_packs_cannot_be_replaced(api: httpx.AsyncClient, tmp_path: Path) -> None:
    repo = PackRepo(tmp_path / "repos" / "core", "core")
    repo.version("9.9.9", {"echo": "hijacked"})
    message = fault(await install(api, repo.url, force=True))
    assert "ships with Squall" in message
    assert (await api.get("/api/v1/packs/core")).json()["version"] != "9.9.9"


async def test_install_is_admin_only(
    runtime: Runtime, api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    await runtime.auth.add_user("olive", USER_PASSWORD, roles=["observer"])
    token = await api.post("/auth/v1/tokens", auth=("olive", USER_PASSWORD))
    headers = {"X-Auth-Token": token.json()["token"]}
    resp = await api.post(
        "/api/v1/packs/install", json={"packs": [hello_repo.url]}, headers=headers
    )
    assert resp.status_code == 403, resp.text
    assert not (packs_dir / "hello").exists()


# --- removal and recovery ---------------------------------------------------------------------


async def test_uninstall_deletes_an_installed_pack(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    await installed(api, hello_repo.url)
    resp = await api.post("/api/v1/packs/uninstall", json={"packs": ["hello"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["removed"][0]["files_deleted"] is True
    assert not (packs_dir / "hello").exists()


async def test_an_interrupted_swap_is_undone_at_start(
    runtime: Runtime,
    api: httpx.AsyncClient,
    hello_repo: PackRepo,
    packs_dir: Path,
    v1_installed: str,
) -> None:
    # What a crash between "move the new copy in" and "registered" leaves behind.
    staging = packs_dir / ".squall-install-crashed"
    staging.mkdir()
    target = packs_dir / "hello"
    target.rename(staging / "previous-hello")
    half = packs_dir / "hello"
    half.mkdir()
    (half / "pack.yaml").write_text(pack_yaml("hello", "6.6.6"))
    (half / INSTALL_RECORD).write_text(json.dumps({"install_id": "crashed"}))
    (staging / "journal.json").write_text(
        json.dumps(
            {
                "state": "swapping",
                "swaps": [
                    {
                        "ref": "hello",
                        "staged": str(staging / "0"),
                        "target": str(target),
                        "previous": str(staging / "previous-hello"),
                        "install_id": "crashed",
                    }
                ],
            }
        )
    )
    await runtime.packs.register_changed()
    await assert_still_v1(api, packs_dir, v1_installed)


# --- hostile repositories ---------------------------------------------------------------------


async def test_a_symlink_out_of_the_pack_is_refused_and_never_written_through(
    api: httpx.AsyncClient, hello_repo: PackRepo, tmp_path: Path, packs_dir: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (hello_repo.path / f"{INSTALL_RECORD}.tmp").symlink_to(victim)
    (hello_repo.path / "actions" / "secrets.txt").symlink_to("/etc/passwd")
    hello_repo.commit("links out of the pack")
    message = fault(await install(api, hello_repo.url))
    assert "symlinks pointing outside the pack" in message
    assert f"{INSTALL_RECORD}.tmp" in message and "actions/secrets.txt" in message
    assert victim.read_text() == "precious\n"
    assert not (packs_dir / "hello").exists()
    assert leftovers(packs_dir) == []


async def test_symlinks_inside_the_pack_are_fine(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    (hello_repo.path / "README.txt").write_text("read me\n")
    (hello_repo.path / "actions" / "README.txt").symlink_to("../README.txt")
    hello_repo.commit("a link inside the pack")
    await installed(api, hello_repo.url)
    assert (packs_dir / "hello" / "actions" / "README.txt").read_text() == "read me\n"


async def test_an_install_record_from_the_repository_is_replaced(
    api: httpx.AsyncClient, hello_repo: PackRepo, packs_dir: Path
) -> None:
    forged = {"install_id": "forged", "source": "https://trusted.example/x.git"}
    hello_repo.write(INSTALL_RECORD, json.dumps(forged)).commit("a forged install record")
    body = await installed(api, hello_repo.url)
    record = json.loads((packs_dir / "hello" / INSTALL_RECORD).read_text())
    assert record["source"] == hello_repo.url and record["install_id"] != "forged"
    assert body["packs"][0]["install"]["source"] == hello_repo.url


async def test_pack_file_views_show_no_git_internals_nor_files_outside(
    api: httpx.AsyncClient, hello_repo: PackRepo, tmp_path: Path, packs_dir: Path
) -> None:
    await installed(api, hello_repo.url)
    pack = packs_dir / "hello"
    outside = tmp_path / "outside.txt"
    outside.write_text("server secret\n")
    # A pack on the search path that was not installed from git may hold such links.
    (pack / "actions" / "leak.txt").symlink_to(outside)
    (pack / "leaked_dir").symlink_to(tmp_path)
    (pack / "gitconfig.txt").symlink_to(pack / ".git" / "config")
    (pack / "greet_link.yaml").symlink_to(pack / "actions" / "greet.yaml")

    for path in (".git/config", ".git/HEAD", "./.git/config", "actions/../.git/config"):
        resp = await api.get(f"/api/v1/packs/views/file/hello/{path}")
        assert resp.status_code == 404, (path, resp.text)
    assert (await api.get("/api/v1/packs/views/file/hello/gitconfig.txt")).status_code == 404
    assert (await api.get("/api/v1/packs/views/file/hello/pack.yaml")).status_code == 200

    resp = await api.get("/api/v1/packs/views/files/hello")
    assert resp.status_code == 200, resp.text
    files = {f["file_path"]: f["content"] for f in resp.json()}
    assert "server secret\n" not in files.values()
    assert not any(p.startswith((".git/", "leaked_dir")) for p in files), sorted(files)
    assert {"actions/leak.txt", "gitconfig.txt"}.isdisjoint(files)
    assert files["greet_link.yaml"] == files["actions/greet.yaml"]
    assert INSTALL_RECORD in files and "pack.yaml" in files
