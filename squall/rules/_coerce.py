"""Value coercions shared by the operators: numbers from numeric strings, timestamps."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

__all__ = ["OperatorTypeError", "as_number", "parse_timestamp"]


class OperatorTypeError(TypeError):
    """The value's type does not fit the operator (StackStorm raised here too)."""


def as_number(value: Any) -> int | float | None:
    """A number, or a string holding one (not NaN); else None. Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def parse_timestamp(value: Any) -> datetime:
    """Read a timestamp as an aware UTC datetime.

    Args:
        value: An ISO-8601 string (naive means UTC), epoch seconds (number or numeric
            string; an 8-digit string is read as an ISO basic date, ``YYYYMMDD``) or a
            ``datetime``.

    Raises:
        OperatorTypeError: the value is not a timestamp.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:  # the common case first: exceptions from int()/float() are not free
            parsed = datetime.fromisoformat(text)
        except ValueError:
            if as_number(text) is None:
                parsed = _parse_loose(text)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    number = as_number(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            raise OperatorTypeError(f"{value!r} is out of range for a timestamp") from None
    raise OperatorTypeError(
        f"timediff needs a timestamp (ISO-8601 string or epoch seconds), got {value!r:.80}"
    )


def _parse_loose(text: str) -> datetime:
    """Other date formats StackStorm accepted through dateutil, when it is installed."""
    try:
        from dateutil import parser as date_parser
    except ImportError:  # pragma: no cover - dateutil ships with croniter
        date_parser = None
    if date_parser is not None:
        try:
            return date_parser.parse(text)
        except (ValueError, OverflowError):
            pass
    raise OperatorTypeError(f"cannot read {text!r:.80} as a timestamp")
