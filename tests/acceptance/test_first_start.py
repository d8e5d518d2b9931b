"""First start of `squall up`: admin credentials, the CLI finding them, and the auth wall."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import SQUALL, SquallServer, clean_env, free_port

pytestmark = pytest.mark.slow

PROTECTED_GETS = [
    "/api/v1/actions",
    "/api/v1/actions/core.local",
    "/api/v1/actions/views/parameters/core.local",
    "/api/v1/executions",
    "/api/v1/executions/0123456789abcdef01234567",
    "/api/v1/keys",
    "/api/v1/keys/anything",
    "/api/v1/packs",
    "/api/v1/runnertypes",
]


@pytest.fixture(scope="module")
def generated(start_server: Callable[..., SquallServer]) -> Iterator[SquallServer]:
    """A server started without SQUALL_ADMIN_PASSWORD, with its home given by --home."""
    srv = start_server(admin_password=None, home_via_flag=True)
    yield srv
    srv.stop()


def test_generated_password_is_stored_0600_and_printed_once(generated: SquallServer) -> None:
    creds_file = generated.home / "credentials"
    assert creds_file.is_file(), f"no {creds_file}"
    mode = stat.S_IMODE(creds_file.stat().st_mode)
    assert mode == 0o600, f"credentials mode is {oct(mode)}, expected 0o600"
    creds = json.loads(creds_file.read_text())
    assert creds["user"] == "admin"
    password = creds["password"]
    assert len(password) >= 12, "a generated password should be long"
    first_output = generated.output()
    assert password in first_output, "the generated password must be printed on first start"

    # The password works against the token endpoint.
    resp = httpx.post(f"{generated.url}/auth/v1/tokens", auth=("admin", password), timeout=10)
    assert resp.status_code == 201, resp.text
    assert resp.json()["user"] == "admin"

    # A second start on the same home keeps the password and does not print it again.
    generated.stop()
    generated.start()
    assert json.loads(creds_file.read_text())["password"] == password
    assert password not in generated.output(), "the password is printed only on first start"
    generated.cli("whoami")


def test_whoami_uses_the_credentials_file(generated: SquallServer) -> None:
    result = generated.cli("whoami")
    assert "admin" in result.stdout
    doc = generated.cli("whoami", "--json").json()
    assert doc["username"] == "admin"


def test_admin_password_from_environment(server: SquallServer, tmp_path: Path) -> None:
    # The shared server is started with SQUALL_ADMIN_PASSWORD set.
    password = server.admin_password
    assert password
    creds_file = server.home / "credentials"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert json.loads(creds_file.read_text())["password"] == password
    assert password not in server.output(1), "a password given by the operator is not echoed"
    ok = httpx.post(f"{server.url}/auth/v1/tokens", auth=("admin", password), timeout=10)
    assert ok.status_code == 201, ok.text
    bad = httpx.post(f"{server.url}/auth/v1/tokens", auth=("admin", "wrong"), timeout=10)
    assert bad.status_code == 401
    assert "faultstring" in bad.json()

    # Elsewhere, without the credentials file: `squall login` caches a token that works.
    env = server.cli_env()
    env.update(SQUALL_HOME=str(tmp_path / "nohome"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    assert server.cli("whoami", check=False, env=env).code == 4
    server.cli("login", "admin", "-p", password, env=env)
    tokens = tmp_path / "xdg" / "squall" / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert password not in tokens.read_text()
    assert "admin" in server.cli("whoami", env=env).stdout


def test_login_with_wrong_password_fails(generated: SquallServer) -> None:
    result = generated.cli("login", "admin", "-p", "not-the-password", check=False)
    assert result.code == 4, result
    assert "password" in result.stderr.lower() or "401" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_probes_need_no_auth(generated: SquallServer) -> None:
    for path in ("/healthz", "/readyz"):
        resp = httpx.get(f"{generated.url}{path}", timeout=10)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"


@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_api_routes_require_a_token(generated: SquallServer, path: str) -> None:
    resp = httpx.get(f"{generated.url}{path}", timeout=10)
    assert resp.status_code == 401, f"GET {path}: {resp.status_code} {resp.text}"
    assert isinstance(resp.json().get("faultstring"), str), resp.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/executions", {"action": "core.local", "parameters": {"cmd": "id"}}),
        ("PUT", "/api/v1/keys/k", {"name": "k", "value": "v"}),
        ("DELETE", "/api/v1/keys/k", None),
        ("DELETE", "/api/v1/executions/0123456789abcdef01234567", None),
        ("POST", "/api/v1/packs/register", {}),
    ],
)
def test_api_writes_require_a_token(
    generated: SquallServer, method: str, path: str, body: dict[str, object] | None
) -> None:
    resp = httpx.request(method, f"{generated.url}{path}", json=body, timeout=10)
    assert resp.status_code == 401, f"{method} {path}: {resp.status_code} {resp.text}"
    assert isinstance(resp.json().get("faultstring"), str), resp.text


def test_a_bogus_token_is_rejected(generated: SquallServer) -> None:
    resp = httpx.get(
        f"{generated.url}/api/v1/actions", headers={"X-Auth-Token": "bogus"}, timeout=10
    )
    assert resp.status_code == 401
    assert "faultstring" in resp.json()


def test_a_token_opens_the_api(generated: SquallServer) -> None:
    with generated.api() as api:
        resp = api.get("/api/v1/actions", params={"pack": "core"})
        assert resp.status_code == 200, resp.text
        refs = {a["ref"] for a in resp.json()}
        assert "core.local" in refs


def test_metrics_endpoint_serves_prometheus_text(generated: SquallServer) -> None:
    # DESIGN.md (fixed interfaces): one port serves /healthz, /readyz and /metrics (Prometheus).
    resp = httpx.get(f"{generated.url}/metrics", timeout=10)
    assert resp.status_code == 200, f"/metrics: {resp.status_code} {resp.text[:200]}"
    assert "# TYPE" in resp.text


def _requested_by_runner(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("squall_executions_requested_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('runner="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def test_requested_metric_counts_workflow_tasks(generated: SquallServer) -> None:
    before = _requested_by_runner(generated.url)
    _, doc = generated.run_json("demo.health_check")
    assert doc["status"] == "succeeded", doc
    with generated.api() as api:
        children = api.get("/api/v1/executions", params={"parent": doc["id"]}).json()
    assert children, "demo.health_check runs tasks"
    after = _requested_by_runner(generated.url)
    delta = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    expected: dict[str, float] = {"orquesta": 1.0}
    for child in children:
        runner = child["runner"]["name"]
        expected[runner] = expected.get(runner, 0.0) + 1
    assert delta == expected


def test_second_server_on_the_same_home_is_refused(generated: SquallServer) -> None:
    result = subprocess.run(
        [str(SQUALL), "up", "--home", str(generated.home), "--bind", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert result.returncode == 3, result.stderr
    assert "another Squall process" in result.stderr
    assert generated.cli("whoami").code == 0, "the running server is unaffected"


def test_too_short_admin_password_is_refused(tmp_path: Path) -> None:
    env = clean_env()
    env["SQUALL_ADMIN_PASSWORD"] = "short"
    result = subprocess.run(
        [str(SQUALL), "up", "--home", str(tmp_path / "home"), "--bind", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 3, result.stderr
    assert "password" in result.stderr
    assert "Traceback" not in result.stderr
