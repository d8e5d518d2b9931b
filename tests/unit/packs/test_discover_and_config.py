"""Pack discovery on search paths, and config validation against config.schema.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from squall.packs import discover_packs, find_packs, read_pack_ref
from squall.packs.config import apply_config, check_config_schema
from squall.packs.yamlfile import load_yaml_text

PACK_YAML = "name: {name}\n{ref}description: d\nversion: 1.0.0\nauthor: me\n"


def make_pack(base: Path, dirname: str, name: str, ref: str | None = None) -> Path:
    pack = base / dirname
    pack.mkdir(parents=True)
    ref_line = f"ref: {ref}\n" if ref else ""
    (pack / "pack.yaml").write_text(PACK_YAML.format(name=name, ref=ref_line))
    return pack


# --- discovery ------------------------------------------------------------------------------


def test_discovers_immediate_subdirectories_with_pack_yaml(tmp_path: Path) -> None:
    first = tmp_path / "first"
    alpha = make_pack(first, "alpha", "alpha")
    beta = make_pack(first, "beta", "beta")
    (first / "not_a_pack").mkdir()
    (first / "loose_file.yaml").write_text("name: x\n")
    make_pack(first / "deeper", "gamma", "gamma")  # two levels down: not a pack of `first`
    make_pack(first, ".hidden", "hidden")
    assert discover_packs([first]) == [alpha, beta]


def test_first_search_path_wins_and_shadowed_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    alpha = make_pack(first, "alpha", "alpha")
    # Same ref under another directory name: still shadowed, by ref.
    shadowed = make_pack(second, "alpha_fork", "Alpha Fork", ref="alpha")
    other = make_pack(second, "other", "other")
    found = find_packs([first, second, tmp_path / "missing"])
    assert found.packs == [alpha, other]
    assert [(s.ref, s.path, s.shadowed_by) for s in found.shadowed] == [("alpha", shadowed, alpha)]
    with caplog.at_level(logging.WARNING, logger="squall.packs.loader"):
        assert discover_packs([first, second]) == [alpha, other]
    assert "shadowed" in caplog.text and str(shadowed) in caplog.text


def test_read_pack_ref_falls_back_to_directory_name(tmp_path: Path) -> None:
    pack = tmp_path / "weird"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: [broken\n")
    assert read_pack_ref(pack) == "weird"
    assert read_pack_ref(make_pack(tmp_path, "d", "Named", ref="named")) == "named"


# --- config schema and config ---------------------------------------------------------------

SCHEMA = """\
host:
  type: string
  required: true
port:
  type: integer
  default: 443
verify:
  type: boolean
  default: true
auth:
  type: object
  properties:
    user:
      type: string
      default: admin
    password:
      type: string
      secret: true
      required: true
tags:
  type: array
  default: []
level:
  type: [integer, "null"]
"""


def schema() -> dict[str, object]:
    doc = load_yaml_text(SCHEMA, "config.schema.yaml")
    assert check_config_schema(doc) == []
    return dict(doc.data)


def test_config_defaults_nested_defaults_and_secrets() -> None:
    config = load_yaml_text("host: example.com\nauth:\n  password: s3cret\n", "c.yaml")
    result = apply_config(schema(), config, file="c.yaml")
    assert result.issues == []
    assert result.config == {
        "host": "example.com",
        "port": 443,
        "verify": True,
        "auth": {"user": "admin", "password": "s3cret"},
        "tags": [],
    }
    assert result.secret_paths == ["auth.password"]


def test_defaults_are_copies() -> None:
    the_schema = schema()
    config = load_yaml_text("host: a\nauth: {password: p}\n", "c.yaml")
    first = apply_config(the_schema, config, file="c.yaml").config
    first["tags"].append("mutated")
    assert apply_config(the_schema, config, file="c.yaml").config["tags"] == []


@pytest.mark.parametrize(
    ("text", "path", "line", "message"),
    [
        ("host: a\nport: '443'\nauth: {password: p}\n", "port", 2, "expected an integer"),
        ("host: a\nport: true\nauth: {password: p}\n", "port", 2, "got boolean true"),
        ("host: a\nverify: 1\nauth: {password: p}\n", "verify", 2, "expected true or false"),
        ("host: a\nauth: {password: p}\nlevel: x\n", "level", 3, "expected an integer or null"),
        ("host: 5\nauth: {password: p}\n", "host", 1, "expected a string, got integer 5"),
        ("auth: {password: p}\n", "host", 1, "required config value is missing"),
        ("host: a\nauth:\n  user: x\n", "auth.password", 2, "required config value is missing"),
    ],
)
def test_config_violations_name_line_and_path(
    text: str, path: str, line: int, message: str
) -> None:
    result = apply_config(schema(), load_yaml_text(text, "configs/p.yaml"), file="configs/p.yaml")
    [issue] = result.issues
    assert (issue.file, issue.path, issue.line) == ("configs/p.yaml", path, line)
    assert message in issue.message


def test_template_values_are_not_type_checked() -> None:
    text = "host: a\nport: '{{ st2kv.system.port }}'\nauth: {password: '{{ st2kv.system.pw }}'}\n"
    result = apply_config(schema(), load_yaml_text(text, "c.yaml"), file="c.yaml")
    assert result.issues == []
    assert result.secret_paths == ["auth.password"]


def test_config_without_schema_is_taken_as_is() -> None:
    result = apply_config(None, load_yaml_text("anything: [1, 2]\n", "c.yaml"), file="c.yaml")
    assert result.config == {"anything": [1, 2]}
    assert result.issues == [] and result.warnings == []


def test_config_that_is_not_a_mapping() -> None:
    result = apply_config(schema(), load_yaml_text("- a\n", "c.yaml"), file="c.yaml")
    [issue] = result.issues
    assert issue.message == "expected a mapping, got a list"


def test_bad_schema_entries() -> None:
    doc = load_yaml_text(
        "a: string\nb:\n  type: str\nc:\n  properties:\n    d:\n      required: sometimes\n",
        "config.schema.yaml",
    )
    issues = {issue.path: issue for issue in check_config_schema(doc)}
    assert issues["a"].message == "expected a mapping (the property's schema), got string 'string'"
    assert issues["b.type"].line == 3
    assert issues["c.properties.d.required"].line == 7
