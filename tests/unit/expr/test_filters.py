"""StackStorm's custom Jinja filters, exercised through real templates."""

from __future__ import annotations

from typing import Any

import pytest

from squall.errors import ExpressionError
from squall.expr.filters import FILTERS
from squall.expr.jinja import render_native, render_template


def r(template: str, **ctx: Any) -> Any:
    return render_native(template, ctx)


def test_every_stackstorm_and_orquesta_filter_is_registered() -> None:
    expected = {
        "decrypt_kv", "from_json_string", "from_yaml_string", "json_escape", "jsonpath_query",
        "to_complex", "to_json_string", "to_yaml_string", "regex_match", "regex_replace",
        "regex_search", "regex_substring", "to_human_time_from_seconds", "version_compare",
        "version_more_than", "version_less_than", "version_equal", "version_match",
        "version_bump_major", "version_bump_minor", "version_bump_patch", "version_strip_patch",
        "use_none", "basename", "dirname", "json_dump", "json_parse", "yaml_dump", "yaml_parse",
    }  # fmt: skip
    assert expected <= set(FILTERS)


def test_json_filters() -> None:
    assert r("{{ s | from_json_string }}", s='{"a": [1, true, null]}') == {"a": [1, True, None]}
    assert r("{{ s | json_parse }}", s="[1]") == [1]
    assert r("{{ v | to_json_string }}", v={"a": 1}) == '{"a": 1}'
    assert r("{{ v | to_json_string(sort_keys=True) }}", v={"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert r("{{ v | to_json_string(indent=2) }}", v=[1]) == "[\n  1\n]"
    assert r("{{ v | json_dump }}", v=(1, 2)) == "[1, 2]"
    assert r("{{ v | to_complex }}", v={"x": "y"}) == '{"x": "y"}'


def test_yaml_filters() -> None:
    assert r("{{ s | from_yaml_string }}", s="a: 1\nb: [x, y]\n") == {"a": 1, "b": ["x", "y"]}
    assert r("{{ s | yaml_parse }}", s="- 1") == [1]
    assert r("{{ v | to_yaml_string }}", v={"a": [1, 2]}) == "a:\n- 1\n- 2\n"
    assert r("{{ v | yaml_dump }}", v={"k": "é"}) == "k: é\n"


def test_from_yaml_string_is_safe() -> None:
    with pytest.raises(ExpressionError):
        r("{{ s | from_yaml_string }}", s="!!python/object/apply:os.system ['true']")


def test_json_escape() -> None:
    assert r("{{ s | json_escape }}", s='say "hi"\n\\') == 'say \\"hi\\"\\n\\\\'
    rendered = render_template('{"msg": "{{ s | json_escape }}"}', {"s": 'a"b\tc'})
    import json

    assert json.loads(rendered) == {"msg": 'a"b\tc'}


def test_jsonpath_query() -> None:
    data = {
        "people": [
            {"name": "ann", "age": 31, "tags": ["a"]},
            {"name": "bob", "age": 25},
            {"name": "cid", "age": 40, "tags": ["b", "c"]},
        ],
        "meta": {"name": "root"},
    }
    q = lambda query: r("{{ d | jsonpath_query(q) }}", d=data, q=query)  # noqa: E731
    assert q("$.people[*].name") == ["ann", "bob", "cid"]
    assert q("people[0].name") == ["ann"]
    assert q("$.people[-1].age") == [40]
    assert q("$.people[0:2].name") == ["ann", "bob"]
    assert q("$.people[0,2].name") == ["ann", "cid"]
    assert q("$..name") == ["ann", "bob", "cid", "root"]
    assert q("$.meta['name']") == ["root"]
    assert q("$.people[?(@.age > 30)].name") == ["ann", "cid"]
    assert q("$.people[?(@.name == 'bob')].age") == [25]
    assert q("$.people[?(@.tags)].name") == ["ann", "cid"]
    assert q("$.people[*].tags[*]") == ["a", "b", "c"]
    assert q("$.meta.*") == ["root"]
    assert q("$.nothing") is None


def test_jsonpath_query_bad_query() -> None:
    with pytest.raises(ExpressionError, match="unclosed"):
        r("{{ d | jsonpath_query('$.a[0') }}", d={})


def test_regex_filters() -> None:
    assert r("{{ s | regex_match('ab+') }}", s="abbc") is True
    assert r("{{ s | regex_match('b+') }}", s="abbc") is False
    assert r("{{ s | regex_search('b+') }}", s="abbc") is True
    assert r("{{ s | regex_search('z') }}", s="abbc") is False
    assert r("{{ s | regex_replace('(\\\\d+)', '<\\\\1>') }}", s="a1b22") == "a<1>b<22>"
    assert r("{{ s | regex_substring('\\\\d+') }}", s="v10 v20") == "10"
    assert r("{{ s | regex_substring('\\\\d+', 1) }}", s="v10 v20") == "20"
    with pytest.raises(ExpressionError, match="no match"):
        r("{{ s | regex_substring('z') }}", s="abc")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (4587, "1h16m27s"),
        (90061, "1d1h1m1s"),
        (0.5, "500000μs"),
    ],
)
def test_to_human_time_from_seconds(seconds: float, expected: str) -> None:
    assert r("{{ s | to_human_time_from_seconds }}", s=seconds) == expected


def test_to_human_time_rejects_non_numbers() -> None:
    with pytest.raises(ExpressionError, match="needs a number"):
        r("{{ s | to_human_time_from_seconds }}", s="10")


def test_version_filters() -> None:
    assert r("{{ '1.2.3' | version_compare('1.2.4') }}") == -1
    assert r("{{ '1.10.0' | version_compare('1.9.0') }}") == 1
    assert r("{{ '1.0.0+build' | version_compare('1.0.0') }}") == 0
    assert r("{{ '1.0.0-rc.1' | version_less_than('1.0.0') }}") is True
    assert r("{{ '1.0.0-alpha.2' | version_more_than('1.0.0-alpha.10') }}") is False
    assert r("{{ '1.0.0-alpha' | version_less_than('1.0.0-alpha.1') }}") is True
    assert r("{{ '2.0.0' | version_more_than('1.99.99') }}") is True
    assert r("{{ '2.0.0' | version_equal('2.0.0') }}") is True
    assert r("{{ '2.1.0' | version_match('>=2.0.0') }}") is True
    assert r("{{ '2.1.0' | version_match('<2.0.0') }}") is False
    assert r("{{ '2.1.0' | version_match('!=2.1.0') }}") is False
    assert r("{{ '2.1.0' | version_match('==2.1.0') }}") is True
    assert r("{{ '1.2.3' | version_bump_major }}") == "2.0.0"
    assert r("{{ '1.2.3' | version_bump_minor }}") == "1.3.0"
    assert r("{{ '1.2.3' | version_bump_patch }}") == "1.2.4"
    assert r("{{ '1.2.3' | version_strip_patch }}") == "1.2"


def test_version_filters_reject_invalid_versions() -> None:
    with pytest.raises(ExpressionError, match="not a valid semantic version"):
        r("{{ '1.2' | version_compare('1.2.0') }}")
    with pytest.raises(ExpressionError, match="invalid version match pattern"):
        r("{{ '1.2.0' | version_match('1.2.0') }}")


def test_use_none_basename_dirname() -> None:
    assert r("{{ v | use_none }}", v=None) is None
    assert r("{{ v | use_none }}", v="x") == "x"
    assert r("{{ p | basename }}", p="/etc/ssh/sshd_config") == "sshd_config"
    assert r("{{ p | dirname }}", p="/etc/ssh/sshd_config") == "/etc/ssh"


def test_decrypt_kv_without_datastore_context_fails_clearly() -> None:
    with pytest.raises(ExpressionError, match="decrypt_kv"):
        r("{{ s | decrypt_kv }}", s="ciphertext")
