"""StackStorm's (and Orquesta's) custom Jinja filters.

Every filter is a plain function; :data:`FILTERS` maps the names templates use to them and is
installed on the shared environment by :mod:`squall.expr.jinja`. Filters raise ordinary
exceptions (``ValueError``, ``TypeError``); the renderer turns them into
:class:`~squall.errors.ExpressionError` naming the template.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from jinja2 import pass_context
from jinja2.runtime import Context

from squall.expr import versions
from squall.expr.jsonpath import jsonpath_find
from squall.expr.kv import KVRoot, KVValue

__all__ = [
    "FILTERS",
    "NONE_MAGIC_VALUE",
    "ShellUnsafe",
    "basename",
    "decrypt_kv",
    "dirname",
    "from_json_string",
    "from_yaml_string",
    "json_escape",
    "jsonpath_query",
    "regex_match",
    "regex_replace",
    "regex_search",
    "regex_substring",
    "shell_escape_comment",
    "shell_escape_double",
    "shell_escape_single",
    "shell_escape_unquoted",
    "shell_unsafe",
    "to_complex",
    "to_human_time_from_seconds",
    "to_json_string",
    "to_yaml_string",
    "use_none",
]

#: What ``use_none`` renders as inside a larger string; a template that renders to exactly this
#: value is turned into ``None`` by native rendering and parameter casting (StackStorm's value).
NONE_MAGIC_VALUE = "%*****__%NONE%__*****%"


def _plain(value: Any) -> Any:
    """Datastore values are ``str`` subclasses; hand serializers a plain ``str``."""
    if isinstance(value, KVValue):
        return str.__str__(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_data(value: Any) -> Any:
    """Deep-convert mappings/sequences (and KV values) into plain JSON/YAML-able data."""
    if isinstance(value, KVValue):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return {_to_data(k): _to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_to_data(v) for v in value]
    return value


@pass_context
def decrypt_kv(context: Context, value: Any) -> str:
    """Decrypt a secret datastore value (``{{ st2kv.system.password | decrypt_kv }}``).

    A value read through ``st2kv`` carries the snapshot that can decrypt it; a plain ciphertext
    string is decrypted with the ``st2kv`` of the template context. A datastore value that is
    not secret is returned unchanged.
    """
    if isinstance(value, KVValue):
        return value.decrypted()
    root = context.get("st2kv")
    if isinstance(root, KVRoot):
        return root.snapshot.decrypt_value(str(value))
    raise ValueError("decrypt_kv needs a datastore value (st2kv) or a st2kv context to decrypt")


def from_json_string(value: Any) -> Any:
    """Parse a JSON document."""
    return json.loads(str(_plain(value)))


def from_yaml_string(value: Any) -> Any:
    """Parse a YAML document (safe loader)."""
    return yaml.safe_load(str(_plain(value)))


def to_json_string(
    value: Any,
    indent: int | None = None,
    sort_keys: bool = False,
    separators: tuple[str, str] | list[str] | None = None,
) -> str:
    """Serialize to JSON."""
    seps = tuple(separators) if separators else None
    return json.dumps(
        _to_data(value),
        indent=indent,
        sort_keys=sort_keys,
        separators=seps,  # type: ignore[arg-type]
        default=_json_default,
    )


def to_yaml_string(value: Any, indent: int | None = None, allow_unicode: bool = True) -> str:
    """Serialize to block-style YAML."""
    return str(
        yaml.safe_dump(
            _to_data(value),
            indent=indent,
            allow_unicode=allow_unicode,
            default_flow_style=False,
        )
    )


def to_complex(value: Any) -> str:
    """Legacy alias of :func:`to_json_string`."""
    return to_json_string(value)


def json_escape(value: Any) -> str:
    """Escape a string for embedding inside a JSON string literal (no surrounding quotes)."""
    return json.dumps(str(_plain(value)))[1:-1]


def jsonpath_query(value: Any, query: str) -> list[Any] | None:
    """Select values with a JSONPath query; ``None`` when nothing matches."""
    found = jsonpath_find(_to_data(value), query)
    return found or None


def regex_match(value: Any, pattern: str) -> bool:
    """True when ``pattern`` matches at the start of ``value``."""
    return re.match(pattern, str(value)) is not None


def regex_search(value: Any, pattern: str) -> bool:
    """True when ``pattern`` matches anywhere in ``value``."""
    return re.search(pattern, str(value)) is not None


def regex_replace(value: Any, pattern: str, replacement: str) -> str:
    """Replace every match of ``pattern`` (``\\1`` back-references allowed)."""
    return re.sub(pattern, replacement, str(value))


def regex_substring(value: Any, pattern: str, result_index: int = 0) -> Any:
    """Return the ``result_index``-th match of ``pattern`` (groups as in ``re.findall``)."""
    matches = re.findall(pattern, str(value))
    if not matches:
        raise ValueError(f"no match for {pattern!r} in {str(value)!r}")
    return matches[result_index]


def to_human_time_from_seconds(seconds: Any) -> str:
    """``4587`` → ``"1h16m27s"``; ``90061`` → ``"1d1h1m1s"``; under one second in µs."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"to_human_time_from_seconds needs a number, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"to_human_time_from_seconds needs a non-negative number, got {seconds}")
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1_000_000)}\u03bcs"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)


def use_none(value: Any) -> Any:
    """Pass ``None`` through a template (rendered natively as ``None``, not ``"None"``)."""
    return NONE_MAGIC_VALUE if value is None else value


def basename(path: Any) -> str:
    """Last component of a POSIX path."""
    return posixpath.basename(str(path))


def dirname(path: Any) -> str:
    """Directory part of a POSIX path."""
    return posixpath.dirname(str(path))


class ShellUnsafe(str):
    """A value marked with ``| shell_unsafe``: inserted into shell commands without escaping."""


def shell_unsafe(value: Any) -> ShellUnsafe:
    """Opt out of shell escaping: the value is intended to be shell code.

    Only meaningful as the last filter of a ``{{ }}`` in a shell command template rendered by
    :func:`squall.expr.shell.render_shell_safe`; elsewhere it renders the value unchanged.
    """
    return ShellUnsafe(_plain(value) if isinstance(value, str) else str(value))


def _shell_text(value: Any) -> str:
    return str.__str__(value) if isinstance(value, str) else str(value)


def shell_escape_unquoted(value: Any) -> str:
    """Quote for an unquoted shell word (``shlex.quote``; ``''`` for the empty string)."""
    if isinstance(value, ShellUnsafe):
        return str.__str__(value)
    return shlex.quote(_shell_text(value))


def shell_escape_double(value: Any) -> str:
    """Escape for the inside of a double-quoted shell string."""
    if isinstance(value, ShellUnsafe):
        return str.__str__(value)
    return re.sub(r'([\\"$`])', r"\\\1", _shell_text(value))


def shell_escape_single(value: Any) -> str:
    """Escape for the inside of a single-quoted shell string."""
    if isinstance(value, ShellUnsafe):
        return str.__str__(value)
    return _shell_text(value).replace("'", "'\\''")


def shell_escape_comment(value: Any) -> str:
    """Keep a value inside a shell comment (line breaks would end it)."""
    if isinstance(value, ShellUnsafe):
        return str.__str__(value)
    return _shell_text(value).replace("\r", " ").replace("\n", " ")


#: Filter name → function, as installed on the environment.
FILTERS: dict[str, Callable[..., Any]] = {
    "decrypt_kv": decrypt_kv,
    "from_json_string": from_json_string,
    "from_yaml_string": from_yaml_string,
    "json_escape": json_escape,
    "jsonpath_query": jsonpath_query,
    "to_complex": to_complex,
    "to_json_string": to_json_string,
    "to_yaml_string": to_yaml_string,
    "regex_match": regex_match,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "regex_substring": regex_substring,
    "to_human_time_from_seconds": to_human_time_from_seconds,
    "version_compare": versions.version_compare,
    "version_more_than": versions.version_more_than,
    "version_less_than": versions.version_less_than,
    "version_equal": versions.version_equal,
    "version_match": versions.version_match,
    "version_bump_major": versions.version_bump_major,
    "version_bump_minor": versions.version_bump_minor,
    "version_bump_patch": versions.version_bump_patch,
    "version_strip_patch": versions.version_strip_patch,
    "use_none": use_none,
    "basename": basename,
    "dirname": dirname,
    "shell_unsafe": shell_unsafe,
    # Inserted by squall.expr.shell when it rewrites a command template.
    "_squall_sh_unquoted": shell_escape_unquoted,
    "_squall_sh_double": shell_escape_double,
    "_squall_sh_single": shell_escape_single,
    "_squall_sh_comment": shell_escape_comment,
    # Orquesta's names.
    "json_dump": to_json_string,
    "json_parse": from_json_string,
    "yaml_dump": to_yaml_string,
    "yaml_parse": from_yaml_string,
}
