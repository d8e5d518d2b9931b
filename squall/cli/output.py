"""Terminal output: readable tables, key/value detail views, JSON."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import yaml

__all__ = ["print_detail", "print_json", "print_table", "status_text", "yaml_block"]

_COLORS = {
    "succeeded": "32",
    "failed": "31",
    "timeout": "31",
    "abandoned": "31",
    "canceled": "33",
    "canceling": "33",
    "running": "36",
    "scheduled": "36",
    "requested": "36",
    "delayed": "36",
}


def _use_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def status_text(status: str, stream: TextIO = sys.stdout) -> str:
    code = _COLORS.get(status)
    if code and _use_color(stream):
        return f"\x1b[{code}m{status}\x1b[0m"
    return status


def print_json(value: Any, stream: TextIO = sys.stdout) -> None:
    stream.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value).replace("\n", " ")


def _get(row: Mapping[str, Any], path: str) -> Any:
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    stream: TextIO = sys.stdout,
    empty: str = "(none)",
    footer: str | None = None,
) -> None:
    """Print ``rows`` as an aligned table; ``columns`` are (header, dotted key) pairs.

    The widest column is truncated with an ellipsis to fit the terminal.
    """
    if not rows:
        stream.write(empty + "\n")
        if footer:
            stream.write(footer + "\n")
        return
    headers = [h for h, _ in columns]
    cells = [[_cell(_get(r, key)) for _, key in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    term = shutil.get_terminal_size((120, 24)).columns if stream.isatty() else 10_000
    total = sum(widths) + 2 * (len(widths) - 1)
    while total > term:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 12:
            break
        shrink = min(total - term, widths[widest] - 12)
        widths[widest] -= shrink
        total -= shrink

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: max(1, width - 1)] + "…"

    stream.write(
        "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    )
    stream.write("\n")
    for row in cells:
        parts = []
        for i, (text, width) in enumerate(zip(row, widths, strict=True)):
            shown = fit(text, width)
            padded = shown.ljust(width)
            if columns[i][1] == "status":
                padded = status_text(shown, stream) + " " * (width - len(shown))
            parts.append(padded)
        stream.write("  ".join(parts).rstrip() + "\n")
    if footer:
        stream.write(footer + "\n")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (``|``), so command output reads as written."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)


def yaml_block(value: Any, indent: int = 2) -> str:
    text = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True
    )
    pad = " " * indent
    return "\n".join(pad + line for line in text.rstrip("\n").splitlines())


def print_detail(items: Sequence[tuple[str, Any]], *, stream: TextIO = sys.stdout) -> None:
    """``key: value`` lines; nested values as indented YAML."""
    for key, value in items:
        if isinstance(value, (dict, list)) and value:
            stream.write(f"{key}:\n{yaml_block(value)}\n")
        elif isinstance(value, str) and "\n" in value:
            body = "\n".join("  " + line for line in value.rstrip("\n").splitlines())
            stream.write(f"{key}: |\n{body}\n")
        else:
            stream.write(f"{key}: {_cell(value) if not isinstance(value, str) else value}\n")
