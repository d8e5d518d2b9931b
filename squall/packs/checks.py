"""Small combinators for validating YAML metadata with precise, readable issues.

JSON-schema validators report "'int' is not one of [...]" at a JSON pointer. Pack authors
need the file, the line, the field and what would have been accepted, so the metadata
schemas are written with these combinators instead. A check appends issues to the
:class:`Checker` and returns whether the value was acceptable.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from squall.errors import Issue
from squall.packs.yamlfile import YamlDocument, YamlPath

__all__ = [
    "JSON_TYPES",
    "Check",
    "Checker",
    "anything",
    "boolean",
    "describe",
    "either",
    "enum",
    "integer",
    "list_of",
    "mapping",
    "number",
    "obj",
    "string",
    "type_names",
]

#: The JSON-schema (draft 4) type names StackStorm accepts for parameters and configs.
JSON_TYPES: tuple[str, ...] = (
    "array",
    "boolean",
    "integer",
    "null",
    "number",
    "object",
    "string",
)


class Checker:
    """Collects issues for one document."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.issues: list[Issue] = []

    def error(self, path: YamlPath, message: str) -> None:
        """Record an issue at ``path``."""
        self.issues.append(self.doc.issue(path, message))


#: A check: ``(checker, value, path) -> ok``.
Check = Callable[[Checker, Any, YamlPath], bool]


def describe(value: Any) -> str:
    """Describe a value for a "got …" clause: ``integer 5``, ``a list``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'number'} {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _expect(checker: Checker, path: YamlPath, expected: str, value: Any) -> bool:
    checker.error(path, f"expected {expected}, got {describe(value)}")
    return False


def anything() -> Check:
    """Accept any value."""
    return lambda _c, _v, _p: True


def string(*, non_empty: bool = False, pattern: str | None = None, hint: str = "") -> Check:
    """A string, optionally non-empty and matching ``pattern`` (``hint`` explains it)."""
    regex = re.compile(pattern) if pattern else None

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, str):
            return _expect(checker, path, "a string", value)
        if non_empty and not value.strip():
            checker.error(path, "must not be empty")
            return False
        if regex is not None and not regex.fullmatch(value):
            checker.error(path, f"{value!r} is not valid; expected {hint or regex.pattern}")
            return False
        return True

    return check


def boolean() -> Check:
    """``true`` or ``false``."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if isinstance(value, bool):
            return True
        return _expect(checker, path, "true or false", value)

    return check


def integer(*, minimum: int | None = None) -> Check:
    """An integer (not a boolean), optionally ``>= minimum``."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return _expect(checker, path, "an integer", value)
        if minimum is not None and value < minimum:
            checker.error(path, f"{value} is too small; expected an integer >= {minimum}")
            return False
        return True

    return check


def number(*, minimum: float | None = None) -> Check:
    """An integer or float (not a boolean), optionally ``>= minimum``."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _expect(checker, path, "a number", value)
        if minimum is not None and value < minimum:
            checker.error(path, f"{value} is too small; expected a number >= {minimum}")
            return False
        return True

    return check


def enum(*values: Any) -> Check:
    """One of ``values``."""
    shown = ", ".join(str(v) for v in values)

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if isinstance(value, Mapping | list) or value not in values:
            checker.error(path, f"{describe(value)} is not allowed; expected one of {shown}")
            return False
        return True

    return check


def type_names() -> Check:
    """A JSON-schema ``type``: one type name or a list of them."""
    valid = ", ".join(JSON_TYPES)

    def one(checker: Checker, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, str):
            return _expect(checker, path, f"a type name (one of {valid})", value)
        if value not in JSON_TYPES:
            checker.error(path, f"{value!r} is not a valid type; expected one of {valid}")
            return False
        return True

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if isinstance(value, list):
            return all([one(checker, item, (*path, i)) for i, item in enumerate(value)])
        return one(checker, value, path)

    return check


def list_of(item: Check, *, expected: str = "a list") -> Check:
    """A list whose every item passes ``item``."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, list):
            return _expect(checker, path, expected, value)
        return all([item(checker, v, (*path, i)) for i, v in enumerate(value)])

    return check


def mapping(values: Check | None = None, *, expected: str = "a mapping") -> Check:
    """A mapping with string keys; each value passes ``values`` when given."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, Mapping):
            return _expect(checker, path, expected, value)
        ok = True
        for key, sub in value.items():
            if not isinstance(key, str):
                checker.error((*path, key), f"keys must be strings, got {describe(key)}")
                ok = False
            elif values is not None:
                ok = values(checker, sub, (*path, key)) and ok
        return ok

    return check


def either(*checks: tuple[Callable[[Any], bool], Check], expected: str) -> Check:
    """Dispatch on the value's shape: the first ``(predicate, check)`` whose predicate holds."""

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        for predicate, sub in checks:
            if predicate(value):
                return sub(checker, value, path)
        return _expect(checker, path, expected, value)

    return check


def obj(
    fields: Mapping[str, Check],
    *,
    required: Collection[str] = (),
    extra: bool = False,
    tolerated: Collection[str] = (),
    expected: str = "a mapping",
) -> Check:
    """A mapping with known fields.

    Args:
        fields: Field name → check.
        required: Fields that must be present.
        extra: Accept fields not in ``fields`` (unchecked).
        tolerated: Fields accepted without checks and not advertised in messages.
        expected: Wording for the type error when the value is not a mapping.
    """

    def check(checker: Checker, value: Any, path: YamlPath) -> bool:
        if not isinstance(value, Mapping):
            return _expect(checker, path, expected, value)
        ok = True
        for name in required:
            if name not in value:
                checker.error((*path, name), "required field is missing")
                ok = False
        for key, sub in value.items():
            field_check = fields.get(key) if isinstance(key, str) else None
            if field_check is not None:
                ok = field_check(checker, sub, (*path, key)) and ok
            elif not extra and key not in tolerated:
                checker.error((*path, key), _unknown_field(key, fields))
                ok = False
        return ok

    return check


def _unknown_field(key: Any, fields: Collection[str]) -> str:
    message = "unknown field"
    if isinstance(key, str):
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return f"{message}; allowed fields: {', '.join(sorted(fields))}"
