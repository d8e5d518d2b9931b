"""`squall key set|get|list|delete`: scopes, secrets, TTL, and Python actions using it."""

from __future__ import annotations

import uuid

import pytest

from .conftest import SquallServer, wait_for

pytestmark = pytest.mark.slow


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def test_set_get_list_delete(server: SquallServer) -> None:
    name = unique("plain")
    server.cli("key", "set", name, "hello world")
    got = server.cli("key", "get", name)
    assert name in got.stdout and "hello world" in got.stdout
    doc = server.cli("key", "get", name, "--json").json()
    assert doc["name"] == name
    assert doc["value"] == "hello world"
    assert doc["secret"] is False

    listed = server.cli("key", "list")
    row = next((line for line in listed.stdout.splitlines() if line.startswith(name)), None)
    assert row is not None and "hello world" in row, listed
    names = [k["name"] for k in server.cli("key", "list", "--json").json()]
    assert name in names
    assert server.cli("key", "list", "--prefix", "plain_", "--json").json()

    server.cli("key", "set", name, "replaced")
    assert server.cli("key", "get", name, "--json").json()["value"] == "replaced"

    server.cli("key", "delete", name)
    missing = server.cli("key", "get", name, check=False)
    assert missing.code != 0
    assert "not found" in missing.stderr.lower(), missing
    names = [k["name"] for k in server.cli("key", "list", "--json").json()]
    assert name not in names
    again = server.cli("key", "delete", name, check=False)
    assert again.code != 0, "deleting a missing key is an error"


def test_encrypted_key(server: SquallServer) -> None:
    name = unique("secret")
    plaintext = f"pa55-{uuid.uuid4().hex}"
    server.cli("key", "set", name, plaintext, "--encrypt")

    listed = server.cli("key", "list")
    assert name in listed.stdout
    assert plaintext not in listed.stdout, "list must not show a secret's plaintext"
    doc = next(k for k in server.cli("key", "list", "--json").json() if k["name"] == name)
    assert doc["secret"] is True
    assert doc["value"] and doc["value"] != plaintext

    hidden = server.cli("key", "get", name, "--json").json()
    assert hidden["value"] != plaintext
    shown = server.cli("key", "get", name, "--decrypt")
    assert plaintext in shown.stdout
    assert server.cli("key", "get", name, "--decrypt", "--json").json()["value"] == plaintext

    # Nothing on disk holds the plaintext (database, WAL, logs).
    for path in server.home.rglob("*"):
        if path.is_file():
            assert plaintext.encode() not in path.read_bytes(), f"plaintext secret in {path}"


def test_ttl_expires_the_key(server: SquallServer) -> None:
    name = unique("ttl")
    doc = server.cli("key", "set", name, "short-lived", "--ttl", "1", "--json").json()
    assert doc.get("expire_timestamp"), doc
    wait_for(
        lambda: server.cli("key", "get", name, check=False).code != 0,
        timeout=10,
        interval=0.3,
        message=f"key {name} expired",
    )
    names = [k["name"] for k in server.cli("key", "list", "--json").json()]
    assert name not in names


def test_user_scope_is_separate_from_system(server: SquallServer) -> None:
    name = unique("scoped")
    server.cli("key", "set", name, "mine", "--scope", "user")
    doc = server.cli("key", "get", name, "--scope", "user", "--json").json()
    assert doc["value"] == "mine"
    assert doc["scope"] == "st2kv.user"
    assert doc["user"] == "admin"
    system = server.cli("key", "get", name, check=False)
    assert system.code != 0, "a user key is not visible in the system scope"

    server.cli("key", "set", name, "global")
    assert server.cli("key", "get", name, "--json").json()["value"] == "global"
    assert server.cli("key", "get", name, "--scope", "user", "--json").json()["value"] == "mine"
    user_keys = server.cli("key", "list", "--scope", "user", "--json").json()
    assert any(k["name"] == name and k["value"] == "mine" for k in user_keys)
    server.cli("key", "delete", name, "--scope", "user")
    assert server.cli("key", "get", name, "--scope", "user", check=False).code != 0
    assert server.cli("key", "get", name, "--json").json()["value"] == "global"


def test_bad_scope_is_rejected(server: SquallServer) -> None:
    result = server.cli("key", "get", "x", "--scope", "galaxy", check=False)
    assert result.code != 0
    assert "scope" in result.stderr
    with server.api() as api:
        resp = api.get("/api/v1/keys/x", params={"scope": "galaxy"})
    assert resp.status_code == 400, resp.text
    assert "scope" in resp.json()["faultstring"]


def test_python_action_reads_and_writes_the_datastore(server: SquallServer) -> None:
    who = unique("kv")
    # demo.greet keeps its counter in a pack-local key: "demo:greetings.<name>".
    key = f"demo:greetings.{who}"
    server.cli("key", "set", key, "41")
    _, doc = server.run_json("demo.greet", f"name={who}")
    assert doc["status"] == "succeeded", doc
    assert doc["result"]["result"]["count"] == 42
    assert server.cli("key", "get", key, "--json").json()["value"] == "42"


def test_parameter_value_renders_from_datastore(server: SquallServer) -> None:
    # As with `st2 run core.local cmd="echo {{ st2kv.system.k }}"`: values are rendered.
    name = unique("tpl")
    server.cli("key", "set", name, "from-the-datastore")
    result, doc = server.run_json("core.local", f"cmd=echo {{{{ st2kv.system.{name} }}}}")
    assert result.code == 0, result
    assert doc["result"]["stdout"] == "from-the-datastore"


def test_python_action_service_api(server: SquallServer) -> None:
    tag = uuid.uuid4().hex[:8]
    result, doc = server.run_json("acc_types.kv", f"tag={tag}")
    assert result.code == 0, result
    got = doc["result"]["result"]
    assert got["local"] == "p1"
    assert got["global"] == "g1"
    assert got["secret_raw"] != f"s3cret-{tag}", "without decrypt a secret stays encrypted"
    assert got["user"] == "u1"
    assert got["listed"] == [f"acc_types:plain_{tag}"]
    assert got["missing"] is None
    assert got["after_delete"] is None
    # What the action wrote is what the CLI sees.
    assert server.cli("key", "get", f"glob_{tag}", "--json").json()["value"] == "g1"
    assert server.cli("key", "get", f"acc_types:other_{tag}", "--json").json()["value"] == "p2"
    secret = server.cli("key", "get", f"sec_{tag}", "--decrypt", "--json").json()
    assert secret["value"] == f"s3cret-{tag}" and secret["secret"] is True
    user = server.cli("key", "get", f"usr_{tag}", "--scope", "user", "--json").json()
    assert user["value"] == "u1" and user["user"] == "admin"
    assert server.cli("key", "get", f"acc_types:plain_{tag}", check=False).code == 2


def test_python_action_of_admin_decrypts_system_secret(server: SquallServer) -> None:
    # A common StackStorm pattern: an action reads an encrypted API key with decrypt=True.
    # The execution below is started by the admin, who may decrypt any secret.
    tag = uuid.uuid4().hex[:8]
    _, doc = server.run_json("acc_types.kv", f"tag={tag}")
    assert doc["result"]["result"]["secret"] == f"s3cret-{tag}"


def test_encrypted_value_in_templates(server: SquallServer) -> None:
    name = unique("tplsecret")
    server.cli("key", "set", name, "open-sesame", "--encrypt")
    cmd = f"echo {{{{ st2kv.system.{name} | decrypt_kv }}}} {{{{ st2kv.system.{name} }}}}"
    _, doc = server.run_json("core.local", f"cmd={cmd}")
    plain, cipher = doc["result"]["stdout"].split()
    assert plain == "open-sesame"
    assert cipher != "open-sesame"


def test_key_names_are_not_reinterpreted_as_url_syntax(server: SquallServer) -> None:
    # `squall key get 'x%20y'` must not read the key 'x y'.
    base = unique("esc")
    server.cli("key", "set", f"{base} y", "another key")
    result = server.cli("key", "get", f"{base}%20y", check=False)
    assert result.code == 2, f"read the key '{base} y' instead: {result}"


@pytest.mark.parametrize("special", ["q?x", "h#x"])
def test_key_names_with_url_characters(server: SquallServer, special: str) -> None:
    name = f"{unique('url')}-{special}"
    result = server.cli("key", "set", name, "the-real-one", check=False)
    assert result.code == 0, result
    got = server.cli("key", "get", name, "--json", check=False)
    assert got.code == 0, got
    assert got.json()["name"] == name
    assert got.json()["value"] == "the-real-one"
    server.cli("key", "delete", name)
