"""Runner behaviour a user sees: shell arguments and env, templates, Python actions, HTTP."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer

pytestmark = pytest.mark.slow


# -- shell runners -----------------------------------------------------------------------------


def test_script_arguments_follow_stackstorm_serialization(server: SquallServer) -> None:
    result, doc = server.run_json(
        "acc_types.script_args",
        "first=hello world",
        "flag=true",
        "items=a,b,c",
        'obj={"k": 1}',
        "named=it's named",
        "number=7",
    )
    assert result.code == 0, result
    lines = doc["result"]["stdout"].splitlines()
    assert "[--named=it's named]" in lines, lines
    assert "[--number=7]" in lines, lines
    positional = [line[1:-1] for line in lines if not line.startswith("[--")]
    # position order; booleans 1/0, arrays comma-joined, objects as JSON, missing as "".
    assert len(positional) == 5, lines
    assert positional[:3] == ["hello world", "1", "a,b,c"], lines
    assert json.loads(positional[3]) == {"k": 1}, lines
    assert positional[4] == "", lines


def test_script_boolean_false_is_zero(server: SquallServer) -> None:
    _, doc = server.run_json("acc_types.script_args", "first=x", "flag=false")
    lines = doc["result"]["stdout"].splitlines()
    assert lines[:2] == ["[x]", "[0]"], lines


def test_action_environment_variables(server: SquallServer) -> None:
    cmd = (
        "echo $ST2_ACTION_PACK_NAME $ST2_ACTION_EXECUTION_ID; "
        'curl -s -o /dev/null -w "%{http_code}" '
        '-H "X-Auth-Token: $ST2_ACTION_AUTH_TOKEN" "$ST2_ACTION_API_URL/actions"'
    )
    result, doc = server.run_json("core.local", f"cmd={cmd}")
    assert result.code == 0, result
    first, status = doc["result"]["stdout"].splitlines()
    assert first == f"core {doc['id']}"
    assert status == "200", "ST2_ACTION_AUTH_TOKEN opens ST2_ACTION_API_URL"
    _, doc = server.run_json("acc_types.script_args", "first=x")
    assert "pack=acc_types" in doc["result"]["stderr"]


def test_env_and_cwd(server: SquallServer, tmp_path: Path) -> None:
    result, doc = server.run_json(
        "core.local", "cmd=echo $GREETING; pwd", 'env={"GREETING": "hi there"}', f"cwd={tmp_path}"
    )
    assert result.code == 0, result
    assert doc["result"]["stdout"].splitlines() == ["hi there", str(tmp_path)]
    _, doc = server.run_json("core.local", "cmd=echo $A-$B", "env=A=1,B=2")
    assert doc["result"]["stdout"] == "1-2"


def test_stdout_and_stderr_are_separate_and_one_trailing_newline_stripped(
    server: SquallServer,
) -> None:
    # StackStorm strips exactly one trailing newline (strip_shell_chars).
    _, doc = server.run_json("core.local", "cmd=printf 'out\\n\\n'; echo err >&2")
    assert doc["result"]["stdout"] == "out\n"
    assert doc["result"]["stderr"] == "err"


def test_large_output_is_kept_whole(server: SquallServer) -> None:
    result, doc = server.run_json("core.local", "cmd=seq 1 200000")
    assert result.code == 0
    lines = doc["result"]["stdout"].splitlines()
    assert len(lines) == 200000
    assert lines[-1] == "200000"


def test_unicode_output(server: SquallServer) -> None:
    _, doc = server.run_json("core.local", "cmd=echo 'grüße ☃ 日本'")
    assert doc["result"]["stdout"] == "grüße ☃ 日本"


ATTACKS = "\"; touch {m}1; echo \" '; touch {m}2; echo ' $(touch {m}3) `touch {m}4` ; touch {m}5"


@pytest.mark.parametrize("action", ["say_double", "say_single", "say_unquoted"])
def test_no_injection_through_templated_commands(
    server: SquallServer, tmp_path: Path, action: str
) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}-"
    message = ATTACKS.format(m=marker)
    result, doc = server.run_json(f"acc_types.{action}", f"msg={message}")
    created = sorted(p.name for p in tmp_path.iterdir())
    assert not created, f"shell injection through {action}: created {created}"
    assert result.code == 0, result
    assert doc["result"]["stdout"] == f"said: {message}"


def test_no_injection_through_datastore_values(server: SquallServer, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    key = f"evil_{uuid.uuid4().hex[:8]}"
    server.cli("key", "set", key, f"$(touch {marker})")
    result, doc = server.run_json("core.local", f"cmd=echo {{{{ st2kv.system.{key} }}}}")
    assert not marker.exists(), "shell injection through a datastore value"
    assert doc["result"]["stdout"] == f"$(touch {marker})", result


def test_jinja_is_sandboxed(server: SquallServer) -> None:
    result = server.cli(
        "run", "core.local", "cmd=echo {{ ''.__class__.__mro__[1].__subclasses__() }}", check=False
    )
    assert result.code != 0
    assert "unsafe" in result.stderr or "sandbox" in result.stderr, result
    assert "cmd" in result.stderr


# -- parameter defaults rendered with Jinja ----------------------------------------------------


def test_defaults_render_from_parameters_and_datastore(server: SquallServer) -> None:
    server.cli("key", "set", "acc_who", "alice")
    result, doc = server.run_json("acc_types.render")
    assert result.code == 0, result
    got = doc["result"]["result"]
    assert got["message"]["value"] == "hi, alice!"
    assert got["total"] == {"value": 5, "type": "int"}, "rendered defaults are cast"
    _, doc = server.run_json("acc_types.render", "greeting=hey")
    assert doc["result"]["result"]["message"]["value"] == "hey, alice!"


# -- Python actions ----------------------------------------------------------------------------


def test_python_action_returning_false_tuple_fails(server: SquallServer) -> None:
    result, doc = server.run_json("acc_types.outcomes", "mode=tuple_false")
    assert result.code != 0, result
    assert doc["status"] == "failed"
    assert doc["result"]["result"] == {"why": "told to fail"}
    _, doc = server.run_json("acc_types.outcomes", "mode=tuple_true")
    assert doc["status"] == "succeeded"
    assert doc["result"]["result"] == {"fine": 1}


def test_python_action_exception_fails_with_traceback(server: SquallServer) -> None:
    result, doc = server.run_json("acc_types.outcomes", "mode=raise")
    assert result.code != 0
    assert doc["status"] == "failed"
    text = json.dumps(doc["result"])
    assert "Traceback" in text and "kaboom from the action" in text, doc["result"]
    # The worker survives for the next run.
    _, doc = server.run_json("acc_types.outcomes")
    assert doc["status"] == "succeeded"
    assert doc["result"]["result"]["mode"] == "ok"
    assert "printed to stdout" in doc["result"]["stdout"]


def _finished(server: SquallServer, execution_id: str) -> dict[str, Any]:
    server.wait_status(execution_id, "succeeded", "failed", "timeout", "abandoned")
    return server.execution(execution_id)


def test_python_actions_run_in_warm_workers(server: SquallServer) -> None:
    pids = []
    for _ in range(6):
        doc = _finished(server, server.submit("acc_types.outcomes", mode="ok"))
        assert doc["status"] == "succeeded", doc
        pids.append(doc["result"]["result"]["pid"])
    assert len(set(pids)) < len(pids), f"a new interpreter for every action: {pids}"


def test_python_worker_crash_fails_the_execution_only(server: SquallServer) -> None:
    doc = _finished(server, server.submit("acc_types.outcomes", mode="crash"))
    assert doc["status"] == "failed", doc["status"]
    assert doc["end_timestamp"]
    # The pool replaces the dead worker.
    doc = _finished(server, server.submit("acc_types.outcomes", mode="ok"))
    assert doc["status"] == "succeeded", doc


def test_python_action_sees_pack_config(server: SquallServer) -> None:
    _, doc = server.run_json("acc_types.config_echo")
    assert doc["result"]["result"] == {"region": "eu-west", "retries": 3}, "schema defaults"
    configs = server.home / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "acc_types.yaml").write_text("---\nregion: us-east\n")
    try:
        server.cli("pack", "register", "acc_types")
        _, doc = server.run_json("acc_types.config_echo")
        assert doc["result"]["result"] == {"region": "us-east", "retries": 3}
    finally:
        (configs / "acc_types.yaml").unlink()
        server.cli("pack", "register", "acc_types", check=False)


def test_invalid_pack_config_is_reported(server: SquallServer) -> None:
    configs = server.home / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "acc_types.yaml").write_text("---\nregion: us-east\nretries: many\n")
    try:
        result = server.cli("pack", "register", "acc_types", check=False)
        assert result.code != 0, result
        out = result.stdout + result.stderr
        assert "retries" in out and "acc_types.yaml" in out, out
    finally:
        (configs / "acc_types.yaml").unlink()
        server.cli("pack", "register", "acc_types", check=False)


def test_secret_parameters_are_masked(server: SquallServer) -> None:
    secret = f"hunter2-{uuid.uuid4().hex}"
    result = server.cli("run", "acc_types.secret_param", f"password={secret}")
    assert secret not in result.stdout + result.stderr, "secret shown by `squall run`"
    assert "length: " + str(len(secret)) in result.stdout
    execution_id = server.cli("execution", "list", "-n", "1", "--json").json()[0]["id"]
    shown = server.cli("execution", "get", execution_id, "--json")
    assert secret not in shown.stdout, "secret in `execution get --json`"
    assert shown.json()["parameters"]["password"] != secret
    listed = server.cli("execution", "list", "-n", "5", "--json")
    assert secret not in listed.stdout
    with server.api() as api:
        assert secret not in api.get(f"/api/v1/executions/{execution_id}").text
    assert secret not in server.all_output(), "secret in the server log"
    # Re-running keeps the real value (not the mask).
    again = server.cli("execution", "re-run", execution_id, "--json").json()
    assert again["result"]["result"]["length"] == len(secret)


# -- HTTP --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "x_test": self.headers.get("X-Test"),
            "auth": self.headers.get("Authorization"),
        }
        data = json.dumps(payload).encode()
        status = 404 if self.path.startswith("/missing") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _reply
    do_POST = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_http_get_json(server: SquallServer, http_url: str) -> None:
    result, doc = server.run_json(
        "core.http", f"url={http_url}/things", "params=a=1", 'headers={"X-Test": "yes"}'
    )
    assert result.code == 0, result
    res = doc["result"]
    assert res["status_code"] == 200
    # StackStorm's shape: body is the decoded JSON document and parsed says so.
    assert res["parsed"] is True
    assert res["body"]["path"] == "/things?a=1"
    assert res["body"]["x_test"] == "yes"
    assert {k.lower() for k in res["headers"]} >= {"content-type"}


def test_http_post_body_and_auth(server: SquallServer, http_url: str) -> None:
    result, doc = server.run_json(
        "core.http",
        f"url={http_url}/post",
        "method=POST",
        "body=hello body",
        "username=u",
        "password=p",
    )
    assert result.code == 0, result
    parsed = doc["result"]["body"]
    assert parsed["method"] == "POST"
    assert parsed["body"] == "hello body"
    assert parsed["auth"] == "Basic dTpw"
    assert doc["parameters"]["password"] != "p", "the password parameter is secret"


def test_http_error_status_fails(server: SquallServer, http_url: str) -> None:
    result, doc = server.run_json("core.http", f"url={http_url}/missing")
    assert result.code != 0, result
    assert doc["status"] == "failed"
    assert doc["result"]["status_code"] == 404


def test_http_connection_refused_fails_clearly(server: SquallServer) -> None:
    result, doc = server.run_json("core.http", "url=http://127.0.0.1:9/nothing")
    assert result.code != 0
    assert doc["status"] == "failed"
    assert "Traceback" not in result.stdout


def test_http_host_deny_and_allow_lists(server: SquallServer, http_url: str) -> None:
    result, doc = server.run_json("core.http", f"url={http_url}/x", "url_hosts_blacklist=127.0.0.1")
    assert result.code == 1 and doc["status"] == "failed", result
    assert "url_hosts_blacklist" in doc["result"]["error"]
    result, doc = server.run_json(
        "core.http", f"url={http_url}/x", "url_hosts_whitelist=example.com"
    )
    assert result.code == 1 and doc["status"] == "failed", result
    _, doc = server.run_json("core.http", f"url={http_url}/x", "url_hosts_whitelist=127.0.0.1")
    assert doc["status"] == "succeeded"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def https_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert_file, key_file = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_https_certificates_are_verified_by_default(server: SquallServer, https_url: str) -> None:
    result, doc = server.run_json("core.http", f"url={https_url}/tls")
    assert result.code == 1, result
    assert doc["status"] == "failed"
    assert "certificate" in json.dumps(doc["result"]).lower(), doc["result"]
    result, doc = server.run_json("core.http", f"url={https_url}/tls", "verify_ssl_cert=false")
    assert result.code == 0, result
    assert doc["result"]["body"]["path"] == "/tls"


REFERENCE_CORE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "st2-core-pack"


@pytest.mark.skipif(
    not REFERENCE_CORE.is_dir(), reason=f"no StackStorm reference at {REFERENCE_CORE}"
)
def test_core_actions_match_stackstorm(server: SquallServer) -> None:
    import yaml

    problems = []
    with server.api() as api:
        for path in sorted((REFERENCE_CORE / "actions").glob("*.yaml")):
            ref = yaml.safe_load(path.read_text())
            if ref["runner_type"].startswith("winrm"):
                continue  # may be left out (issue 2)
            resp = api.get(f"/api/v1/actions/core.{ref['name']}")
            if resp.status_code != 200:
                problems.append(f"core.{ref['name']}: HTTP {resp.status_code}")
                continue
            doc = resp.json()
            if doc["runner_type"] != ref["runner_type"]:
                problems.append(f"core.{ref['name']}: runner {doc['runner_type']}")
            for param, spec in (ref.get("parameters") or {}).items():
                mine = doc["parameters"].get(param)
                if mine is None:
                    problems.append(f"core.{ref['name']}.{param}: missing")
                    continue
                for field in ("type", "default", "required", "immutable", "enum", "secret"):
                    if spec.get(field) != mine.get(field):
                        problems.append(
                            f"core.{ref['name']}.{param}.{field}: "
                            f"{mine.get(field)!r} != StackStorm's {spec.get(field)!r}"
                        )
    assert not problems, "\n".join(problems)
