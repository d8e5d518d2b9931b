"""load_pack on fixture packs: good content loads, each bad file is one precise issue."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from squall.errors import Issue, PackError
from squall.packs import LoadedPack, load_pack

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = FIXTURES / "configs"
RUNNERS = frozenset(
    {
        "local-shell-cmd",
        "local-shell-script",
        "python-script",
        "http-request",
        "noop",
        "orquesta",
        "action-chain",
        "inquirer",
    }
)


def line_in(file: Path, text: str) -> int:
    """The 1-based line of the first line of ``file`` containing ``text``."""
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {file}")


def issue_for(pack: LoadedPack, file: str) -> Issue:
    found = [issue for issue in pack.issues if issue.file == file]
    assert len(found) == 1, f"expected one issue for {file}, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def good() -> LoadedPack:
    return load_pack(FIXTURES / "goodpack", known_runners=RUNNERS, config_dir=CONFIGS)


@pytest.fixture(scope="module")
def broken() -> LoadedPack:
    return load_pack(FIXTURES / "brokenpack", known_runners=RUNNERS, config_dir=CONFIGS)


# --- the good pack --------------------------------------------------------------------------


def test_good_pack_has_no_issues(good: LoadedPack) -> None:
    assert good.issues == []
    assert good.ok


def test_good_pack_meta(good: LoadedPack) -> None:
    assert good.ref == "goodpack"
    assert good.meta["name"] == "Good Pack"
    assert good.meta["ref"] == "goodpack"
    assert good.version == "0.2.0"  # YAML's float 0.2, normalized to semver
    assert good.path == (FIXTURES / "goodpack").absolute()
    assert good.requirements_file == FIXTURES / "goodpack" / "requirements.txt"


def test_good_pack_actions(good: LoadedPack) -> None:
    refs = [action.ref for action in good.actions]
    # .yml files count; actions/workflows/*.yaml and hidden files are not action metadata.
    assert refs == ["goodpack.cmd", "goodpack.http", "goodpack.py", "goodpack.shell", "goodpack.wf"]
    shell = good.action("shell")
    assert shell is not None
    assert shell.source == "actions/shell.yaml"
    assert shell.runner_type == "local-shell-script"
    assert shell.entry_point_path == FIXTURES.absolute() / "goodpack/actions/scripts/run.sh"
    assert shell.entry_point_path.is_absolute()
    assert shell.metadata["pack"] == "goodpack"
    assert shell.parameters["target"]["position"] == 0
    workflow = good.action("goodpack.wf")
    assert workflow is not None
    assert workflow.entry_point_path is not None
    assert workflow.entry_point_path.name == "wf.yaml"
    # enabled defaults to true for actions; an explicit false stays false.
    assert good.action("py").enabled is True  # type: ignore[union-attr]
    assert good.action("cmd").enabled is False  # type: ignore[union-attr]
    assert good.action("http").entry_point_path is None  # type: ignore[union-attr]


def test_good_pack_other_content(good: LoadedPack) -> None:
    assert [rule.ref for rule in good.rules] == ["goodpack.implicit", "goodpack.on_webhook"]
    on_webhook = good.rules[1]
    assert on_webhook.trigger_type == "core.st2.webhook"
    assert on_webhook.action_ref == "goodpack.shell"
    assert on_webhook.metadata["throttle"] == {"per": 60}
    assert [sensor.ref for sensor in good.sensors] == ["goodpack.Watcher"]
    assert good.sensors[0].class_name == "Watcher"
    assert good.sensors[0].entry_point_path == FIXTURES.absolute() / "goodpack/sensors/watcher.py"
    assert [policy.ref for policy in good.policies] == ["goodpack.shell.concurrency"]
    assert [alias.ref for alias in good.aliases] == ["goodpack.run_shell"]
    # Trigger types come from triggers/ and from the sensor's trigger_types.
    assert [(t.ref, t.source) for t in good.trigger_types] == [
        ("goodpack.manual", "triggers/manual.yaml"),
        ("goodpack.event", "sensors/watcher.yaml"),
    ]


def test_rule_without_enabled_is_disabled_with_a_warning(good: LoadedPack) -> None:
    implicit = good.rules[0]
    assert implicit.enabled is False
    assert implicit.metadata["enabled"] is False
    [warning] = [w for w in good.warnings if w.file == "rules/implicit.yaml"]
    assert warning.path == "enabled"
    assert "registered disabled" in warning.message


def test_good_pack_config(good: LoadedPack) -> None:
    assert good.config_schema is not None
    assert set(good.config_schema) == {"api", "retries", "region", "password"}
    assert good.config == {
        "api": {"token": "abc123", "url": "https://api.example.com"},
        "retries": 3,
        "region": "eu",
        "password": "{{ st2kv.system.goodpack_password }}",
    }
    assert sorted(good.secret_config_paths) == ["api.token", "password"]
    assert good.config_file == CONFIGS / "goodpack.yaml"


# --- the broken pack: one issue per bad file, good files still load --------------------------


def test_broken_pack_still_loads_its_good_files(broken: LoadedPack) -> None:
    assert [action.ref for action in broken.actions] == ["brokenpack.dup", "brokenpack.good"]
    assert broken.action("dup").source == "actions/dup_one.yaml"  # type: ignore[union-attr]
    assert [rule.ref for rule in broken.rules] == ["brokenpack.good_rule", "brokenpack.same"]
    assert [t.ref for t in broken.trigger_types] == ["brokenpack.good_trigger"]
    assert broken.sensors == [] and broken.policies == [] and broken.aliases == []
    assert not broken.ok


@pytest.mark.parametrize(
    ("file", "marker", "path", "fragments"),
    [
        ("actions/malformed.yaml", "other: 1", None, ["invalid YAML", "started at line 6"]),
        (
            "actions/unknown_runner.yaml",
            "runner_type",
            "runner_type",
            ["unknown runner type 'shell-magic'", "known runners: action-chain", "python-script"],
        ),
        (
            "actions/missing_entry.yaml",
            "entry_point",
            "entry_point",
            ["actions/not_there.py does not exist"],
        ),
        (
            "actions/no_entry.yaml",
            "name:",
            "entry_point",
            ["required by runner 'local-shell-script'", "relative to actions/"],
        ),
        (
            "actions/restart.yaml",
            "type: int",
            "parameters.timeout.type",
            [
                "'int' is not a valid type; expected one of array, boolean, integer, null, "
                "number, object, string"
            ],
        ),
        (
            "actions/param_not_mapping.yaml",
            "cmd: echo hi",
            "parameters.cmd",
            ["expected a mapping", "got string 'echo hi'"],
        ),
        (
            "actions/unknown_field.yaml",
            "entrypoint",
            "entrypoint",
            ["unknown field", "did you mean 'entry_point'?", "allowed fields: description"],
        ),
        (
            "actions/pack_mismatch.yaml",
            "pack: otherpack",
            "pack",
            ["'otherpack' does not match the pack's ref 'brokenpack'"],
        ),
        (
            "actions/escape.yaml",
            "entry_point",
            "entry_point",
            ["points outside the pack directory"],
        ),
        (
            "actions/dup_two.yaml",
            "name: dup",
            "name",
            ["duplicate action name 'dup'", "actions/dup_one.yaml:2"],
        ),
        ("actions/list_top.yaml", "- name", None, ["expected a mapping, got a list"]),
        (
            "rules/bad_criteria.yaml",
            "type: 5",
            "criteria.trigger.body.x.type",
            ["expected a string, got integer 5"],
        ),
        ("rules/no_action_ref.yaml", "action:", "action.ref", ["required field is missing"]),
        (
            "rules/same_b.yaml",
            "name: same",
            "name",
            ["duplicate rule name 'same'", "rules/same_a.yaml:2"],
        ),
        ("sensors/no_class.yaml", "entry_point", "class_name", ["required field is missing"]),
        ("aliases/bad_format.yaml", "- 5", "formats[1]", ["got integer 5"]),
        ("policies/missing_type.yaml", "name:", "policy_type", ["required field is missing"]),
    ],
)
def test_each_bad_file_is_one_precise_issue(
    broken: LoadedPack, file: str, marker: str, path: str | None, fragments: list[str]
) -> None:
    issue = issue_for(broken, file)
    assert issue.line == line_in(FIXTURES / "brokenpack" / file, marker)
    assert issue.path == path
    for fragment in fragments:
        assert fragment in issue.message


def test_issue_text_matches_the_documented_form(broken: LoadedPack) -> None:
    assert str(issue_for(broken, "actions/restart.yaml")) == (
        "actions/restart.yaml:7: parameters.timeout.type: 'int' is not a valid type; "
        "expected one of array, boolean, integer, null, number, object, string"
    )


def test_empty_metadata_file(broken: LoadedPack) -> None:
    issue = issue_for(broken, "actions/empty.yaml")
    assert (issue.message, issue.line) == ("file is empty", 1)


def test_config_violations(broken: LoadedPack) -> None:
    config_file = CONFIGS / "brokenpack.yaml"
    issues = {issue.path: issue for issue in broken.issues if issue.file == str(config_file)}
    assert set(issues) == {"port", "mode", "token", "nested.level"}
    assert issues["port"].line == line_in(config_file, "port:")
    assert issues["port"].message == "expected an integer, got string 'eighty'"
    assert issues["mode"].line == line_in(config_file, "mode:")
    assert "expected one of fast, slow" in issues["mode"].message
    assert issues["token"].message == "required config value is missing"
    assert issues["nested.level"].line == line_in(config_file, "level:")
    [warning] = [w for w in broken.warnings if w.path == "unknown_key"]
    assert "not declared in config.schema.yaml" in warning.message


# --- pack-level failures raise PackError ----------------------------------------------------


def copy_pack(tmp_path: Path, name: str = "goodpack") -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_missing_pack_yaml() -> None:
    with pytest.raises(PackError) as caught:
        load_pack(FIXTURES / "no_pack_yaml", known_runners=RUNNERS)
    assert "pack.yaml is missing" in str(caught.value)
    assert str(FIXTURES / "no_pack_yaml") in str(caught.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="does not exist"):
        load_pack(tmp_path / "nope", known_runners=RUNNERS)


def test_pack_path_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="not a directory"):
        load_pack(tmp_path / "file", known_runners=RUNNERS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 directory anyway")
def test_unreadable_directory(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    pack.chmod(0)
    try:
        with pytest.raises(PackError, match="cannot read the directory"):
            load_pack(pack, known_runners=RUNNERS)
    finally:
        pack.chmod(0o755)


def test_unreadable_pack_yaml(tmp_path: Path) -> None:
    # Unreadability simulated in a way root cannot bypass: pack.yaml is a directory.
    pack = copy_pack(tmp_path)
    (pack / "pack.yaml").unlink()
    (pack / "pack.yaml").mkdir()
    with pytest.raises(PackError) as caught:
        load_pack(pack, known_runners=RUNNERS)
    assert "cannot read file" in str(caught.value)
    assert caught.value.issues[0].file == "pack.yaml"


def test_unreadable_content_directory_is_an_issue(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    shutil.rmtree(pack / "rules")
    (pack / "rules").write_text("not a directory")
    loaded = load_pack(pack, known_runners=RUNNERS)
    [issue] = loaded.issues
    assert issue.file == "rules"
    assert "cannot read directory" in issue.message
    assert len(loaded.actions) == 5


def test_malformed_pack_yaml_reports_line(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "pack.yaml").write_text("name: x\nversion: [1\nauthor: me\n")
    with pytest.raises(PackError) as caught:
        load_pack(pack, known_runners=RUNNERS)
    [issue] = caught.value.issues
    assert (issue.file, issue.line) == ("pack.yaml", 3)
    assert "invalid YAML" in issue.message


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("name: x\nversion: 1.0.0\nauthor: me\n", "description", "required field is missing"),
        ("name: x\ndescription: d\nversion: one\nauthor: me\n", "version", "not a valid version"),
        ("name: My Pack\ndescription: d\nversion: 1.0.0\nauthor: me\n", "name", "add a 'ref'"),
        (
            "name: x\nref: Bad-Ref\ndescription: d\nversion: 1.0.0\nauthor: me\n",
            "ref",
            "^[a-z0-9_]+$",
        ),
        ("name: _global\ndescription: d\nversion: 1.0.0\nauthor: me\n", "name", "reserved"),
        ("name: x\ndescription: d\nversion: 1.0.0\nauthor: 5\n", "author", "got integer 5"),
    ],
)
def test_invalid_pack_yaml(tmp_path: Path, text: str, path: str, fragment: str) -> None:
    pack = copy_pack(tmp_path)
    (pack / "pack.yaml").write_text(text)
    with pytest.raises(PackError) as caught:
        load_pack(pack, known_runners=RUNNERS)
    [issue] = caught.value.issues
    assert issue.file == "pack.yaml"
    assert issue.path == path
    assert fragment in issue.message
    assert issue.line is not None


def test_pack_yaml_unknown_field_is_a_warning(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    with (pack / "pack.yaml").open("a") as handle:
        handle.write("homepage: https://example.com\n")
    loaded = load_pack(pack, known_runners=RUNNERS)
    assert loaded.ok
    assert any(w.path == "homepage" and w.file == "pack.yaml" for w in loaded.warnings)


def test_without_config_dir_defaults_apply_and_required_is_a_warning(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    loaded = load_pack(pack, known_runners=RUNNERS)
    assert loaded.ok
    assert loaded.config == {
        "api": {"url": "https://api.example.com"},
        "retries": 3,
        "region": "eu",
    }
    assert loaded.config_file is None
    assert [w.path for w in loaded.warnings if "required config" in w.message] == ["api.token"]


def test_invalid_config_schema_is_an_issue(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "config.schema.yaml").write_text("region:\n  type: str\n  secret: maybe\n")
    loaded = load_pack(pack, known_runners=RUNNERS, config_dir=CONFIGS)
    by_path = {issue.path: issue for issue in loaded.issues}
    assert by_path["region.type"].line == 2
    assert "'str' is not a valid type" in by_path["region.type"].message
    assert by_path["region.secret"].line == 3
    assert by_path["region.secret"].message == "expected true or false, got string 'maybe'"
    assert loaded.config_schema is None
    assert len(loaded.actions) == 5


def test_unknown_runner_lists_known_runners_even_when_few(tmp_path: Path) -> None:
    loaded = load_pack(copy_pack(tmp_path), known_runners={"noop"})
    issues = {issue.file: issue for issue in loaded.issues}
    assert "known runners: noop" in issues["actions/shell.yaml"].message
    assert loaded.actions == []


def test_absolute_entry_point_inside_pack_is_accepted(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    script = pack / "actions" / "scripts" / "run.sh"
    text = (pack / "actions" / "shell.yaml").read_text()
    (pack / "actions" / "shell.yaml").write_text(text.replace("scripts/run.sh", str(script)))
    loaded = load_pack(pack, known_runners=RUNNERS)
    assert loaded.ok
    assert loaded.action("shell").entry_point_path == script  # type: ignore[union-attr]


def test_absolute_entry_point_outside_pack_is_rejected(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (tmp_path / "elsewhere.sh").write_text("echo")
    text = (pack / "actions" / "shell.yaml").read_text()
    outside = str(tmp_path / "elsewhere.sh")
    (pack / "actions" / "shell.yaml").write_text(text.replace("scripts/run.sh", outside))
    loaded = load_pack(pack, known_runners=RUNNERS)
    [issue] = loaded.issues
    assert issue.path == "entry_point"
    assert "outside the pack" in issue.message


def test_entry_point_that_is_a_directory(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    text = (pack / "actions" / "shell.yaml").read_text()
    (pack / "actions" / "shell.yaml").write_text(text.replace("scripts/run.sh", "scripts"))
    [issue] = load_pack(pack, known_runners=RUNNERS).issues
    assert "actions/scripts is a directory" in issue.message


def test_duplicate_yaml_keys_are_warnings(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "actions" / "twice.yaml").write_text(
        "name: twice\nrunner_type: noop\nname: twice_again\n"
    )
    loaded = load_pack(pack, known_runners=RUNNERS)
    assert loaded.action("twice_again") is not None
    [warning] = [w for w in loaded.warnings if w.file == "actions/twice.yaml"]
    assert (warning.line, warning.path) == (3, "name")


def test_loading_hundreds_of_files_is_fast(tmp_path: Path) -> None:
    import time

    pack = copy_pack(tmp_path)
    body = (FIXTURES / "goodpack" / "actions" / "shell.yaml").read_text()
    for index in range(400):
        (pack / "actions" / f"gen_{index}.yaml").write_text(
            body.replace("name: shell", f"name: gen_{index}")
        )
    started = time.perf_counter()
    loaded = load_pack(pack, known_runners=RUNNERS)
    elapsed = time.perf_counter() - started
    assert loaded.ok and len(loaded.actions) == 405
    # Typically ~0.1 s; the bound only catches pathological slowdowns.
    assert elapsed < 1.0, f"loading 400 action files took {elapsed:.2f}s"
