"""A small JSONPath engine for the ``jsonpath_query`` filter.

Supported syntax (a practical subset of Goessner's JSONPath, enough for StackStorm content):

* ``$`` root (optional: ``a.b`` means ``$.a.b``)
* ``.name`` / ``['name']`` / ``["name"]`` / ``['a','b']`` — member access
* ``[0]``, ``[-1]``, ``[0,2]`` — array indices; ``[start:stop:step]`` — slices
* ``.*`` / ``[*]`` — every member or element
* ``..name`` / ``..*`` / ``..[0]`` — recursive descent
* ``[?(@.key)]`` — elements that have ``key``; ``[?(@.key <op> literal)]`` with
  ``== != < <= > >=`` and literals: numbers, quoted strings, ``true``, ``false``, ``null``
  (``@`` alone compares the element itself)

Queries are parsed once and cached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["JSONPathError", "compile_jsonpath", "jsonpath_find"]


class JSONPathError(ValueError):
    """The JSONPath query is malformed."""


@dataclass(frozen=True)
class _Step:
    kind: str  # name | wild | index | slice | filter
    args: tuple[Any, ...]
    recursive: bool = False


_NAME = re.compile(r"[^.\[\]\s()]+")
_INT = re.compile(r"-?\d+")
_FILTER = re.compile(
    r"^\s*@(?P<path>(?:\.[^.\[\]\s=!<>]+|\[\s*(?:-?\d+|'[^']*'|\"[^\"]*\")\s*\])*)\s*"
    r"(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<lit>.+?))?\s*$"
)
_FILTER_PATH_PART = re.compile(r"\.([^.\[\]\s=!<>]+)|\[\s*(-?\d+|'[^']*'|\"[^\"]*\")\s*\]")
_MISSING = object()


def _parse_literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        raise JSONPathError(f"invalid literal {text!r} in filter expression") from None


def _parse_bracket(query: str, pos: int, recursive: bool) -> tuple[_Step, int]:
    end = _find_bracket_end(query, pos)
    inner = query[pos + 1 : end].strip()
    nxt = end + 1
    if inner == "*":
        return _Step("wild", (), recursive), nxt
    if inner.startswith("?"):
        body = inner[1:].strip()
        if not (body.startswith("(") and body.endswith(")")):
            raise JSONPathError(f"filter must look like [?(...)] in {query!r}")
        match = _FILTER.match(body[1:-1])
        if match is None:
            raise JSONPathError(f"unsupported filter expression {body!r} in {query!r}")
        path = tuple(
            name if name else _parse_literal(index)
            for name, index in _FILTER_PATH_PART.findall(match.group("path"))
        )
        path = tuple(int(p) if isinstance(p, str) and _INT.fullmatch(p) else p for p in path)
        op = match.group("op")
        literal = _parse_literal(match.group("lit")) if op else None
        return _Step("filter", (path, op, literal), recursive), nxt
    if ":" in inner and not inner.startswith(("'", '"')):
        parts = [p.strip() for p in inner.split(":")]
        if len(parts) > 3 or not all(p == "" or _INT.fullmatch(p) for p in parts):
            raise JSONPathError(f"invalid slice [{inner}] in {query!r}")
        nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
        return _Step("slice", tuple(nums), recursive), nxt
    items = [item.strip() for item in _split_union(inner)]
    if not items or any(not item for item in items):
        raise JSONPathError(f"empty selector [] in {query!r}")
    if all(_INT.fullmatch(item) for item in items):
        return _Step("index", tuple(int(item) for item in items), recursive), nxt
    names = []
    for item in items:
        if len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
            names.append(item[1:-1])
        else:
            raise JSONPathError(f"invalid selector [{inner}] in {query!r}")
    return _Step("name", tuple(names), recursive), nxt


def _find_bracket_end(query: str, pos: int) -> int:
    quote: str | None = None
    depth = 0
    for i in range(pos, len(query)):
        ch = query[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError(f"unclosed '[' at position {pos} in {query!r}")


def _split_union(inner: str) -> list[str]:
    parts: list[str] = []
    quote: str | None = None
    current = ""
    for ch in inner:
        if quote:
            current += ch
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


@lru_cache(maxsize=512)
def compile_jsonpath(query: str) -> tuple[_Step, ...]:
    """Parse a JSONPath query into steps (cached).

    Raises:
        JSONPathError: the query is malformed.
    """
    text = query.strip()
    steps: list[_Step] = []
    pos = 0
    if text.startswith("$"):
        pos = 1
    elif text and text[0] not in ".[":
        # A leading bare name: "a.b" means "$.a.b".
        text = "." + text
    while pos < len(text):
        recursive = False
        if text.startswith("..", pos):
            recursive = True
            pos += 2
        elif text[pos] == ".":
            pos += 1
        elif text[pos] != "[":
            raise JSONPathError(f"unexpected {text[pos]!r} at position {pos} in {query!r}")
        if pos < len(text) and text[pos] == "[":
            step, pos = _parse_bracket(text, pos, recursive)
        elif pos < len(text) and text[pos] == "*":
            step, pos = _Step("wild", (), recursive), pos + 1
        else:
            match = _NAME.match(text, pos)
            if match is None:
                raise JSONPathError(f"expected a member name at position {pos} in {query!r}")
            step, pos = _Step("name", (match.group(0),), recursive), match.end()
        steps.append(step)
    return tuple(steps)


def _is_array(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _descendants(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for child in value.values():
            yield from _descendants(child)
    elif _is_array(value):
        for child in value:
            yield from _descendants(child)


def _get_path(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        in_mapping = isinstance(value, Mapping) and not isinstance(part, int) and part in value
        in_array = _is_array(value) and isinstance(part, int) and -len(value) <= part < len(value)
        if not (in_mapping or in_array):
            return _MISSING
        value = value[part]
    return value


def _compare(left: Any, op: str, right: Any) -> bool:
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def _apply(step: _Step, node: Any) -> Iterator[Any]:
    kind = step.kind
    if kind == "name":
        if isinstance(node, Mapping):
            for name in step.args:
                if name in node:
                    yield node[name]
    elif kind == "wild":
        if isinstance(node, Mapping):
            yield from node.values()
        elif _is_array(node):
            yield from node
    elif kind == "index":
        if _is_array(node):
            for index in step.args:
                if -len(node) <= index < len(node):
                    yield node[index]
    elif kind == "slice":
        if _is_array(node):
            yield from node[slice(*step.args)]
    else:  # filter
        path, op, literal = step.args
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif _is_array(node):
            children = node
        else:
            return
        for child in children:
            found = _get_path(child, path)
            if found is _MISSING:
                continue
            if op is None or _compare(found, op, literal):
                yield child


def jsonpath_find(value: Any, query: str) -> list[Any]:
    """Return every value in ``value`` selected by ``query``, in document order.

    Raises:
        JSONPathError: the query is malformed.
    """
    nodes = [value]
    for step in compile_jsonpath(query):
        next_nodes: list[Any] = []
        for node in nodes:
            sources = _descendants(node) if step.recursive else (node,)
            for source in sources:
                next_nodes.extend(_apply(step, source))
        nodes = next_nodes
    return nodes
