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


#: Actions whose ``packs`` parameter holds install specs (``URL[=VERSION]``).
_INSTALL_ACTIONS = frozenset({"packs.install", "packs.squall_install"})


def mask_parameters(
    params: Mapping[str, Any], secret_names: Iterable[str], *, action_ref: str = ""
) -> dict[str, Any]:
    """Replace the values of secret parameters with the mask.

    The install specs of ``packs.install`` and ``packs.squall_install`` are shown with their
    URLs' user info masked (``https://***@host/…``): the execution needs the credentials to
    clone, but nobody needs to see them, while the rest of the spec is the install history.
    (Marking the parameter ``secret`` would hide the whole history.)
    """
    secrets = set(secret_names)
    out = {k: (MASK if k in secrets and v is not None else v) for k, v in params.items()}
    specs = out.get("packs")
    if action_ref in _INSTALL_ACTIONS and isinstance(specs, list):
        from squall.packs.sources import redact_spec

        out["packs"] = [redact_spec(s) if isinstance(s, str) else s for s in specs]
    return out
