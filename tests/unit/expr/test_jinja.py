"""Sandboxed Jinja rendering: native values, errors, sandbox escapes, caching."""

from __future__ import annotations

import pytest

from squall.errors import ExpressionError
from squall.expr.jinja import (
    check_template,
    compile_template,
    get_environment,
    is_template,
    render_native,
    render_template,
    render_value,
)


def test_environment_is_shared_sandboxed_and_strict() -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = get_environment()
    assert env is get_environment()
    assert isinstance(env, SandboxedEnvironment)
    assert env.undefined is StrictUndefined
    assert env.autoescape is False
    assert "regex_replace" in env.filters and "json_dump" in env.filters


@pytest.mark.parametrize(
    ("value", "expected"),
    [("{{ x }}", True), ("a {% if x %}b{% endif %}", True), ("plain", False), ("{ x }", False)],
)
def test_is_template(value: str, expected: bool) -> None:
    assert is_template(value) is expected


def test_render_template_plain_string() -> None:
    assert render_template("Hello {{ name }}!", {"name": "world"}) == "Hello world!"
    assert render_template("<b>{{ x }}</b>", {"x": "<i>&"}) == "<b><i>&</b>"  # no autoescape


def test_trim_and_lstrip_blocks() -> None:
    template = "a\n  {% if x %}\nb\n  {% endif %}\nc"
    assert render_template(template, {"x": True}) == "a\nb\nc"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ data }}", {"a": [1, 2]}),
        ("{{ data.a }}", [1, 2]),
        ("{{ n + 1 }}", 4),
        ("{{ n > 2 }}", True),
        ("  {{ data.a[0] }}\n", 1),
        ("{{ none }}", None),
        ("{{ none | use_none }}", None),
        ("{{ 'x' }}", "x"),
        ("{{- n -}}", 3),
        ("n={{ n }}", "n=3"),
        ("{{ n }}{{ n }}", "33"),
        ("{{ n }} and {{ n }}", "3 and 3"),
        ("{% if n %}{{ n }}{% endif %}", "3"),
        ("{{ {'k': {'v': n}} }}", {"k": {"v": 3}}),
    ],
)
def test_render_native(template: str, expected: object) -> None:
    ctx = {"data": {"a": [1, 2]}, "n": 3, "none": None}
    assert render_native(template, ctx) == expected
    assert type(render_native(template, ctx)) is type(expected)


def test_use_none_inside_string_keeps_marker_and_native_gives_none() -> None:
    compiled = compile_template("{{ x | use_none }}")
    assert compiled.render_native({"x": None}) is None
    assert compiled.render_native({"x": None}, keep_none_marker=True) != "None"
    assert compiled.render_native({"x": 5}) == 5


def test_render_value_recurses_into_keys_values_and_lists() -> None:
    value = {
        "{{ k }}": ["{{ n }}", "static", {"inner": "{{ n * 2 }}"}, 7],
        "plain": "no template",
        "mixed": "n is {{ n }}",
    }
    assert render_value(value, {"k": "key", "n": 2}) == {
        "key": [2, "static", {"inner": 4}, 7],
        "plain": "no template",
        "mixed": "n is 2",
    }
    assert render_value(("{{ n }}",), {"n": 1}) == [1]
    assert render_value(5, {}) == 5


def test_undefined_variable_names_the_variable_and_template() -> None:
    with pytest.raises(ExpressionError) as info:
        render_template("hello {{ missing_var }}", {})
    assert "missing_var" in str(info.value)
    assert "hello {{ missing_var }}" in str(info.value)
    with pytest.raises(ExpressionError, match="missing_var"):
        render_native("{{ missing_var }}", {})


def test_undefined_attribute_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="no attribute 'nope'"):
        render_native("{{ d.nope }}", {"d": {}})
    with pytest.raises(ExpressionError, match="no attribute 'nope'"):
        render_template("x{{ d.nope }}", {"d": {}})


def test_filter_errors_become_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="JSONDecodeError"):
        render_native("{{ s | from_json_string }}", {"s": "not json"})


def test_check_template_reports_line_and_message() -> None:
    check_template("ok {{ x }}")
    with pytest.raises(ExpressionError) as info:
        check_template("line one\nline two {{ x | }}")
    message = str(info.value)
    assert "line 2" in message
    assert "line two {{ x | }}" in message
    assert "expected" in message  # Jinja's own message
    with pytest.raises(ExpressionError, match="unknown tag"):
        check_template("{% bogus %}")


def test_render_raises_on_syntax_error() -> None:
    with pytest.raises(ExpressionError, match="Invalid Jinja template"):
        render_template("{{ x ", {"x": 1})


def test_compile_template_is_cached_and_reports_names() -> None:
    first = compile_template("{{ a }} {{ b.c }} {% set d = 1 %}{{ d }}")
    assert compile_template("{{ a }} {{ b.c }} {% set d = 1 %}{{ d }}") is first
    assert first.referenced_names == frozenset({"a", "b"})
    assert first.is_native is False
    assert compile_template("{{ a }}").is_native is True


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ request.__class__ }}",
    "{{ x.__class__.__init__.__globals__ }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ x | attr('__class__') }}",
    "{{ f.__code__ }}",
    "{{ f.__globals__ }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 99999999 }}",
    "{{ range(10**9) | list }}",
]


@pytest.mark.parametrize("payload", SANDBOX_ESCAPES)
def test_sandbox_escapes_raise_expression_error(payload: str) -> None:
    def f() -> int:
        return 1

    ctx = {"x": "s", "request": {}, "f": f}
    with pytest.raises(ExpressionError):
        render_template(payload, ctx)
    with pytest.raises(ExpressionError):
        render_native(payload, ctx)


def test_sandbox_violation_message_mentions_sandbox() -> None:
    with pytest.raises(ExpressionError, match="sandbox violation"):
        render_template("{{ ''.__class__ }}", {})


def test_render_many_times_is_fast() -> None:
    import time

    ctx = {"x": 1}
    render_native("{{ x + 1 }}", ctx)
    start = time.perf_counter()
    for _ in range(2000):
        render_native("{{ x + 1 }}", ctx)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 0.0005  # cached compile: far below a parse per render


def test_render_value_rejects_unhashable_rendered_keys() -> None:
    with pytest.raises(ExpressionError, match="cannot be a key"):
        render_value({"{{ [1] }}": "v"}, {})
