"""Pack loading and validation: StackStorm-format packs read from disk, with file:line issues.

Pure code: it reads files and touches no database or network. Registration of the loaded
definitions is done by the services that own storage.
"""

from __future__ import annotations

from squall.packs.content import ENTRY_POINT_RUNNERS
from squall.packs.loader import (
    PackDiscovery,
    ShadowedPack,
    discover_packs,
    find_packs,
    load_pack,
    read_pack_ref,
)
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
from squall.packs.yamlfile import YamlDocument, YamlFileError, load_yaml_file, load_yaml_text

__all__ = [
    "ENTRY_POINT_RUNNERS",
    "ActionDef",
    "AliasDef",
    "ContentDef",
    "LoadedPack",
    "PackDiscovery",
    "PolicyDef",
    "RuleDef",
    "SensorDef",
    "ShadowedPack",
    "TriggerTypeDef",
    "YamlDocument",
    "YamlFileError",
    "discover_packs",
    "find_packs",
    "load_pack",
    "load_yaml_file",
    "load_yaml_text",
    "read_pack_ref",
]
