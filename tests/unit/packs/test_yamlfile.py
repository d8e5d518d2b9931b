"""YAML loading with line numbers: the lines issues point at must be the right ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.packs.yamlfile import (
    YamlFileError,
    format_path,
    load_yaml_file,
    load_yaml_text,
)

SOURCE = """\
---
name: restart
parameters:
  timeout:
    type: int
    default: 30
  hosts:
    - web1
    - {name: web2,
       port: 22}
tags: []
"""


def test_data_is_plain_python() -> None:
    doc = load_yaml_text(SOURCE, "a.yaml")
    assert doc.data == {
        "name": "restart",
        "parameters": {
            "timeout": {"type": "int", "default": 30},
            "hosts": ["web1", {"name": "web2", "port": 22}],
        },
        "tags": [],
    }
    assert type(doc.data) is dict


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 2),
        (("name",), 2),
        (("parameters",), 3),
        (("parameters", "timeout"), 4),
        (("parameters", "timeout", "type"), 5),
        (("parameters", "timeout", "default"), 6),
        (("parameters", "hosts", 0), 8),
        (("parameters", "hosts", 1), 9),
        (("parameters", "hosts", 1, "port"), 10),
        (("tags",), 11),
    ],
)
def test_line_of_keys_and_items(path: tuple[str | int, ...], line: int) -> None:
    assert load_yaml_text(SOURCE, "a.yaml").line_of(path) == line


def test_line_of_falls_back_to_nearest_parent() -> None:
    doc = load_yaml_text(SOURCE, "a.yaml")
    assert doc.line_of(("parameters", "timeout", "required")) == 4
    assert doc.line_of(("parameters", "hosts", 7, "name")) == 7
    assert doc.line_of(("nope", "deeper")) == 2


def test_issue_carries_file_line_and_dotted_path() -> None:
    doc = load_yaml_text(SOURCE, "actions/restart.yaml")
    issue = doc.issue(("parameters", "hosts", 1, "port"), "bad port")
    assert (issue.file, issue.line, issue.path) == (
        "actions/restart.yaml",
        10,
        "parameters.hosts[1].port",
    )
    assert str(issue) == "actions/restart.yaml:10: parameters.hosts[1].port: bad port"


def test_format_path() -> None:
    assert format_path(("a", 0, "b", 2)) == "a[0].b[2]"
    assert format_path(()) == ""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("name: x\nparameters: [1, 2\nother: 3\n", 3, "flow sequence (started at line 2"),
        ("name: x\nrunner_type: a: b\n", 2, "mapping values are not allowed"),
        ("a: 1\n---\nb: 2\n", 2, "expected a single document"),
        ("a: *missing\n", 1, "undefined alias"),
        ('a: 1\nb: "open\n', 2, "quoted scalar (started at line 2, column 4)"),
    ],
)
def test_malformed_yaml_reports_line_and_reason(text: str, line: int, fragment: str) -> None:
    with pytest.raises(YamlFileError) as caught:
        load_yaml_text(text, "bad.yaml")
    issue = caught.value.issue
    assert issue.file == "bad.yaml"
    assert issue.line == line
    assert issue.message.startswith("invalid YAML")
    assert fragment in issue.message
    assert str(caught.value).startswith(f"bad.yaml:{line}: invalid YAML")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n"])
def test_empty_file_is_an_issue(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path, display_name="actions/x.yaml")
    assert caught.value.issue.message == "file is empty"
    assert caught.value.issue.file == "actions/x.yaml"


def test_empty_file_allowed_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("# nothing yet\n")
    assert load_yaml_file(path, allow_empty=True).data is None


def test_not_utf8_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert caught.value.issue.line == 2
    assert "not valid UTF-8" in caught.value.issue.message


def test_unreadable_path_is_an_issue(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(tmp_path / "dir.yaml", display_name="actions/dir.yaml")
    assert caught.value.issue.message.startswith("cannot read file")
    assert caught.value.issue.file == "actions/dir.yaml"


def test_duplicate_keys_are_reported_with_line() -> None:
    doc = load_yaml_text("name: a\nparameters:\n  x: {}\n  x: {type: string}\nname: b\n", "f")
    assert doc.data["name"] == "b"
    assert doc.data["parameters"]["x"] == {"type": "string"}
    assert sorted(doc.duplicate_keys) == [(("name",), 5), (("parameters", "x"), 4)]


def test_merge_keys_are_not_duplicates_and_explicit_key_line_wins() -> None:
    text = "base: &b\n  x: 1\n  y: 2\nchild:\n  <<: *b\n  y: 3\n"
    doc = load_yaml_text(text, "f")
    assert doc.data["child"] == {"x": 1, "y": 3}
    assert doc.duplicate_keys == []
    assert doc.line_of(("child", "y")) == 6


def test_recursive_alias_does_not_hang() -> None:
    doc = load_yaml_text("a: &r [1, *r]\n", "f")
    assert doc.data["a"][1] is doc.data["a"]
    assert doc.line_of(("a", 1, 1, 1)) == 1


def test_non_mapping_documents() -> None:
    assert load_yaml_text("- a\n- b\n", "f").line_of((1,)) == 2
    assert load_yaml_text("just text\n", "f").data == "just text"
