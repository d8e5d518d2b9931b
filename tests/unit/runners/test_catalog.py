"""Shape of the runner type catalog."""

from __future__ import annotations

import pytest

from squall.runners.catalog import RUNNER_TYPES, SHELL_COMMAND_PARAMS, SHELL_COMMAND_RUNNERS

JSON_TYPES = {"array", "boolean", "integer", "null", "number", "object", "string"}


def test_runner_names():
    assert set(RUNNER_TYPES) == {
        "local-shell-cmd",
        "local-shell-script",
        "remote-shell-cmd",
        "remote-shell-script",
        "python-script",
        "http-request",
        "noop",
        "orquesta",
        "action-chain",
        "inquirer",
        "announcement",
    }


def test_availability():
    available = {name for name, spec in RUNNER_TYPES.items() if spec.available}
    assert available == {
        "local-shell-cmd",
        "local-shell-script",
        "remote-shell-cmd",
        "remote-shell-script",
        "python-script",
        "http-request",
        "noop",
        "orquesta",
        "action-chain",
        "inquirer",
        "announcement",
    }


@pytest.mark.parametrize("name", sorted(RUNNER_TYPES))
def test_parameters_are_well_formed(name):
    spec = RUNNER_TYPES[name]
    assert spec.name == name and spec.description
    for pname, param in spec.runner_parameters.items():
        assert param.get("type") in JSON_TYPES, (name, pname)
        assert param.get("description"), (name, pname)
        for flag in ("secret", "immutable", "required"):
            assert isinstance(param.get(flag, False), bool), (name, pname, flag)


def test_stackstorm_defaults_and_flags():
    local = RUNNER_TYPES["local-shell-cmd"].runner_parameters
    assert local["timeout"]["default"] == 60
    assert local["kwarg_op"]["default"] == "--"
    assert local["sudo"]["default"] is False
    assert local["sudo_password"]["secret"] is True
    assert "cmd" in local and "cmd" not in RUNNER_TYPES["local-shell-script"].runner_parameters
    python = RUNNER_TYPES["python-script"].runner_parameters
    assert python["timeout"]["default"] == 600
    assert set(python) >= {"env", "timeout", "log_level", "debug"}
    http = RUNNER_TYPES["http-request"].runner_parameters
    assert http["url"]["required"] is True
    assert http["allow_redirects"]["default"] is False
    assert http["verify_ssl_cert"]["default"] is True
    assert http["password"]["secret"] is True
    remote = RUNNER_TYPES["remote-shell-cmd"].runner_parameters
    assert remote["hosts"]["required"] is True
    assert all(remote[p]["secret"] for p in ("password", "private_key", "passphrase"))
    assert RUNNER_TYPES["inquirer"].runner_parameters["ttl"]["default"] == 1440
    assert RUNNER_TYPES["noop"].runner_parameters == {}


def test_as_api_document():
    doc = RUNNER_TYPES["python-script"].as_api()
    assert doc["name"] == "python-script"
    assert doc["output_key"] == "result"
    assert doc["runner_parameters"]["timeout"]["default"] == 600


def test_shell_command_params():
    assert {"cmd"} == SHELL_COMMAND_PARAMS
    assert {"local-shell-cmd", "remote-shell-cmd"} == SHELL_COMMAND_RUNNERS
    for runner in SHELL_COMMAND_RUNNERS:
        assert set(RUNNER_TYPES[runner].runner_parameters) >= SHELL_COMMAND_PARAMS
