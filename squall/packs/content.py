"""Loading of a pack's content files: actions, rules, sensors, policies, aliases, triggers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from squall.errors import Issue
from squall.packs.checks import Checker
from squall.packs.metadata import KINDS, ContentKind
from squall.packs.models import (
    ActionDef,
    AliasDef,
    ContentDef,
    LoadedPack,
    PolicyDef,
    RuleDef,
    SensorDef,
    TriggerTypeDef,
)
from squall.packs.yamlfile import YamlDocument, YamlFileError, load_yaml_file

__all__ = ["ENTRY_POINT_RUNNERS", "ContentLoader", "resolve_entry_point"]

#: Runners that run a file named by ``entry_point``: it is required and must exist.
ENTRY_POINT_RUNNERS = frozenset(
    {
        "local-shell-script",
        "remote-shell-script",
        "python-script",
        "orquesta",
        "action-chain",
        "winrm-ps-script",
    }
)

_YAML_SUFFIXES = (".yaml", ".yml")

_DEF_TYPES: Mapping[str, type[ContentDef]] = {
    "trigger_type": TriggerTypeDef,
    "action": ActionDef,
    "sensor": SensorDef,
    "rule": RuleDef,
    "policy": PolicyDef,
    "alias": AliasDef,
}

_LISTS: Mapping[str, str] = {
    "trigger_type": "trigger_types",
    "action": "actions",
    "sensor": "sensors",
    "rule": "rules",
    "policy": "policies",
    "alias": "aliases",
}


def resolve_entry_point(pack_dir: Path, base_dir: Path, entry_point: str) -> Path | None:
    """Resolve ``entry_point`` against ``base_dir``; ``None`` when it leaves ``pack_dir``.

    The check is lexical (``..`` segments, absolute paths elsewhere), as in StackStorm:
    a pack may still symlink files in from elsewhere on purpose.
    """
    candidate = Path(os.path.normpath(base_dir / entry_point))
    root = Path(os.path.normpath(pack_dir))
    if candidate == root or not candidate.is_relative_to(root):
        return None
    return candidate


class ContentLoader:
    """Loads every content directory of one pack into a :class:`LoadedPack`."""

    def __init__(self, pack: LoadedPack, known_runners: frozenset[str]) -> None:
        self.pack = pack
        self.known_runners = known_runners
        # kind → name → "file:line" of the first definition, for duplicate messages.
        self._names: dict[str, dict[str, str]] = {kind.kind: {} for kind in KINDS}

    def load_all(self) -> None:
        """Load all content kinds, in registration order."""
        for kind in KINDS:
            for path in self._files(kind.directory):
                self._load_file(kind, path)

    # -- files -------------------------------------------------------------------------------

    def _files(self, directory: str) -> list[Path]:
        folder = self.pack.path / directory
        try:
            with os.scandir(folder) as entries:
                names = [
                    entry.name
                    for entry in entries
                    if entry.name.endswith(_YAML_SUFFIXES) and not entry.name.startswith(".")
                ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.pack.issues.append(
                Issue(message=f"cannot read directory: {exc.strerror or exc}", file=directory)
            )
            return []
        return [folder / name for name in sorted(names)]

    def _load_file(self, kind: ContentKind, path: Path) -> None:
        source = f"{kind.directory}/{path.name}"
        try:
            doc = load_yaml_file(path, display_name=source)
        except YamlFileError as exc:
            self.pack.issues.append(exc.issue)
            return
        self.pack.warnings.extend(
            doc.issue(key_path, "duplicate key; the last value wins")
            for key_path, _ in doc.duplicate_keys
        )
        checker = Checker(doc)
        if not kind.check(checker, doc.data, ()):
            self.pack.issues.extend(checker.issues)
            return
        data: dict[str, Any] = doc.data
        self._check_pack_field(checker, data)
        entry_point_path: Path | None = None
        if kind.kind == "action":
            entry_point_path = self._check_action(checker, data)
        elif kind.kind == "sensor":
            entry_point_path = self._check_sensor(checker, data, source)
        if checker.issues:
            self.pack.issues.extend(checker.issues)
            return

        name = str(data.get("name") or data.get("class_name"))
        if not self._claim_name(kind.kind, name, doc, source):
            return
        data["pack"] = self.pack.ref
        if kind.enabled_default is not None:
            if kind.kind == "rule" and "enabled" not in data:
                self.pack.warnings.append(
                    doc.issue(
                        ("enabled",),
                        "not set: the rule is registered disabled (StackStorm's default); "
                        "add 'enabled: true' to turn it on",
                    )
                )
            data.setdefault("enabled", kind.enabled_default)
        definition = self._make(kind.kind, name, data, source, entry_point_path)
        getattr(self.pack, _LISTS[kind.kind]).append(definition)
        if kind.kind == "sensor":
            self._sensor_trigger_types(doc, data, source)

    def _make(
        self, kind: str, name: str, data: dict[str, Any], source: str, entry: Path | None
    ) -> ContentDef:
        ref = f"{self.pack.ref}.{name}"
        if kind in ("action", "sensor"):
            cls: Any = _DEF_TYPES[kind]
            return cls(name=name, ref=ref, metadata=data, source=source, entry_point_path=entry)
        return _DEF_TYPES[kind](name=name, ref=ref, metadata=data, source=source)

    def _claim_name(self, kind: str, name: str, doc: YamlDocument, source: str) -> bool:
        names = self._names[kind]
        first = names.get(name)
        if first is not None:
            label = kind.replace("_", " ")
            self.pack.issues.append(
                doc.issue(
                    ("name",) if "name" in doc.data else ("class_name",),
                    f"duplicate {label} name {name!r}; already defined in {first} "
                    "(this file is ignored)",
                )
            )
            return False
        line = doc.line_of(("name",)) or doc.line_of(("class_name",))
        names[name] = f"{source}:{line}" if line else source
        return True

    # -- checks ------------------------------------------------------------------------------

    def _check_pack_field(self, checker: Checker, data: Mapping[str, Any]) -> None:
        declared = data.get("pack")
        if declared is not None and declared != self.pack.ref:
            checker.error(
                ("pack",),
                f"{declared!r} does not match the pack's ref {self.pack.ref!r} (from "
                "pack.yaml); remove the field or fix it",
            )

    def _check_action(self, checker: Checker, data: Mapping[str, Any]) -> Path | None:
        runner = data["runner_type"]
        if runner not in self.known_runners:
            known = ", ".join(sorted(self.known_runners)) or "(none)"
            checker.error(
                ("runner_type",), f"unknown runner type {runner!r}; known runners: {known}"
            )
        entry = data.get("entry_point") or ""
        needs_file = runner in ENTRY_POINT_RUNNERS
        if not entry:
            if needs_file:
                checker.error(
                    ("entry_point",),
                    f"required by runner {runner!r}: the path of the file to run, relative "
                    "to actions/",
                )
            return None
        return self._entry_point(checker, entry, "actions", required=needs_file)

    def _check_sensor(self, checker: Checker, data: Mapping[str, Any], source: str) -> Path | None:
        entry = data.get("entry_point") or ""
        if not entry:
            self.pack.warnings.append(
                Issue(
                    message="no entry_point: the sensor has no module to run",
                    file=source,
                    path="entry_point",
                )
            )
            return None
        return self._entry_point(checker, entry, "sensors", required=True)

    def _entry_point(
        self, checker: Checker, entry: str, directory: str, *, required: bool
    ) -> Path | None:
        resolved = resolve_entry_point(self.pack.path, self.pack.path / directory, entry)
        if resolved is None:
            checker.error(
                ("entry_point",),
                f"{entry!r} points outside the pack directory; entry points are relative "
                f"to {directory}/ and must stay inside the pack",
            )
            return None
        if resolved.is_file():
            return resolved
        if required:
            shown = resolved.relative_to(self.pack.path).as_posix()
            reason = "is a directory" if resolved.is_dir() else "does not exist"
            checker.error(("entry_point",), f"file {shown} {reason} (from {entry!r})")
        return None

    def _sensor_trigger_types(
        self, doc: YamlDocument, data: Mapping[str, Any], source: str
    ) -> None:
        for index, item in enumerate(data.get("trigger_types") or []):
            if not isinstance(item, Mapping):
                continue  # a ref to a trigger type defined elsewhere
            name = str(item["name"])
            names = self._names["trigger_type"]
            if name in names:
                self.pack.warnings.append(
                    doc.issue(
                        ("trigger_types", index, "name"),
                        f"trigger type {name!r} is already defined in {names[name]}; "
                        "this definition is ignored",
                    )
                )
                continue
            line = doc.line_of(("trigger_types", index))
            names[name] = f"{source}:{line}" if line else source
            metadata = {**item, "pack": self.pack.ref}
            self.pack.trigger_types.append(
                TriggerTypeDef(
                    name=name, ref=f"{self.pack.ref}.{name}", metadata=metadata, source=source
                )
            )
