"""The REST API as StackStorm's contract (st2-openapi.yaml) describes it, over HTTP against
``squall up``: shapes, status codes, filters, headers and every class of bad input."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.st2cli.conftest import Server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def api(squall: Server) -> httpx.Client:
    with squall.api() as client:
        yield client


def _fault(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"faultstring"}, body
    return str(body["faultstring"])


def _run(api: httpx.Client, squall: Server, ref: str, **params: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/executions", json={"action": ref, "parameters": params})
    assert resp.status_code == 201, resp.text
    execution_id = resp.json()["id"]
    squall.wait_status(execution_id, "succeeded", "failed")
    return squall.execution(execution_id)


# --- root, user, document -----------------------------------------------------------------


def test_root_user_and_openapi_document(api: httpx.Client) -> None:
    for path in ("/api/v1/", "/api/v1"):
        root = api.get(path)
        assert root.status_code == 200
        assert set(root.json()) >= {"version", "docs_url"}
    user = api.get("/api/v1/user").json()
    assert user["username"] == "admin" and user["rbac"]["is_admin"] is True

    doc = api.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/api/v1/executions",
        "/api/v1/executions/{execution_id}/re_run",
        "/api/v1/actionalias/match",
        "/api/v1/aliasexecution",
        "/api/v1/configs/{pack_ref}",
        "/api/v1/policytypes",
        "/api/v1/sensortypes",
        "/api/v1/traces",
        "/api/v1/timers",
        "/api/v1/packs/index/search",
        "/api/v1/actions/{ref_or_id}/clone",
    ):
        assert path in doc["paths"], path


def test_no_credentials_is_401_with_a_faultstring(squall: Server) -> None:
    resp = httpx.get(f"{squall.url}/api/v1/actions", timeout=10)
    assert "authentication" in _fault(resp, 401)


# --- bad input: one test per class ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/executions/000000000000000000000000",
        "/api/v1/actions/core.nope",
        "/api/v1/rules/st2cli.nope",
        "/api/v1/actionalias/st2cli.nope",
        "/api/v1/policies/st2cli.nope",
        "/api/v1/policytypes/action.nope",
        "/api/v1/sensortypes/st2cli.nope",
        "/api/v1/traces/nope",
        "/api/v1/timers/nope",
        "/api/v1/configs/nope",
        "/api/v1/config_schemas/nope",
        "/api/v1/triggerinstances/000000000000000000000000",
        "/api/v1/ruleenforcements/000000000000000000000000",
        "/api/v1/runnertypes/nope",
        "/api/v1/packs/nope",
        "/api/v1/packs/views/files/nope",
        "/api/v1/inquiries/000000000000000000000000",
        "/api/v1/keys/nope-not-there",
    ],
)
def test_unknown_ids_are_404(api: httpx.Client, path: str) -> None:
    assert "not found" in _fault(api.get(path), 404).lower()


def test_bodies_are_validated_with_the_field_path(api: httpx.Client) -> None:
    bad = api.post("/api/v1/executions", json={"action": "core.local", "delay": -5})
    message = _fault(bad, 400)
    assert "body.delay" in message and "greater than or equal to 0" in message

    wrong_type = api.put("/api/v1/keys/k1", json={"value": "v", "ttl": "soon"})
    assert "body.ttl" in _fault(wrong_type, 400)

    missing = api.post("/api/v1/actionalias/match", json={})
    assert "body.command" in _fault(missing, 400)

    not_json = api.post(
        "/api/v1/rules", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "JSON" in _fault(not_json, 400)

    bad_param = api.post(
        "/api/v1/executions", json={"action": "core.local", "parameters": {"cmd": 5}}
    )
    assert "cmd" in _fault(bad_param, 400)


def test_unknown_fields_are_reported(api: httpx.Client) -> None:
    resp = api.post(
        "/api/v1/executions",
        json={"action": "core.local", "parameters": {"cmd": "true"}, "actoin": "typo"},
    )
    assert "body.actoin: Extra inputs are not permitted" in _fault(resp, 400)
    key = api.put("/api/v1/keys/k2", json={"value": "v", "scoep": "user"})
    assert "body.scoep" in _fault(key, 400)
    rule = api.post(
        "/api/v1/rules",
        json={
            "name": "r",
            "pack": "st2cli",
            "trigger": {"type": "core.st2.webhook"},
            "action": {"ref": "core.noop"},
            "criterea": {},
        },
    )
    assert "criterea" in _fault(rule, 400)


def test_what_the_st2_cli_sends_is_accepted(api: httpx.Client) -> None:
    """The st2 CLI sends ``user: null`` on runs and ``name/scope/user: null`` on keys."""
    run = api.post(
        "/api/v1/executions",
        json={"action": "core.noop", "parameters": {}, "user": None},
    )
    assert run.status_code == 201, run.text
    key = api.put(
        "/api/v1/keys/cli-shaped",
        json={"name": "cli-shaped", "scope": "system", "user": None, "value": "v", "ttl": 60},
    )
    assert key.status_code == 200, key.text
    rerun = api.post(
        f"/api/v1/executions/{run.json()['id']}/re_run",
        json={"parameters": {}, "tasks": [], "reset": [], "delay": 0},
    )
    assert rerun.status_code == 201, rerun.text


def test_oversized_bodies_are_413(api: httpx.Client) -> None:
    huge = b'{"action": "core.noop", "parameters": {"x": "' + b"a" * (12 * 1024 * 1024) + b'"}}'
    resp = api.post(
        "/api/v1/executions", content=huge, headers={"content-type": "application/json"}
    )
    assert "too large" in _fault(resp, 413)


def test_paging_parameters_are_bounded(api: httpx.Client) -> None:
    assert "offset" in _fault(api.get("/api/v1/executions", params={"offset": 2**40}), 400)
    assert "limit" in _fault(api.get("/api/v1/executions", params={"limit": 0}), 400)


# --- executions -----------------------------------------------------------------------------


def test_execution_list_filters_headers_and_projection(api: httpx.Client, squall: Server) -> None:
    marker = uuid.uuid4().hex[:10]
    done = _run(api, squall, "core.local", cmd=f"echo {marker}")
    resp = api.get(
        "/api/v1/executions",
        params={
            "action": "core.local",
            "status": "succeeded",
            "parent": "null",
            "limit": 2,
            "include_attributes": "id,status,action.ref",
        },
    )
    assert resp.status_code == 200
    assert resp.headers["X-Limit"] == "2"
    assert int(resp.headers["X-Total-Count"]) >= 1
    first = resp.json()[0]
    assert set(first) == {"id", "status", "action"} and first["action"] == {"ref": "core.local"}

    by_id = api.get("/api/v1/executions", params={"id": done["id"]}).json()
    assert [d["id"] for d in by_id] == [done["id"]]
    excluded = api.get(f"/api/v1/executions/{done['id']}", params={"exclude_attributes": "result"})
    assert "result" not in excluded.json() and excluded.json()["status"] == "succeeded"

    status = api.get(f"/api/v1/executions/{done['id']}/attribute/status")
    assert status.json() == "succeeded"
    result = api.get(f"/api/v1/executions/{done['id']}/result").json()
    assert result["stdout"].strip() == marker
    output = api.get(f"/api/v1/executions/{done['id']}/output")
    assert output.text.strip() == marker

    filters = api.get("/api/v1/executions/views/filters").json()
    assert "core.local" in filters["action"] and "succeeded" in filters["status"]


def test_execution_context_header_status_put_and_delete(api: httpx.Client, squall: Server) -> None:
    created = api.post(
        "/api/v1/executions",
        json={"action": "core.local", "parameters": {"cmd": "sleep 30"}},
        headers={"st2-context": '{"source": "contract-test"}'},
    )
    assert created.status_code == 201
    doc = created.json()
    assert doc["status"] == "requested" or doc["status"] in ("scheduled", "running")
    assert doc["context"]["source"] == "contract-test"
    bad = api.post(
        "/api/v1/executions",
        json={"action": "core.noop"},
        headers={"st2-context": "not json"},
    )
    assert "st2-context" in _fault(bad, 400)

    squall.wait_status(doc["id"], "running")
    paused = api.put(f"/api/v1/executions/{doc['id']}", json={"status": "exploded"})
    assert "exploded" in _fault(paused, 400)
    canceled = api.put(f"/api/v1/executions/{doc['id']}", json={"status": "canceling"})
    assert canceled.status_code == 200
    assert squall.wait_status(doc["id"], "canceled") == "canceled"
    again = api.delete(f"/api/v1/executions/{doc['id']}")
    assert "already canceled" in _fault(again, 409)


def test_rule_triggered_executions_are_found_by_rule_and_trigger(
    api: httpx.Client, squall: Server
) -> None:
    marker = uuid.uuid4().hex[:10]
    assert api.post("/api/v1/webhooks/st2cli", json={"msg": marker}).status_code == 202

    def enforced() -> list[dict[str, Any]]:
        docs = api.get("/api/v1/executions", params={"rule": "st2cli.on_hook", "limit": 100})
        return [d for d in docs.json() if marker in str(d["parameters"])]

    found = wait_for(enforced, message="the rule's execution")[0]
    assert found["rule"]["ref"] == "st2cli.on_hook"
    instance_id = found["trigger_instance"]["id"]
    by_instance = api.get("/api/v1/executions", params={"trigger_instance": instance_id}).json()
    assert [d["id"] for d in by_instance] == [found["id"]]
    by_type = api.get(
        "/api/v1/executions", params={"trigger_type": "core.st2.webhook", "limit": 100}
    ).json()
    assert found["id"] in {d["id"] for d in by_type}
    enforcement = api.get("/api/v1/ruleenforcements", params={"execution": found["id"]}).json()
    assert enforcement[0]["trigger_instance_id"] == instance_id


# --- aliases --------------------------------------------------------------------------------


def test_alias_match_help_and_execution(api: httpx.Client, squall: Server) -> None:
    match = api.post("/api/v1/actionalias/match", json={"command": "say hi there"}).json()
    assert match["actionalias"]["ref"] == "st2cli.say"
    assert match["representation"] == "say {{ message }}"
    nothing = api.post("/api/v1/actionalias/match", json={"command": "dance"})
    assert "matched no action alias" in _fault(nothing, 400)

    helps = api.get("/api/v1/actionalias/help", params={"pack": "st2cli"}).json()
    assert {h["display"] for h in helps["helpstrings"]} == {"say {{ message }}", "shout [message]"}
    assert helps["available"] == 2

    ran = api.post(
        "/api/v1/aliasexecution",
        json={
            "name": "say",
            "format": "say {{ message }}",
            "command": 'say "hello world" cwd=/tmp',
            "user": "chatuser",
            "source_channel": "ops",
        },
    )
    assert ran.status_code == 201, ran.text
    body = ran.json()
    assert body["message"] == "Saying hello world"
    assert body["execution"]["parameters"] == {"message": "hello world", "cwd": "/tmp"}
    assert body["execution"]["context"]["api_user"] == "chatuser"
    assert body["execution"]["context"]["user"] == "admin"  # chat users are recorded, not trusted

    shout = api.post(
        "/api/v1/aliasexecution/match_and_execute",
        json={"command": "shout", "user": "chatuser", "source_channel": "ops"},
    )
    assert shout.status_code == 201, shout.text
    run = shout.json()["results"][0]["execution"]
    assert run["parameters"] == {"message": "hey"}
    assert squall.wait_status(run["id"], "succeeded") == "succeeded"


# --- configs, policies, sensors, timers, traces, runner types -------------------------------


def test_pack_config_read_mask_and_validated_update(api: httpx.Client) -> None:
    schema = api.get("/api/v1/config_schemas/st2cli").json()
    assert schema["attributes"]["greeting"]["default"] == "hello"

    ok = api.put("/api/v1/configs/st2cli", json={"greeting": "hi", "api_token": "s3cret"})
    assert ok.status_code == 200, ok.text
    shown = api.get("/api/v1/configs/st2cli").json()
    assert shown["values"]["greeting"] == "hi"
    assert shown["values"]["api_token"] != "s3cret"
    revealed = api.get("/api/v1/configs/st2cli", params={"show_secrets": True}).json()
    assert revealed["values"]["api_token"] == "s3cret"

    bad = api.put("/api/v1/configs/st2cli", json={"greeting": 42})
    assert "greeting" in _fault(bad, 400)
    # Nothing half-written: the previous config is still in force.
    assert api.get("/api/v1/configs/st2cli").json()["values"]["greeting"] == "hi"


def test_policies_policy_types_timers_traces_runner_types(api: httpx.Client) -> None:
    types = {t["ref"] for t in api.get("/api/v1/policytypes").json()}
    assert {"action.concurrency", "action.retry"} <= types
    policies = api.get("/api/v1/policies", params={"resource_ref": "st2cli.approve"}).json()
    assert [p["ref"] for p in policies] == ["st2cli.limit_approve"]
    assert api.get("/api/v1/policies/st2cli.limit_approve").json()["policy_type"] == (
        "action.concurrency"
    )

    timers = api.get("/api/v1/timers", params={"timer_type": "interval"}).json()
    assert any(t["type"] == "core.st2.IntervalTimer" for t in timers)
    assert "timer_type" in _fault(api.get("/api/v1/timers", params={"timer_type": "x"}), 400)

    runners = api.get("/api/v1/runnertypes", params={"name": "local-shell-cmd"}).json()
    assert [r["id"] for r in runners] == ["local-shell-cmd"]
    assert api.get("/api/v1/sensortypes").status_code == 200


def test_traces_follow_a_tagged_webhook(api: httpx.Client) -> None:
    tag = f"trace-{uuid.uuid4().hex[:8]}"
    resp = api.post(
        "/api/v1/webhooks/st2cli", json={"msg": "traced"}, headers={"St2-Trace-Tag": tag}
    )
    assert resp.status_code == 202

    def complete() -> dict[str, Any] | None:
        got = api.get(f"/api/v1/traces/{tag}")
        doc: dict[str, Any] = got.json()
        return doc if got.status_code == 200 and doc["action_executions"] else None

    trace = wait_for(complete, message="the trace's execution")
    assert trace["trace_tag"] == tag
    assert len(trace["trigger_instances"]) == 1
    assert trace["rules"][0]["ref"] == "st2cli.on_hook"
    listed = api.get("/api/v1/traces", params={"trace_tag": tag}).json()
    assert [t["id"] for t in listed] == [tag]


# --- packs and actions ----------------------------------------------------------------------


def test_pack_index_search_and_files(api: httpx.Client) -> None:
    index = api.get("/api/v1/packs/index").json()
    assert {"core", "st2cli"} <= set(index["index"])
    found = api.post("/api/v1/packs/index/search", json={"query": "fixture"}).json()
    assert [p["ref"] for p in found] == ["st2cli"]
    assert api.post("/api/v1/packs/index/search", json={"pack": "nope"}).json() is None

    files = {f["file_path"] for f in api.get("/api/v1/packs/views/files/st2cli").json()}
    assert {"pack.yaml", "actions/approve.yaml", "aliases/say.yaml"} <= files
    one = api.get("/api/v1/packs/views/file/st2cli/pack.yaml")
    assert "Fixture pack" in one.text
    escape = api.get("/api/v1/packs/views/file/st2cli/..%2F..%2F..%2Fetc%2Fpasswd")
    assert escape.status_code in (400, 404)


def test_action_create_update_clone_delete(api: httpx.Client, squall: Server) -> None:
    name = f"made_{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "pack": "st2cli",
        "runner_type": "local-shell-script",
        "entry_point": f"{name}.sh",
        "parameters": {"who": {"type": "string", "default": "world", "position": 0}},
        "data_files": [{"file_path": f"{name}.sh", "content": "#!/bin/sh\necho made $1\n"}],
    }
    created = api.post("/api/v1/actions", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["ref"] == f"st2cli.{name}"
    assert "already exists" in _fault(api.post("/api/v1/actions", json=body), 409)
    assert _run(api, squall, f"st2cli.{name}", who="api")["result"]["stdout"].strip() == "made api"

    updated = api.put(
        f"/api/v1/actions/st2cli.{name}", json={**body, "description": "now described"}
    )
    assert updated.json()["description"] == "now described"
    params = api.get(f"/api/v1/actions/views/parameters/st2cli.{name}").json()["parameters"]
    assert "who" in params
    source = api.get(f"/api/v1/actions/views/entry_point/st2cli.{name}").text
    assert "echo made" in source

    clone = api.post(
        f"/api/v1/actions/st2cli.{name}/clone",
        json={"dest_pack": "st2cli", "dest_action": f"{name}_copy"},
    )
    assert clone.status_code == 201, clone.text

    # A change that does not register is rolled back: the action stays as it was.
    broken = api.put(f"/api/v1/actions/st2cli.{name}", json={**body, "runner_type": "nope"})
    assert "nope" in _fault(broken, 400)
    assert api.get(f"/api/v1/actions/st2cli.{name}").json()["runner_type"] == ("local-shell-script")
    readonly = api.delete("/api/v1/actions/core.local")
    assert "read-only" in _fault(readonly, 400)

    assert api.delete(f"/api/v1/actions/st2cli.{name}_copy").status_code == 204
    assert api.delete(f"/api/v1/actions/st2cli.{name}").status_code == 204
    assert api.get(f"/api/v1/actions/st2cli.{name}").status_code == 404


def test_enforcement_views_and_one_webhook(api: httpx.Client) -> None:
    marker = uuid.uuid4().hex[:10]
    assert api.post("/api/v1/webhooks/st2cli", json={"msg": marker}).status_code == 202

    def joined() -> list[dict[str, Any]]:
        docs = api.get("/api/v1/ruleenforcements/views", params={"rule": "st2cli.on_hook"})
        return [d for d in docs.json() if marker in str(d.get("trigger_instance", {}))]

    view = wait_for(joined, message="the enforcement view")[0]
    assert view["execution"]["action"]["ref"] == "core.echo"
    one = api.get(f"/api/v1/ruleenforcements/views/{view['id']}").json()
    assert one["trigger_instance"]["payload"]["body"]["msg"] == marker

    hook = api.get("/api/v1/webhooks/st2cli").json()
    assert hook["type"] == "core.st2.webhook" and hook["parameters"] == {"url": "st2cli"}
    assert "not found" in _fault(api.get("/api/v1/webhooks/nobody-listens"), 404)


def test_pack_install_from_a_local_directory(
    api: httpx.Client, squall: Server, tmp_path: Path
) -> None:
    ref = f"local_{uuid.uuid4().hex[:6]}"
    source = tmp_path / ref
    (source / "actions").mkdir(parents=True)
    (source / "pack.yaml").write_text(
        f"---\nref: {ref}\nname: {ref}\ndescription: installed from a directory\nversion: 0.1.0\n"
        "author: tests\n"
    )
    (source / "actions" / "hi.yaml").write_text(
        "---\nname: hi\nrunner_type: local-shell-cmd\nparameters:\n"
        "  cmd:\n    type: string\n    default: echo installed\n"
    )
    installed = api.post("/api/v1/packs/install", json={"packs": [f"file://{source}"]})
    assert installed.status_code == 200, installed.text
    assert installed.json()["ok"] is True
    assert api.get(f"/api/v1/packs/{ref}").json()["description"] == "installed from a directory"
    assert _run(api, squall, f"{ref}.hi")["result"]["stdout"].strip() == "installed"

    # Installed by `pack install` (it has an install record): installing again replaces it.
    (source / "pack.yaml").write_text(
        (source / "pack.yaml").read_text().replace("from a directory", "again")
    )
    again = api.post("/api/v1/packs/install", json={"packs": [str(source)]})
    assert again.status_code == 200, again.text
    assert again.json()["packs"][0]["install"]["kind"] == "directory"
    assert api.get(f"/api/v1/packs/{ref}").json()["description"] == "installed again"
    remote = api.post("/api/v1/packs/install", json={"packs": ["some_exchange_pack"]})
    assert "not supported" in _fault(remote, 400)

    removed = api.post("/api/v1/packs/uninstall", json={"packs": [ref]})
    assert removed.status_code == 200, removed.text
    assert api.get(f"/api/v1/packs/{ref}").status_code == 404
