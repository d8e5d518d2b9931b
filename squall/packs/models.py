"""What a loaded pack is made of: plain, immutable definitions ready for registration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squall.errors import Issue

__all__ = [
    "ActionDef",
    "AliasDef",
    "ContentDef",
    "LoadedPack",
    "PolicyDef",
    "RuleDef",
    "SensorDef",
    "TriggerTypeDef",
]


@dataclass(frozen=True, slots=True)
class ContentDef:
    """One metadata file of a pack.

    Attributes:
        name: The resource name (``class_name`` for sensors without a ``name``).
        ref: ``<pack>.<name>``.
        metadata: The file's mapping, with ``pack`` set to the pack's ref and ``enabled``
            defaulted (true, except rules: false as in StackStorm).
        source: The metadata file, relative to the pack directory (``actions/x.yaml``).
    """

    name: str
    ref: str
    metadata: dict[str, Any]
    source: str

    @property
    def enabled(self) -> bool:
        """Whether the resource is enabled (after defaults)."""
        return bool(self.metadata.get("enabled", True))


@dataclass(frozen=True, slots=True)
class ActionDef(ContentDef):
    """An action; ``entry_point_path`` is the absolute script/workflow path, if any."""

    entry_point_path: Path | None = None

    @property
    def runner_type(self) -> str:
        """The action's runner type name."""
        return str(self.metadata["runner_type"])

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """The action's own parameter schemas (runner parameters not merged in)."""
        return dict(self.metadata.get("parameters") or {})


@dataclass(frozen=True, slots=True)
class SensorDef(ContentDef):
    """A sensor; ``entry_point_path`` is the absolute path of its Python module, if any."""

    entry_point_path: Path | None = None

    @property
    def class_name(self) -> str:
        """The sensor class inside the entry point module."""
        return str(self.metadata["class_name"])


@dataclass(frozen=True, slots=True)
class RuleDef(ContentDef):
    """A rule."""

    @property
    def trigger_type(self) -> str:
        """The ref of the trigger type the rule listens to."""
        return str(self.metadata["trigger"]["type"])

    @property
    def action_ref(self) -> str:
        """The ref of the action the rule runs."""
        return str(self.metadata["action"]["ref"])


@dataclass(frozen=True, slots=True)
class PolicyDef(ContentDef):
    """A policy (concurrency, retry …) applied to ``resource_ref``."""


@dataclass(frozen=True, slots=True)
class AliasDef(ContentDef):
    """A ChatOps action alias."""


@dataclass(frozen=True, slots=True)
class TriggerTypeDef(ContentDef):
    """A trigger type, from ``triggers/`` or declared by a sensor's ``trigger_types``."""


@dataclass(slots=True)
class LoadedPack:
    """A pack read from disk and validated.

    Files with issues are left out of the content lists; ``issues`` says why. ``warnings``
    are suspicious but accepted things (duplicate YAML keys, rules without ``enabled`` …).
    """

    ref: str
    meta: dict[str, Any]
    path: Path
    actions: list[ActionDef] = field(default_factory=list)
    rules: list[RuleDef] = field(default_factory=list)
    sensors: list[SensorDef] = field(default_factory=list)
    policies: list[PolicyDef] = field(default_factory=list)
    aliases: list[AliasDef] = field(default_factory=list)
    trigger_types: list[TriggerTypeDef] = field(default_factory=list)
    #: ``config.schema.yaml`` as a mapping of property → schema (``None`` when absent).
    config_schema: dict[str, Any] | None = None
    #: ``configs/<pack>.yaml`` validated against the schema, with defaults applied.
    config: dict[str, Any] = field(default_factory=dict)
    #: Dotted paths of config values marked ``secret: true`` (``api.token``).
    secret_config_paths: list[str] = field(default_factory=list)
    #: The config file that was read, if any.
    config_file: Path | None = None
    requirements_file: Path | None = None
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file loaded without issues."""
        return not self.issues

    @property
    def version(self) -> str:
        """The pack's version (normalized to semver)."""
        return str(self.meta.get("version", ""))

    def action(self, name: str) -> ActionDef | None:
        """Return the action named ``name`` (or with ref ``name``), if loaded."""
        for action in self.actions:
            if name in (action.name, action.ref):
                return action
        return None
