"""Action aliases (ChatOps): match a chat command against an alias's ``formats``.

A format is a command template: literal words plus parameters written ``{{ name }}`` (required)
or ``{{ name=default }}`` (optional, with a default). Any command may end with extra
``key=value`` pairs (values may be quoted). A format is either a string or
``{display, representation: [strings]}``; only representations are matched, the display is the
help text. Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from squall.errors import ValidationError

__all__ = ["AliasMatch", "CompiledFormat", "compile_format", "format_strings", "match_command"]

_PARAM = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*(?:=\s*(.*?))?\s*\}\}")
_EXTRA = re.compile(r"""\s*([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S+)""")
_TRAILING = r"(?P<_extra>(?:\s+[A-Za-z_][\w.]*=(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|\S+))*)"


@dataclass(frozen=True)
class CompiledFormat:
    """One representation, compiled to a regular expression."""

    representation: str
    display: str
    regex: re.Pattern[str]
    #: Parameter names in the order they appear, and the group name of each.
    groups: tuple[tuple[str, str], ...]
    defaults: Mapping[str, str]


@dataclass(frozen=True)
class AliasMatch:
    alias: Mapping[str, Any]
    representation: str
    display: str
    parameters: dict[str, Any]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return inner.replace('\\"', '"') if value[0] == '"' else inner
    return value


def _literal(text: str) -> str:
    """A literal part of a format: words as given, any run of spaces as ``\\s+``."""
    out = []
    for chunk in re.split(r"(\s+)", text):
        if not chunk:
            continue
        out.append(r"\s+" if chunk.isspace() else re.escape(chunk))
    return "".join(out)


_VALUE = r"(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|\S+?(?:\s+\S+?)*?)"


def compile_format(representation: str, display: str | None = None) -> CompiledFormat:
    """Compile one format string; raises :class:`ValidationError` for a malformed one."""
    if not isinstance(representation, str) or not representation.strip():
        raise ValidationError("an alias format must be a non-empty string")
    pattern: list[str] = []
    groups: list[tuple[str, str]] = []
    defaults: dict[str, str] = {}
    pos = 0
    for n, m in enumerate(_PARAM.finditer(representation)):
        literal = representation[pos : m.start()]
        name, default = m.group(1), m.group(2)
        group = f"p{n}"
        value = f"(?P<{group}>{_VALUE})"
        if default is not None:
            defaults[name] = _unquote(default.strip())
            # Optional: the space before it goes with it.
            stripped = literal.rstrip()
            lead = r"\s+" if stripped != literal else ""
            pattern.append(_literal(stripped))
            pattern.append(f"(?:{lead}{value})?")
        else:
            pattern.append(_literal(literal))
            pattern.append(value)
        groups.append((name, group))
        pos = m.end()
    pattern.append(_literal(representation[pos:].rstrip()))
    regex = re.compile(r"^\s*" + "".join(pattern) + _TRAILING + r"\s*$", re.IGNORECASE | re.DOTALL)
    return CompiledFormat(
        representation=representation,
        display=display or representation,
        regex=regex,
        groups=tuple(groups),
        defaults=defaults,
    )


def format_strings(alias: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(display, representation)`` pairs of an alias's formats."""
    out: list[tuple[str, str]] = []
    for fmt in alias.get("formats") or []:
        if isinstance(fmt, str):
            out.append((fmt, fmt))
        elif isinstance(fmt, Mapping):
            reps = fmt.get("representation") or []
            display = str(fmt.get("display") or (reps[0] if reps else ""))
            if isinstance(reps, str):
                reps = [reps]
            for rep in reps:
                out.append((display, str(rep)))
    return out


def _parse(compiled: CompiledFormat, command: str) -> dict[str, Any] | None:
    m = compiled.regex.match(command)
    if m is None:
        return None
    params: dict[str, Any] = dict(compiled.defaults)
    for name, group in compiled.groups:
        value = m.group(group)
        if value is not None:
            params[name] = _unquote(value.strip())
    for key, value in _EXTRA.findall(m.group("_extra") or ""):
        params[key] = _unquote(value)
    return params


def match_command(
    aliases: Sequence[Mapping[str, Any]], command: str, *, representation: str | None = None
) -> list[AliasMatch]:
    """Every (enabled alias, representation) that ``command`` matches.

    With ``representation`` only that format of each alias is tried (``aliasexecution`` names
    the format it chose).
    """
    found: list[AliasMatch] = []
    for alias in aliases:
        if not alias.get("enabled", True):
            continue
        for display, rep in format_strings(alias):
            if representation is not None and representation not in (rep, display):
                continue
            params = _parse(compile_format(rep, display), command)
            if params is not None:
                found.append(AliasMatch(alias, rep, display, params))
    return found
