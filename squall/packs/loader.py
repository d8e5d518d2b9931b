"""Load a StackStorm-format pack from disk and validate every file in it.

Pure: reads files, touches no database and no network. One bad content file becomes an
:class:`~squall.errors.Issue` and is left out; the rest of the pack still loads. Only a pack
that cannot be identified at all (missing directory, bad ``pack.yaml``) raises.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall.errors import Issue, PackError
from squall.packs.checks import Checker
from squall.packs.config import apply_config, check_config_schema
from squall.packs.content import ContentLoader
from squall.packs.metadata import (
    PACK,
    PACK_FIELDS,
    REF_PATTERN,
    RESERVED_PACK_REFS,
    normalize_version,
)
from squall.packs.models import LoadedPack
from squall.packs.yamlfile import YamlDocument, YamlFileError, load_yaml_file

__all__ = [
    "PackDiscovery",
    "ShadowedPack",
    "discover_packs",
    "find_packs",
    "load_pack",
    "read_pack_ref",
]

log = logging.getLogger(__name__)

_REF_RE = re.compile(REF_PATTERN)


def _pack_error(pack_dir: Path, reason: str, *, issues: list[Issue] | None = None) -> PackError:
    return PackError(
        f"cannot load pack at {pack_dir}: {reason}",
        issues=issues,
        hint="a pack is a directory with a pack.yaml (name, description, version, author)",
    )


def _read_pack_meta(pack_dir: Path) -> tuple[dict[str, Any], str, list[Issue]]:
    """Read and validate pack.yaml; return the normalized meta, the ref and warnings."""
    if not pack_dir.exists():
        raise _pack_error(pack_dir, "the directory does not exist")
    if not pack_dir.is_dir():
        raise _pack_error(pack_dir, "not a directory")
    try:
        entries = set(os.listdir(pack_dir))
    except OSError as exc:
        raise _pack_error(pack_dir, f"cannot read the directory ({exc.strerror or exc})") from None
    if "pack.yaml" not in entries:
        raise _pack_error(pack_dir, "pack.yaml is missing")
    try:
        doc = load_yaml_file(pack_dir / "pack.yaml", display_name="pack.yaml")
    except YamlFileError as exc:
        raise _pack_error(pack_dir, f"invalid pack.yaml: {exc.issue}", issues=[exc.issue]) from None

    checker = Checker(doc)
    PACK(checker, doc.data, ())
    if checker.issues:
        raise _pack_error(pack_dir, "invalid pack.yaml", issues=checker.issues)
    meta: dict[str, Any] = dict(doc.data)
    ref = meta.get("ref") or meta["name"]
    if "ref" not in meta and not _REF_RE.fullmatch(ref):
        issue = doc.issue(
            ("name",),
            f"{ref!r} is not a valid pack ref; add a 'ref' field made of lowercase letters, "
            "digits and underscores",
        )
        raise _pack_error(pack_dir, "invalid pack.yaml", issues=[issue])
    if ref in RESERVED_PACK_REFS:
        issue = doc.issue(("ref",) if "ref" in meta else ("name",), f"{ref!r} is reserved")
        raise _pack_error(pack_dir, "invalid pack.yaml", issues=[issue])
    meta["ref"] = ref
    meta["version"] = normalize_version(meta["version"])
    warnings = [
        doc.issue(path, "duplicate key; the last value wins") for path, _ in doc.duplicate_keys
    ]
    warnings += [
        doc.issue((key,), "unknown pack.yaml field (ignored)")
        for key in doc.data
        if key not in PACK_FIELDS
    ]
    return meta, ref, warnings


def read_pack_ref(pack_dir: Path) -> str:
    """Return the ref a pack directory declares (its directory name when unreadable).

    Args:
        pack_dir: A directory containing ``pack.yaml``.
    """
    try:
        doc = load_yaml_file(pack_dir / "pack.yaml")
    except YamlFileError:
        return pack_dir.name
    data = doc.data if isinstance(doc.data, dict) else {}
    ref = data.get("ref") or data.get("name")
    return ref if isinstance(ref, str) and ref else pack_dir.name


def load_pack(
    pack_dir: Path,
    *,
    known_runners: Collection[str],
    config_dir: Path | None = None,
) -> LoadedPack:
    """Load and validate the pack in ``pack_dir``.

    Args:
        pack_dir: The pack directory (the one holding ``pack.yaml``).
        known_runners: Runner type names actions may use.
        config_dir: Where site configs live (``<config_dir>/<ref>.yaml``); ``None`` for none.

    Returns:
        The :class:`LoadedPack`; files with problems are left out and listed in ``issues``.

    Raises:
        PackError: The directory is missing or unreadable, or ``pack.yaml`` is missing or
            invalid (the error's ``issues`` point at the lines).
    """
    pack_dir = Path(pack_dir).absolute()
    meta, ref, warnings = _read_pack_meta(pack_dir)
    pack = LoadedPack(ref=ref, meta=meta, path=pack_dir, warnings=warnings)

    ContentLoader(pack, frozenset(known_runners)).load_all()
    _load_config(pack, config_dir)

    requirements = pack_dir / "requirements.txt"
    if requirements.is_file():
        pack.requirements_file = requirements
    if (pack_dir / "config.yaml").is_file():
        pack.warnings.append(
            Issue(
                message="config.yaml inside a pack is not read; put the site's values in "
                f"configs/{ref}.yaml",
                file="config.yaml",
            )
        )
    return pack


def _load_config(pack: LoadedPack, config_dir: Path | None) -> None:
    schema_file = pack.path / "config.schema.yaml"
    schema: dict[str, Any] | None = None
    if schema_file.exists():
        try:
            doc = load_yaml_file(schema_file, display_name="config.schema.yaml", allow_empty=True)
        except YamlFileError as exc:
            pack.issues.append(exc.issue)
        else:
            issues = check_config_schema(doc) if doc.data is not None else []
            if issues:
                pack.issues.extend(issues)
            else:
                schema = dict(doc.data or {})
    pack.config_schema = schema

    config_doc: YamlDocument | None = None
    config_file = config_dir / f"{pack.ref}.yaml" if config_dir is not None else None
    display = str(config_file)
    if config_file is not None and config_file.exists():
        try:
            config_doc = load_yaml_file(config_file, display_name=display, allow_empty=True)
            pack.config_file = config_file
        except YamlFileError as exc:
            pack.issues.append(exc.issue)
            return
    if schema is None and config_doc is None:
        return
    if config_doc is None:
        display = f"configs/{pack.ref}.yaml"
    result = apply_config(schema, config_doc, file=display)
    pack.config = result.config
    pack.secret_config_paths = result.secret_paths
    pack.issues.extend(result.issues)
    pack.warnings.extend(result.warnings)


@dataclass(frozen=True)
class ShadowedPack:
    """A pack directory hidden by an earlier one with the same ref."""

    ref: str
    path: Path
    shadowed_by: Path


@dataclass
class PackDiscovery:
    """Pack directories found on the search paths, and the ones shadowed."""

    packs: list[Path] = field(default_factory=list)
    shadowed: list[ShadowedPack] = field(default_factory=list)


def find_packs(search_paths: Sequence[Path]) -> PackDiscovery:
    """Find pack directories: immediate subdirectories holding a ``pack.yaml``.

    Earlier search paths win: a later pack with the same ref is reported in ``shadowed``.
    Missing search paths are skipped; hidden directories are ignored.

    Args:
        search_paths: Directories to scan, in priority order.
    """
    found = PackDiscovery()
    owners: dict[str, Path] = {}
    for base in search_paths:
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for name in names:
            candidate = Path(base) / name
            if name.startswith(".") or not (candidate / "pack.yaml").is_file():
                continue
            ref = read_pack_ref(candidate)
            if ref in owners:
                found.shadowed.append(ShadowedPack(ref, candidate, owners[ref]))
                continue
            owners[ref] = candidate
            found.packs.append(candidate)
    return found


def discover_packs(search_paths: Sequence[Path]) -> list[Path]:
    """Return the pack directories on ``search_paths`` (first occurrence of a ref wins).

    Shadowed packs are logged as warnings; use :func:`find_packs` to get them as data.

    Args:
        search_paths: Directories to scan, in priority order.
    """
    found = find_packs(search_paths)
    for item in found.shadowed:
        log.warning(
            "pack %r at %s is shadowed by %s (earlier in the search path)",
            item.ref,
            item.path,
            item.shadowed_by,
        )
    return found.packs
