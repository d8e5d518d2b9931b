"""Semantic versions (semver 2.0.0) for the ``version_*`` template filters.

Versions are ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``. Precedence follows the semver
specification: numeric core first, a pre-release sorts before its release, pre-release
identifiers compare numerically when both are numeric and lexically otherwise, build metadata
is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = [
    "Version",
    "parse_version",
    "version_bump_major",
    "version_bump_minor",
    "version_bump_patch",
    "version_compare",
    "version_equal",
    "version_less_than",
    "version_match",
    "version_more_than",
    "version_strip_patch",
]

_SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_MATCH_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed semantic version; ordered by semver precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _key(self) -> tuple[object, ...]:
        # A release (no pre-release) sorts after all of its pre-releases.
        pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


def parse_version(value: object) -> Version:
    """Parse a semantic version string.

    Args:
        value: A version such as ``"1.2.3"`` or ``"2.0.0-rc.1+build.5"``.

    Returns:
        The parsed :class:`Version`.

    Raises:
        ValueError: ``value`` is not a valid semantic version.
    """
    text = str(value).strip()
    match = _SEMVER.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a valid semantic version (expected MAJOR.MINOR.PATCH)")
    pre = match.group("pre")
    build = match.group("build")
    return Version(
        int(match.group("major")),
        int(match.group("minor")),
        int(match.group("patch")),
        tuple(pre.split(".")) if pre else (),
        tuple(build.split(".")) if build else (),
    )


def version_compare(value: object, other: object) -> int:
    """Return -1, 0 or 1 as ``value`` is older than, equal to or newer than ``other``."""
    left, right = parse_version(value), parse_version(other)
    return (left > right) - (left < right)


def version_more_than(value: object, other: object) -> bool:
    """True when ``value`` is newer than ``other``."""
    return version_compare(value, other) > 0


def version_less_than(value: object, other: object) -> bool:
    """True when ``value`` is older than ``other``."""
    return version_compare(value, other) < 0


def version_equal(value: object, other: object) -> bool:
    """True when both versions have the same precedence (build metadata ignored)."""
    return version_compare(value, other) == 0


def version_match(value: object, pattern: str) -> bool:
    """Compare ``value`` with a ``<op><version>`` pattern such as ``">=1.2.0"``.

    Operators: ``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``.

    Raises:
        ValueError: the pattern has no operator or an invalid version.
    """
    text = str(pattern).strip()
    for op in _MATCH_OPERATORS:
        if text.startswith(op):
            cmp = version_compare(value, text[len(op) :].strip())
            return {
                "==": cmp == 0,
                "!=": cmp != 0,
                ">=": cmp >= 0,
                "<=": cmp <= 0,
                ">": cmp > 0,
                "<": cmp < 0,
            }[op]
    raise ValueError(
        f"invalid version match pattern {text!r}: expected one of "
        f"{', '.join(_MATCH_OPERATORS)} followed by a version"
    )


def version_bump_major(value: object) -> str:
    """``1.2.3`` → ``2.0.0``."""
    v = parse_version(value)
    return str(Version(v.major + 1, 0, 0))


def version_bump_minor(value: object) -> str:
    """``1.2.3`` → ``1.3.0``."""
    v = parse_version(value)
    return str(Version(v.major, v.minor + 1, 0))


def version_bump_patch(value: object) -> str:
    """``1.2.3`` → ``1.2.4``; a pre-release is released instead (``1.2.3-rc.1`` → ``1.2.3``)."""
    v = parse_version(value)
    if v.prerelease:
        return str(Version(v.major, v.minor, v.patch))
    return str(Version(v.major, v.minor, v.patch + 1))


def version_strip_patch(value: object) -> str:
    """``1.2.3`` → ``1.2``."""
    v = parse_version(value)
    return f"{v.major}.{v.minor}"
