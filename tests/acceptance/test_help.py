"""`squall --help` and every verb's `--help`: exit 0 and name the verbs of DESIGN.md."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import SQUALL, clean_env

pytestmark = pytest.mark.slow

TOP_VERBS = ["up", "run", "execution", "action", "pack", "key", "login", "whoami"]
SUB_VERBS = {
    "execution": ["list", "get", "tail", "cancel", "re-run"],
    "action": ["list", "get"],
    "pack": ["list", "register", "install", "remove"],
    "key": ["set", "get", "list", "delete"],
}


def squall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SQUALL), *args], capture_output=True, text=True, timeout=30, env=clean_env()
    )


def test_top_level_help_lists_verbs() -> None:
    result = squall("--help")
    assert result.returncode == 0, result.stderr
    for verb in TOP_VERBS:
        assert verb in result.stdout.split(), f"`squall --help` does not mention {verb}"


@pytest.mark.parametrize("verb", TOP_VERBS)
def test_verb_help(verb: str) -> None:
    result = squall(verb, "--help")
    assert result.returncode == 0, result.stderr
    assert f"squall {verb}" in result.stdout
    for sub in SUB_VERBS.get(verb, []):
        assert sub in result.stdout.split(), f"`squall {verb} --help` does not mention {sub}"
    if verb in ("run", "whoami"):
        assert "--json" in result.stdout


def test_read_verbs_offer_json() -> None:
    read_verbs = [
        ("execution", "list"),
        ("execution", "get"),
        ("action", "list"),
        ("action", "get"),
        ("pack", "list"),
        ("key", "get"),
        ("key", "list"),
    ]
    for args in read_verbs:
        result = squall(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert f"squall {' '.join(args)}" in result.stdout
        assert "--json" in result.stdout, f"squall {' '.join(args)}: no --json"


def test_unknown_verb_is_a_usage_error() -> None:
    result = squall("frobnicate")
    assert result.returncode != 0
    assert "frobnicate" in result.stderr


def test_cli_without_a_server_gives_one_clear_line(tmp_path: Path) -> None:
    env = clean_env()
    env.update(
        SQUALL_URL="http://127.0.0.1:9",
        SQUALL_HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path),
        SQUALL_TOKEN="0" * 32,
    )
    result = subprocess.run(
        [str(SQUALL), "execution", "list"], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "cannot reach" in result.stderr and "127.0.0.1:9" in result.stderr
