"""Parameter resolution: defaults, templates, ordering, casting, validation, secrets."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from squall.errors import ParameterError
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot, render_with_kv
from squall.params import (
    MASK,
    ResolvedParameters,
    compile_parameters,
    mask_secrets,
    merge_parameter_specs,
    resolve_parameters,
)

LOCAL_RUNNER = {
    "cmd": {"type": "string"},
    "cwd": {"type": "string"},
    "env": {"type": "object"},
    "sudo": {"type": "boolean", "default": False},
    "sudo_password": {"type": "string", "secret": True},
    "timeout": {"type": "integer", "default": 60},
}
ECHO = merge_parameter_specs(
    LOCAL_RUNNER,
    {
        "message": {"type": "string", "required": True},
        "cmd": {"default": 'echo "{{message}}"', "immutable": True, "required": True},
        "sudo": {"immutable": True},
    },
    action_ref="core.echo",
)


def resolve(
    specs: dict[str, Any],
    provided: dict[str, Any],
    *,
    context: dict[str, Any] | None = None,
    kv: KVSnapshot | None = None,
    runner: tuple[str, ...] = (),
    shell: tuple[str, ...] = (),
) -> ResolvedParameters:
    return resolve_parameters(
        specs,
        provided,
        context=context or {},
        kv=kv,
        runner_param_names=runner,
        shell_params=shell,
        action_ref="pack.act",
    )


def test_defaults_provided_and_split() -> None:
    result = resolve(ECHO, {"message": "hi"}, runner=tuple(LOCAL_RUNNER), shell=("cmd",))
    assert result.runner == {"cmd": 'echo "hi"', "sudo": False, "timeout": 60}
    assert result.action == {"message": "hi"}
    assert result.all == {**result.runner, **result.action}
    assert result.secret_names == frozenset({"sudo_password"})
    assert result.missed_kv == frozenset()


@pytest.mark.parametrize(
    "message", ['"; touch /tmp/squall-pwned; echo "', "$(id)", "`id`", "a\nb", 'it\'s "q"']
)
def test_core_echo_cmd_is_shell_safe(message: str) -> None:
    result = resolve(ECHO, {"message": message}, runner=tuple(LOCAL_RUNNER), shell=("cmd",))
    out = subprocess.run(
        ["bash", "-c", result.runner["cmd"]], capture_output=True, check=True, timeout=10
    )
    assert out.stdout.decode() == message + "\n"


def test_unknown_parameter_lists_known_ones() -> None:
    with pytest.raises(ParameterError) as info:
        resolve(ECHO, {"message": "x", "bogus": 1})
    message = str(info.value)
    assert "unexpected parameter 'bogus' for action pack.act" in message
    assert "known: cmd, cwd, env, message, sudo, sudo_password, timeout" in message


def test_immutable_parameters() -> None:
    # Equal to the default: accepted.
    resolve(ECHO, {"message": "x", "sudo": False})
    with pytest.raises(ParameterError) as info:
        resolve(ECHO, {"message": "x", "sudo": True, "cmd": "rm -rf /"})
    assert sorted(i.path for i in info.value.issues) == ["parameters.cmd", "parameters.sudo"]
    assert "immutable" in str(info.value)


def test_explicit_null_means_default() -> None:
    specs = {
        "a": {"type": "integer", "default": 5},
        "b": {"type": "string", "default": "{{ a }}!"},
        "c": {"type": "string", "immutable": True, "default": "fixed"},
    }
    assert resolve(specs, {"a": None, "b": None, "c": None}).all == {
        "a": 5,
        "b": "5!",
        "c": "fixed",
    }


def test_missing_required_lists_all() -> None:
    specs = {
        "a": {"type": "string", "required": True},
        "b": {"type": "integer", "required": True},
        "c": {"type": "string", "required": True, "default": "ok"},
    }
    with pytest.raises(ParameterError) as info:
        resolve(specs, {})
    assert "missing required parameters for action pack.act: a, b" in str(info.value)
    assert [i.path for i in info.value.issues] == ["parameters.a", "parameters.b"]


def test_templates_render_in_dependency_order_with_context() -> None:
    specs = {
        "c": {"type": "string", "default": "{{ b }}-c"},
        "b": {"type": "string", "default": "{{ a }}-b"},
        "a": {"type": "string", "default": "{{ trigger.name }}"},
        "n": {"type": "integer", "default": "{{ a | length }}"},
    }
    result = resolve(specs, {}, context={"trigger": {"name": "x"}})
    assert result.all == {"c": "x-b-c", "b": "x-b", "a": "x", "n": 1}


def test_provided_values_are_templates_too() -> None:
    specs = {"a": {"type": "integer", "default": 2}, "b": {"type": "integer"}}
    assert resolve(specs, {"b": "{{ a * 10 }}"}).all == {"a": 2, "b": 20}
    assert resolve(specs, {"a": 5, "b": "{{ a * 10 }}"}).all == {"a": 5, "b": 50}


def test_nested_templates_in_objects_and_arrays() -> None:
    specs = {
        "host": {"type": "string", "default": "h1"},
        "env": {"type": "object", "default": {"HOST": "{{ host }}", "N": "{{ 1 + 1 }}"}},
        "hosts": {"type": "array", "default": ["{{ host }}", "static"]},
    }
    result = resolve(specs, {})
    assert result.all["env"] == {"HOST": "h1", "N": 2}
    assert result.all["hosts"] == ["h1", "static"]


def test_cycle_is_reported_with_the_cycle() -> None:
    specs = {
        "a": {"type": "string", "default": "{{ b }}"},
        "b": {"type": "string", "default": "{{ c }}"},
        "c": {"type": "string", "default": "{{ a }}"},
        "d": {"type": "string", "default": "{{ a }}"},
    }
    with pytest.raises(ParameterError, match=r"cycle for action pack.act: a -> b -> c -> a"):
        resolve(specs, {})
    with pytest.raises(ParameterError, match=r"cycle.*: x -> x"):
        resolve({"x": {"type": "string", "default": "{{ x }}"}}, {})


def test_rendered_strings_are_cast_to_declared_types() -> None:
    specs = {
        "i": {"type": "integer"},
        "f": {"type": "number"},
        "b": {"type": "boolean"},
        "l": {"type": "array"},
        "o": {"type": "object"},
        "s": {"type": "string"},
    }
    provided = {
        "i": "{{ '3' }}",
        "f": "x{{ '' }}1.5"[1:],  # a mixed template rendering to a string
        "b": "{{ 'true' }}",
        "l": "{{ data | to_json_string }}",
        "o": "{{ obj | to_json_string }}",
        "s": "{{ 42 }}",
    }
    ctx = {"data": [1, "a"], "obj": {"k": [1]}}
    assert resolve(specs, provided, context=ctx).all == {
        "i": 3,
        "f": 1.5,
        "b": True,
        "l": [1, "a"],
        "o": {"k": [1]},
        "s": "42",
    }


def test_plain_strings_for_typed_parameters_are_cast() -> None:
    specs = {"i": {"type": "integer"}, "b": {"type": "boolean", "default": "false"}}
    assert resolve(specs, {"i": "7"}).all == {"b": False, "i": 7}


def test_use_none_gives_none_and_plain_none_gives_string_none() -> None:
    specs = {"s": {"type": "string", "default": "x"}, "t": {"type": "string"}}
    result = resolve(specs, {"s": "{{ v | use_none }}", "t": "{{ v }}"}, context={"v": None})
    assert result.all == {"s": None, "t": "None"}


def test_parameters_without_value_are_none_in_templates() -> None:
    specs = {"opt": {"type": "string"}, "msg": {"type": "string", "default": "[{{ opt }}]"}}
    assert resolve(specs, {}).all == {"msg": "[None]"}
    assert "opt" not in resolve(specs, {}).all


def test_render_errors_name_the_parameter() -> None:
    specs = {"a": {"type": "string", "default": "{{ nope.x }}"}}
    with pytest.raises(ParameterError) as info:
        resolve(specs, {})
    assert "parameter 'a' for action pack.act" in str(info.value)
    assert "'nope' is undefined" in str(info.value)
    assert info.value.issues[0].path == "parameters.a"


def test_type_errors_name_parameter_and_reason() -> None:
    specs = {
        "n": {"type": "integer"},
        "b": {"type": "boolean"},
        "o": {"type": "object", "properties": {"k": {"type": "integer"}}},
    }
    with pytest.raises(ParameterError) as info:
        resolve(specs, {"n": "ten", "b": [], "o": {"k": "x"}})
    issues = {i.path: i.message for i in info.value.issues}
    assert issues["parameters.n"] == "parameter 'n': 'ten' is not of type 'integer'"
    assert issues["parameters.b"] == "parameter 'b': [] is not of type 'boolean'"
    assert issues["parameters.o.k"] == "parameter 'o': 'x' is not of type 'integer'"


def test_enum_enforced() -> None:
    specs = {"method": {"type": "string", "enum": ["GET", "POST"], "default": "GET"}}
    assert resolve(specs, {"method": "POST"}).all == {"method": "POST"}
    with pytest.raises(ParameterError, match="'PUT' is not one of"):
        resolve(specs, {"method": "PUT"})
    with pytest.raises(ParameterError, match="is not one of"):
        resolve(specs, {"method": "{{ 'DELETE' }}"})


def test_other_schema_keywords_are_validated() -> None:
    specs = {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
    resolve(specs, {"port": 22, "name": "abc", "tags": ["x"]})
    with pytest.raises(ParameterError) as info:
        resolve(specs, {"port": 0, "name": "ABC", "tags": [1]})
    assert sorted(i.path for i in info.value.issues) == [
        "parameters.name",
        "parameters.port",
        "parameters.tags.0",
    ]


def test_multi_type_parameters() -> None:
    specs = {"v": {"type": ["integer", "null"]}}
    assert resolve(specs, {"v": None}).all == {"v": None}
    assert resolve(specs, {"v": 3}).all == {"v": 3}
    with pytest.raises(ParameterError, match="is not of type 'integer', 'null'"):
        resolve(specs, {"v": "x"})


def test_mask_secrets() -> None:
    result = resolve(ECHO, {"message": "m", "sudo_password": "pw"})
    assert result.masked()["sudo_password"] == MASK
    assert result.all["sudo_password"] == "pw"
    assert mask_secrets({"a": 1, "b": {"c": 2}}, {"b"}) == {"a": 1, "b": MASK}


def test_secret_rendered_from_kv_is_masked() -> None:
    specs = {"password": {"type": "string", "secret": True, "default": "{{ st2kv.system.pw }}"}}
    snap = KVSnapshot({KeyRef("system", None, "pw"): KVEntry("hunter2")})
    result = resolve(specs, {}, kv=snap)
    assert result.all == {"password": "hunter2"}
    assert result.masked() == {"password": MASK}


async def test_two_pass_with_datastore() -> None:
    specs = {
        "host": {"type": "string", "default": "{{ st2kv.system.host }}"},
        "port": {"type": "integer", "default": "{{ st2kv.system.port }}"},
        "token": {"type": "string", "default": "{{ st2kv.user.token | decrypt_kv }}"},
    }
    store = {
        KeyRef("system", None, "host"): KVEntry("db1"),
        KeyRef("system", None, "port"): KVEntry("5432"),
        KeyRef("user", "alice", "token"): KVEntry("enc:t0k", secret=True),
    }
    fetches: list[set[KeyRef]] = []

    async def fetch(refs: set[KeyRef]) -> dict[KeyRef, KVEntry]:
        fetches.append(refs)
        return {r: store[r] for r in refs if r in store}

    compiled = compile_parameters(specs)

    def render(snap: KVSnapshot) -> ResolvedParameters:
        return compiled.resolve({}, context={}, kv=snap)

    result = await render_with_kv(render, fetch, user="alice", decrypt=lambda c: c[4:])
    assert result.all == {"host": "db1", "port": 5432, "token": "t0k"}
    assert result.missed_kv == frozenset()
    assert len(fetches) == 1


def test_missed_kv_is_reported() -> None:
    specs = {"host": {"type": "string", "default": "{{ st2kv.system.host }}"}}
    result = resolve(specs, {}, kv=KVSnapshot())
    assert result.missed_kv == {KeyRef("system", None, "host")}
    assert result.all == {"host": ""}


def test_function_form_caches_compiled_specs() -> None:
    specs = {"a": {"type": "string", "default": "x"}}
    first = resolve(specs, {})
    assert resolve(specs, {"a": "y"}).all == {"a": "y"}
    assert first.all == {"a": "x"}


def test_resolution_is_fast_without_templates() -> None:
    specs = {
        "a": {"type": "string", "required": True},
        "b": {"type": "integer", "default": 3},
        "c": {"type": "boolean", "default": False},
        "d": {"type": "string", "enum": ["x", "y"], "default": "x"},
        "e": {"type": "object", "default": {}},
    }
    compiled = compile_parameters(specs, runner_param_names=("b", "c"))
    provided = {"a": "hello", "e": {"k": 1}}
    compiled.resolve(provided, context={})
    runs = 2000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(runs):
            compiled.resolve(provided, context={})
        best = min(best, (time.perf_counter() - start) / runs)
    assert best < 50e-6, f"{best * 1e6:.1f} µs per resolution"
