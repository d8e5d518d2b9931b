"""Packs shipped with Squall (``core``, ``linux``, ``demo``, ``packs``), in StackStorm's pack
format.

Each subdirectory is a pack directory; this package only locates them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILTIN_PACKS", "BUILTIN_PACKS_PATH", "builtin_pack_dirs"]

#: The directory holding the built-in pack directories (a pack search path).
BUILTIN_PACKS_PATH: Path = Path(__file__).resolve().parent

#: Refs of the built-in packs.
BUILTIN_PACKS: tuple[str, ...] = ("core", "linux", "demo", "packs")


def builtin_pack_dirs() -> list[Path]:
    """Return the directories of the built-in packs, in registration order."""
    return [BUILTIN_PACKS_PATH / name for name in BUILTIN_PACKS]
