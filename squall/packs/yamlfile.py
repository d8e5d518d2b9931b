"""YAML loading that remembers where every key and item came from.

Pack metadata errors must point at a line. PyYAML's constructors throw the node marks away,
so this loader records, for each mapping and sequence it builds, the line of every key and
item, then flattens that into a ``path → line`` table while the objects are still alive.
The parse itself uses libyaml (``CSafeLoader``) when it is available.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from squall.errors import Issue, PackError

__all__ = [
    "YamlDocument",
    "YamlFileError",
    "YamlPath",
    "format_path",
    "load_yaml_file",
    "load_yaml_text",
]

#: A field path inside a document: mapping keys and sequence indexes.
YamlPath = tuple[Any, ...]

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlFileError(PackError):
    """A YAML file could not be read or parsed; ``issue`` says where and why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message, issues=[issue])
        self.issue = issue

    def __str__(self) -> str:
        return str(self.issue)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document with the line of every key and sequence item.

    Attributes:
        data: The plain Python value (dict, list, str, …) of the document.
        file: The file name used in issues (usually relative to the pack directory).
        lines: ``path → 1-based line`` for every mapping key and sequence item.
        duplicate_keys: Paths of keys that appear twice in one mapping (the last one wins,
            as in StackStorm, but it is almost always a mistake).
    """

    data: Any
    file: str
    lines: dict[YamlPath, int] = field(default_factory=dict, repr=False)
    duplicate_keys: list[tuple[YamlPath, int]] = field(default_factory=list, repr=False)

    def line_of(self, path: YamlPath) -> int | None:
        """Return the line of ``path``, or of its nearest ancestor that has one.

        Args:
            path: Keys and indexes from the document root, e.g. ``("parameters", "x")``.

        Returns:
            The 1-based line, or ``None`` when neither the path nor any parent is known.
        """
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def issue(self, path: YamlPath, message: str) -> Issue:
        """Build an :class:`Issue` located at ``path`` in this document."""
        return Issue(
            message=message,
            file=self.file,
            line=self.line_of(path),
            path=format_path(path) or None,
        )


def format_path(path: YamlPath) -> str:
    """Render a field path as ``a.b[0].c`` (the form used in issues)."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


class _MarkingLoader(_BaseLoader):
    """Safe loader that keeps each container with the node it was built from."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # id → (object, node); the object reference keeps the id from being reused.
        self.containers: dict[int, tuple[Any, yaml.Node]] = {}
        self.duplicates: list[tuple[int, yaml.Node]] = []


def _construct_map(loader: _MarkingLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    # Duplicates are found on the raw node, before merge keys (``<<``) are flattened in:
    # overriding a merged key is legitimate, writing the same key twice is not.
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                loader.duplicates.append((id(data), key_node))
            seen.add(ident)
    data.update(loader.construct_mapping(node))
    loader.containers[id(data)] = (data, node)


def _construct_seq(loader: _MarkingLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))
    loader.containers[id(data)] = (data, node)


_MarkingLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_MarkingLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _collect_lines(
    loader: _MarkingLoader, root: Any, root_line: int
) -> tuple[dict[YamlPath, int], dict[int, YamlPath]]:
    """Return ``path → line`` and ``container id → first path``.

    Each container is walked once, at the first path that reaches it: an alias elsewhere
    falls back to the line of the alias itself, and alias bombs stay linear.
    """
    lines: dict[YamlPath, int] = {(): root_line}
    where: dict[int, YamlPath] = {}
    stack: list[tuple[Any, YamlPath]] = [(root, ())]
    while stack:
        obj, path = stack.pop()
        entry = loader.containers.get(id(obj))
        if entry is None or id(obj) in where:
            continue
        where[id(obj)] = path
        node = entry[1]
        if isinstance(obj, dict):
            # After construction ``node.value`` holds merged pairs first, then the explicit
            # ones; the last occurrence of a key is the one in ``obj``.
            for key_node, _value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                try:
                    key = loader.construct_object(key_node)
                    if key not in obj:
                        continue
                except (TypeError, yaml.YAMLError):
                    continue
                lines[(*path, key)] = key_node.start_mark.line + 1
            stack.extend((value, (*path, key)) for key, value in obj.items())
        elif isinstance(obj, list):
            for index, item_node in enumerate(node.value[: len(obj)]):
                lines[(*path, index)] = item_node.start_mark.line + 1
            stack.extend((item, (*path, index)) for index, item in enumerate(obj))
    return lines, where


def _yaml_issue(exc: yaml.YAMLError, file: str, text: str) -> Issue:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    mark = problem_mark or context_mark
    if context and context_mark is not None and context_mark is not mark:
        # "while scanning a quoted scalar (started at line 6, column 14)": where to look.
        context += f" (started at line {context_mark.line + 1}, column {context_mark.column + 1})"
    reason = f"{context}, {problem}" if context else problem
    if mark is None:
        return Issue(message=f"invalid YAML: {reason}", file=file)
    # libyaml reports the end of the stream one line past the last one.
    last_line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    line = min(mark.line + 1, last_line)
    column = mark.column + 1 if mark.line + 1 <= last_line else None
    where = f" at column {column}" if column else " at the end of the file"
    return Issue(message=f"invalid YAML{where}: {reason}", file=file, line=line)


def load_yaml_text(text: str, file: str, *, allow_empty: bool = False) -> YamlDocument:
    """Parse one YAML document from ``text``, recording the line of every key.

    Args:
        text: The YAML source.
        file: The name to put in issues.
        allow_empty: Return ``data=None`` for an empty document instead of raising.

    Returns:
        The parsed :class:`YamlDocument`.

    Raises:
        YamlFileError: The text is not valid YAML, holds several documents, or is empty.
    """
    loader = _MarkingLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            if allow_empty:
                return YamlDocument(data=None, file=file)
            raise YamlFileError(Issue(message="file is empty", file=file, line=1))
        data = loader.construct_document(node)
        if data is None and not allow_empty:  # "---" alone, or a bare null
            raise YamlFileError(Issue(message="file is empty", file=file, line=1))
        lines, where = _collect_lines(loader, data, node.start_mark.line + 1)
        duplicates = [
            ((*where[cid], loader.construct_object(key_node)), key_node.start_mark.line + 1)
            for cid, key_node in loader.duplicates
            if cid in where
        ]
    except yaml.YAMLError as exc:
        raise YamlFileError(_yaml_issue(exc, file, text)) from None
    except RecursionError:
        raise YamlFileError(Issue(message="document is nested too deeply", file=file)) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, file=file, lines=lines, duplicate_keys=duplicates)


def load_yaml_file(
    path: Path, *, display_name: str | None = None, allow_empty: bool = False
) -> YamlDocument:
    """Read and parse a YAML file, keeping line numbers.

    Args:
        path: The file to read.
        display_name: The name to use in issues (default: ``str(path)``).
        allow_empty: Return a document whose ``data`` is ``None`` for an empty file (or one
            with only comments) instead of raising.

    Returns:
        The parsed :class:`YamlDocument`.

    Raises:
        YamlFileError: The file cannot be read, is not UTF-8, is empty or is malformed;
            the issue carries the file, the line and a readable reason.
    """
    file = display_name if display_name is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlFileError(
            Issue(message=f"cannot read file: {exc.strerror or exc}", file=file)
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlFileError(
            Issue(message=f"file is not valid UTF-8 (byte {exc.start})", file=file, line=line)
        ) from None
    return load_yaml_text(text, file, allow_empty=allow_empty)
