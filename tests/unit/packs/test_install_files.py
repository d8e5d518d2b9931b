"""The files pack installation writes into directories a repository filled."""

from __future__ import annotations

import json
from pathlib import Path

from squall.engine.pack_install import _write_json


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
