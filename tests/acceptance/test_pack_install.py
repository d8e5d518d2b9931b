"""`squall pack install` against a real `squall up`: packs from local git repositories at a
tag, a branch and a commit, progress on stderr, a result table, failures that change nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.gitpacks import PackRepo

from .conftest import SquallServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(start_server: Callable[..., SquallServer]) -> Iterator[SquallServer]:
    """A server whose pack search path is an empty directory of its own."""
    srv = start_server(packs=[])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def repo(server: SquallServer) -> PackRepo:
    """Pack ``greeter``: tag v1.0.0, main at 2.0.0, branch ``dev``; inside the server's
    working directory, where the CLI runs, so ``./repos/greeter`` is a relative path."""
    repo = PackRepo(server.workdir / "repos" / "greeter", "greeter")
    repo.version("1.0.0", {"greet": "hello-v1"}, tag="v1.0.0")
    repo.version("2.0.0", {"greet": "hello-v2", "wave": "wave"})
    repo.branch("dev")
    repo.version("2.1.0-dev", {"greet": "hello-dev"})
    repo.switch("main")
    return repo


def greet(server: SquallServer) -> str:
    result, doc = server.run_json("greeter.greet")
    assert doc["status"] == "succeeded", result
    return str(doc["result"]["stdout"]).strip()


def test_help_explains_the_spec_forms(server: SquallServer) -> None:
    result = server.cli("pack", "install", "--help")
    assert "squall pack install" in result.stdout
    for text in ("URL[=VERSION]", "owner/repo", "git@host:owner/repo.git", "--force", "examples:"):
        assert text in result.stdout, text
    assert "install" in server.cli("pack", "--help").stdout.split()


def test_install_at_a_tag_then_a_branch_then_a_commit(server: SquallServer, repo: PackRepo) -> None:
    tagged = repo.git("rev-parse", "v1.0.0^{commit}")
    result = server.cli("pack", "install", f"{repo.url}=v1.0.0")
    assert f"cloning {repo.url} …" in result.stderr, result
    assert f"checking out tag v1.0.0 ({tagged[:12]})" in result.stderr, result
    assert "registering greeter …" in result.stderr, result
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["PACK", "VERSION", "SOURCE", "AT", "COMMIT", "RESULT"]
    assert row.split()[:2] == ["greeter", "1.0.0"], result
    assert "tag v1.0.0" in row and tagged[:12] in row and "installed (1 actions)" in row
    assert greet(server) == "hello-v1"

    # A relative path is resolved where the CLI runs.
    server.cli("pack", "install", "./repos/greeter=dev")
    assert greet(server) == "hello-dev"
    doc = server.cli("pack", "get", "greeter", "--json").json()
    assert doc["version"] == "2.1.0-dev"
    assert doc["install"]["commit"] == repo.git("rev-parse", "dev")
    assert doc["install"]["source"] == str(repo.path)
    assert "install:" in server.cli("pack", "get", "greeter").stdout

    head = repo.git("rev-parse", "main")
    body = server.cli("pack", "install", f"{repo.url}={head}", "--json").json()
    assert body["ok"] is True and body["packs"][0]["install"]["commit"] == head
    assert greet(server) == "hello-v2"
    listing = server.cli("action", "list", "--pack", "greeter").stdout
    assert "greeter.wave" in listing


def test_failures_exit_non_zero_and_keep_what_is_installed(
    server: SquallServer, repo: PackRepo
) -> None:
    server.cli("pack", "install", f"{repo.url}=v1.0.0")

    bad = server.cli("pack", "install", f"{repo.url}=v7", check=False)
    assert bad.code != 0
    assert '"v7" is not a valid version, hash, tag or branch' in bad.stderr, bad
    assert "Tags: v1.0.0" in bad.stderr

    unreachable = server.cli("pack", "install", "https://127.0.0.1:1/x/y.git", check=False)
    assert (
        unreachable.code != 0 and "cannot clone https://127.0.0.1:1/x/y.git" in unreachable.stderr
    )

    injected = server.cli("pack", "install", "--", "--upload-pack=touch pwned", check=False)
    assert injected.code != 0 and "cannot begin with '-'" in injected.stderr, injected
    assert not (server.workdir / "pwned").exists()

    failed_json = server.cli("pack", "install", f"{repo.url}=nope", "--json", check=False)
    assert failed_json.code != 0 and "not a valid version" in failed_json.json()["faultstring"]

    assert greet(server) == "hello-v1"
    assert server.cli("pack", "get", "greeter", "--json").json()["version"] == "1.0.0"


def test_the_packs_install_action_installs_for_rules_and_workflows(
    server: SquallServer, repo: PackRepo
) -> None:
    def install_history() -> list[dict[str, object]]:
        with server.api() as api:
            found: list[dict[str, object]] = api.get(
                "/api/v1/executions", params={"action": "packs.install"}
            ).json()
            return found

    before = install_history()
    result, doc = server.run_json("packs.install", f'packs=["{repo.url}=v1.0.0"]')
    assert doc["status"] == "succeeded", result
    # The execution is the record: its own install request does not add another.
    after = install_history()
    assert len(after) == len(before) + 1, after
    assert doc["result"]["output"]["packs_list"] == ["greeter"]
    assert greet(server) == "hello-v1"
    result, doc = server.run_json("packs.install", f'packs=["{repo.url}=nope"]')
    assert doc["status"] == "failed", result
    assert greet(server) == "hello-v1"
