"""Squall: event-driven automation that speaks StackStorm's languages."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
