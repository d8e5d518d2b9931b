"""Shell-safe command rendering, checked by running the commands with a real shell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from squall.errors import ExpressionError
from squall.expr.jinja import render_template
from squall.expr.shell import render_shell_safe, rewrite_shell_template

MALICIOUS = [
    '"; rm -rf /tmp/x; echo "',
    "$(id)",
    "`id`",
    "${HOME}",
    "$HOME",
    "a\nb",
    "line1\n; touch /tmp/pwned\n",
    "it's",
    "'; id; echo '",
    '"',
    "'",
    '\\"',
    "\\",
    "trailing\\",
    "a && b || c | d > e < f & g",
    "*",
    "~",
    "#not a comment",
    "!x !! !$",
    "tab\there",
    "",
    " spaced  out ",
    "$((1+1))",
    "ünïcødé ✓",
    "semi;colon",
    "){ :;}; echo vulnerable",
    "\r\n",
]


def sh(command: str, shell: str = "/bin/sh") -> str:
    completed = subprocess.run([shell, "-c", command], capture_output=True, timeout=10, check=False)
    assert completed.returncode == 0, (command, completed.stderr)
    return completed.stdout.decode()


@pytest.mark.parametrize("value", MALICIOUS)
@pytest.mark.parametrize(
    ("template", "prefix", "suffix"),
    [
        ("printf '%s' \"{{ v }}\"", "", ""),
        ("printf '%s' '{{ v }}'", "", ""),
        ("printf '%s' {{ v }}", "", ""),
        ("printf '%s' x{{ v }}y", "x", "y"),
        ("printf '%s' \"prefix-{{ v }}-suffix\"", "prefix-", "-suffix"),
        ("printf '%s' 'a'\"{{ v }}\"'b'", "a", "b"),
        ("printf '%s' \"$(printf '%s' {{ v }})\"", "", ""),
        ("printf '%s' \"$(printf '%s' \"{{ v }}\")\"", "", ""),
        ("printf '%s' \"$( (printf '%s' '{{ v }}') )\"", "", ""),
    ],
)
def test_value_is_passed_literally(template: str, prefix: str, suffix: str, value: str) -> None:
    output = sh(render_shell_safe(template, {"v": value}))
    if "$(" in template:
        # Command substitution strips trailing newlines, as it would for any value.
        assert output == f"{prefix}{value}{suffix}".rstrip("\n")
    else:
        assert output == f"{prefix}{value}{suffix}"


@pytest.mark.parametrize("value", MALICIOUS)
def test_core_echo_prints_message_literally(value: str) -> None:
    # core.echo's command. bash's echo prints backslashes literally (dash's echo interprets
    # them, and any echo treats a leading "-n"/"-e" as options), so it is the shell to use.
    command = render_shell_safe('echo "{{message}}"', {"message": value})
    assert sh(command, shutil.which("bash") or "/bin/bash") == value + "\n"
    if "\\" not in value:
        assert sh(command) == value + "\n"


def test_injection_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f'"; touch {marker}; echo "',
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"'; touch {marker}; echo '",
        f"\ntouch {marker}\n",
    ]
    for payload in payloads:
        for template in ['echo "{{ v }}"', "echo '{{ v }}'", "echo {{ v }}", "echo x # {{ v }}"]:
            sh(render_shell_safe(template, {"v": payload}))
            assert not marker.exists(), (template, payload)


def test_benign_values_render_exactly_as_naive_rendering() -> None:
    ctx = {"message": "Hello, world", "path": "/var/log/syslog", "n": 5}
    for template in [
        'echo "{{ message }}"',
        "echo '{{ message }}'",
        "tail -n {{ n }} {{ path }}",
        "ls {{ path }} | wc -l",
    ]:
        assert render_shell_safe(template, ctx) == render_template(template, ctx)


def test_unquoted_quoting_and_empty_values() -> None:
    assert render_shell_safe("echo {{ v }}", {"v": "a b"}) == "echo 'a b'"
    assert render_shell_safe("echo {{ v }}", {"v": ""}) == "echo ''"
    assert render_shell_safe('echo "{{ v }}"', {"v": ""}) == 'echo ""'
    assert render_shell_safe("echo {{ v }}", {"v": 42}) == "echo 42"


def test_double_and_single_quote_escaping_text() -> None:
    assert render_shell_safe('echo "{{ v }}"', {"v": 'a"$`\\'}) == 'echo "a\\"\\$\\`\\\\"'
    assert render_shell_safe("echo '{{ v }}'", {"v": "it's"}) == "echo 'it'\\''s'"


def test_shell_unsafe_opt_out() -> None:
    command = render_shell_safe("{{ script | shell_unsafe }} && echo {{ v }}", {
        "script": "printf '%s' ok",
        "v": "$(id)",
    })  # fmt: skip
    assert command == "printf '%s' ok && echo '$(id)'"
    assert sh(command) == "ok$(id)\n"
    # Outside shell rendering it is a no-op.
    assert render_template("{{ v | shell_unsafe }}", {"v": "a b"}) == "a b"


def test_statements_and_filters_are_preserved() -> None:
    template = "cmd{% if flag %} --flag \"{{ v | upper }}\"{% endif %} {{ items | join(',') }}"
    ctx = {"flag": True, "v": "x$y", "items": ["a", "b c"]}
    assert render_shell_safe(template, ctx) == "cmd --flag \"X\\$Y\" 'a,b c'"


def test_comment_context_cannot_break_out() -> None:
    command = render_shell_safe("echo ok # {{ v }}", {"v": "x\nid"})
    assert command == "echo ok # x id"
    assert sh(command) == "ok\n"


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("echo `printf {{ v }}`", "backticks"),
        ('echo "`printf {{ v }}`"', "backticks"),
        ("echo \\{{ v }}", "backslash"),
        ("cat <<EOF\n{{ v }}\nEOF", "here-document"),
    ],
)
def test_unsound_positions_are_refused(template: str, match: str) -> None:
    with pytest.raises(ExpressionError, match=match):
        render_shell_safe(template, {"v": "x"})


def test_here_string_is_not_a_heredoc() -> None:
    assert render_shell_safe("cat <<< {{ v }}", {"v": "a b"}) == "cat <<< 'a b'"


def test_rewrite_is_cached_and_syntax_errors_are_reported() -> None:
    assert rewrite_shell_template('echo "{{ v }}"') is rewrite_shell_template('echo "{{ v }}"')
    with pytest.raises(ExpressionError, match="Invalid Jinja template"):
        rewrite_shell_template("echo {{ v ")
    with pytest.raises(ExpressionError, match="undefined"):
        render_shell_safe("echo {{ missing }}", {})
