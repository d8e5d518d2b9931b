"""The files pack installation writes, and its recovery after a crash (real directories)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

from squall.engine.pack_install import INSTALL_RECORD, PackInstaller, _write_json

if TYPE_CHECKING:
    from squall.engine.packs import PackService


def test_write_json_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pack = tmp_path / "pack"
    pack.mkdir()
    for name in ("record.json.tmp", ".record.json.tmp"):
        (pack / name).symlink_to(victim)

    _write_json(pack / "record.json", {"ok": True})

    assert victim.read_text() == "precious\n"
    assert json.loads((pack / "record.json").read_text()) == {"ok": True}
    assert not (pack / "record.json").is_symlink()
    assert sorted(p.name for p in pack.iterdir()) == [
        ".record.json.tmp",
        "record.json",
        "record.json.tmp",
    ]


def test_write_json_replaces_a_symlinked_target_without_writing_through_it(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "record.json").symlink_to(victim)
    _write_json(tmp_path / "record.json", [1])
    assert victim.read_text() == "precious\n"
    assert json.loads((tmp_path / "record.json").read_text()) == [1]


# --- recovery after a crash ---------------------------------------------------------------------


def installer(packs: Path) -> PackInstaller:
    """An installer over ``packs`` (recovery only needs the install directory)."""
    service = SimpleNamespace(settings=SimpleNamespace(pack_dirs=[packs]))
    return PackInstaller(cast("PackService", service))


def crashed(packs: Path, journal: str | None, *, backup: bool = True) -> Path:
    """A staging directory as a crash leaves it, with ``previous-hello`` unless not."""
    staging = packs / ".squall-install-crashed"
    staging.mkdir(parents=True)
    if backup:
        (staging / "previous-hello").mkdir()
        (staging / "previous-hello" / "pack.yaml").write_text("ref: hello\n")
    if journal is not None:
        (staging / "journal.json").write_text(journal)
    return staging


@pytest.mark.parametrize(
    "journal",
    [
        None,  # lost
        "{not json",
        '["swapping"]',
        '{"state": "swapping", "swaps": [{"ref": "hello", "unexpected": 1}]}',
        '{"state": "swapping", "swaps": "hello"}',
        '{"state": "something else"}',
    ],
)
def test_backups_without_a_readable_journal_are_kept_and_named(
    tmp_path: Path, journal: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    staging = crashed(tmp_path, journal)
    with caplog.at_level(logging.ERROR, logger="squall.engine.pack_install"):
        assert installer(tmp_path).recover_interrupted() == []
    assert (staging / "previous-hello" / "pack.yaml").read_text() == "ref: hello\n"
    assert str(staging) in caplog.text and "by hand" in caplog.text


def test_a_finished_or_backup_less_staging_directory_is_removed(tmp_path: Path) -> None:
    done = crashed(tmp_path / "a", '{"state": "done"}')
    assert installer(tmp_path / "a").recover_interrupted() == []
    assert not done.exists()
    staged_only = crashed(tmp_path / "b", None, backup=False)
    (staged_only / "0").mkdir()  # a clone, before any swap
    assert installer(tmp_path / "b").recover_interrupted() == []
    assert not staged_only.exists()


def test_an_interrupted_swap_is_undone_from_its_journal(tmp_path: Path) -> None:
    target = tmp_path / "hello"
    target.mkdir()
    (target / INSTALL_RECORD).write_text(json.dumps({"install_id": "new"}))
    swap = {
        "ref": "hello",
        "staged": str(tmp_path / ".squall-install-crashed" / "0"),
        "target": str(target),
        "previous": str(tmp_path / ".squall-install-crashed" / "previous-hello"),
        "install_id": "new",
    }
    staging = crashed(tmp_path, json.dumps({"state": "swapping", "swaps": [swap]}))
    assert installer(tmp_path).recover_interrupted() == ["hello"]
    assert (target / "pack.yaml").read_text() == "ref: hello\n"
    assert not staging.exists()
