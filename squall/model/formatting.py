"""Formatting shared by the API, the engine and internal triggers (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["MASK", "iso", "mask_parameters"]

MASK = "********"


def iso(value: datetime | None) -> str | None:
    """StackStorm's timestamp format: ISO 8601 UTC with microseconds and ``Z``."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mask_parameters(params: Mapping[str, Any], secret_names: Iterable[str]) -> dict[str, Any]:
    """Replace the values of secret parameters with the mask."""
    secrets = set(secret_names)
    return {k: (MASK if k in secrets and v is not None else v) for k, v in params.items()}
