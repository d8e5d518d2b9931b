"""Shared test configuration. Tier-specific fixtures live in each tier's conftest."""

from __future__ import annotations
