"""Criteria key paths: ``trigger.body.x``, ``trigger.headers['X-Foo']``, ``trigger.items[0]``.

A key names a value inside ``{"trigger": payload}`` (or ``{"item": element}`` inside a
``search`` criterion). The grammar is the subset of JSONPath StackStorm rules use:

* dotted names: ``trigger.body.status`` (a name is any run of characters other than
  ``. [ ] ' " #`` and whitespace, so ``trigger.headers.X-Foo`` works);
* bracketed, quoted names: ``trigger.headers['X-Foo']``, ``trigger["a.b"]`` (``\\`` escapes);
* list indexes: ``trigger.items[0]``, ``trigger.items[-1]``; a dotted all-digit name
  (``trigger.items.0``) indexes a list and names a key in an object;
* a ``#tag`` suffix outside quotes is stripped (``trigger.x#1``, ``trigger.x#2``) so one key
  can appear several times in a YAML mapping.

A path that does not resolve yields :data:`MISSING`; looking a value up never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MISSING", "KeyPath", "KeyPathError", "parse_key"]


class _Missing:
    """The type of :data:`MISSING`: a key path that does not resolve."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Returned by lookups when the path does not exist in the document.
MISSING: Final[Any] = _Missing()

_SPECIAL = frozenset(".[]'\"#")


class KeyPathError(ValueError):
    """A key path is malformed; the message says where."""


Step = str | int


@dataclass(frozen=True, slots=True)
class KeyPath:
    """A parsed key path.

    Attributes:
        key: The key as written, including any ``#tag``.
        path: The key without its ``#tag``.
        root: The first name (``trigger`` or ``item``).
        steps: Names (``str``) and list indexes (``int``) after the root.
        tag: The text after ``#``, or None.
        getter: The compiled lookup (``root_value -> value | MISSING``).
    """

    key: str
    path: str
    root: str
    steps: tuple[Step, ...]
    tag: str | None
    getter: Callable[[Any], Any] = field(repr=False, compare=False)

    def get(self, root_value: Any) -> Any:
        """Return the value at this path under ``root_value``, or :data:`MISSING`.

        Args:
            root_value: The value the root name stands for (the trigger payload).
        """
        return self.getter(root_value)


def parse_key(key: str, *, roots: tuple[str, ...] = ("trigger",)) -> KeyPath:
    """Parse a criteria key path.

    Args:
        key: The key as written in the rule (``trigger.headers['X-Foo']#2``).
        roots: The root names allowed (``trigger``; ``item`` inside ``search``).

    Returns:
        The parsed path with a compiled lookup function.

    Raises:
        KeyPathError: the key is malformed or starts with another root.
    """
    if not isinstance(key, str) or not key.strip():
        raise KeyPathError("a criteria key must be a non-empty string")
    text = key
    pos = 0
    n = len(text)
    names: list[Step] = []
    tag: str | None = None

    def fail(msg: str) -> KeyPathError:
        return KeyPathError(f"malformed key {key!r} at position {pos}: {msg}")

    def read_name() -> str:
        nonlocal pos
        start = pos
        while pos < n and text[pos] not in _SPECIAL and not text[pos].isspace():
            pos += 1
        if pos == start:
            raise fail("expected a name")
        return text[start:pos]

    def read_quoted() -> str:
        nonlocal pos
        quote = text[pos]
        pos += 1
        out: list[str] = []
        while pos < n:
            ch = text[pos]
            if ch == "\\" and pos + 1 < n:
                out.append(text[pos + 1])
                pos += 2
                continue
            if ch == quote:
                pos += 1
                return "".join(out)
            out.append(ch)
            pos += 1
        raise fail("unterminated quoted name")

    root = read_name()
    end = n
    if root not in roots:
        allowed = " or ".join(f"'{r}.'" for r in roots)
        raise KeyPathError(f"malformed key {key!r}: criteria keys start with {allowed}")
    while pos < n:
        ch = text[pos]
        if ch == "#":
            tag = text[pos + 1 :]
            end = pos
            break
        if ch == ".":
            pos += 1
            if pos < n and text[pos] in "'\"":
                names.append(read_quoted())
            else:
                names.append(read_name())
        elif ch == "[":
            pos += 1
            if pos < n and text[pos] in "'\"":
                names.append(read_quoted())
            else:
                start = pos
                while pos < n and text[pos] != "]":
                    pos += 1
                raw = text[start:pos].strip()
                try:
                    names.append(int(raw))
                except ValueError:
                    raise fail(f"expected a quoted name or an integer index, got {raw!r}") from None
            if pos >= n or text[pos] != "]":
                raise fail("expected ']'")
            pos += 1
        else:
            raise fail(f"unexpected {ch!r}")
    steps = tuple(names)
    return KeyPath(
        key=key,
        path=text[:end],
        root=root,
        steps=steps,
        tag=tag,
        getter=_compile_getter(steps),
    )


def _is_index(step: Step) -> bool:
    if isinstance(step, int):
        return True
    s = step[1:] if step.startswith("-") else step
    return s.isdigit()


def _walk(value: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        if isinstance(value, dict):
            try:
                value = value[step]
            except KeyError:
                return MISSING
            except TypeError:  # unhashable never happens for str/int; defensive
                return MISSING
        elif isinstance(value, list | tuple):
            if isinstance(step, str):
                if not _is_index(step):
                    return MISSING
                step = int(step)
            try:
                value = value[step]
            except IndexError:
                return MISSING
        elif hasattr(value, "__getitem__") and hasattr(value, "keys"):  # other Mappings
            try:
                value = value[step]
            except (KeyError, TypeError):
                return MISSING
        else:
            return MISSING
    return value


def _compile_getter(steps: tuple[Step, ...]) -> Callable[[Any], Any]:
    """A lookup function specialised for the path's length.

    Paths of plain names (the common case) index directly and treat any failure as missing:
    a ``str`` or ``list`` indexed by a non-numeric name raises ``TypeError``, which is exactly
    "does not exist". Paths with indexes go through the general walker, which refuses to index
    strings and distinguishes lists from objects.
    """
    if any(_is_index(s) for s in steps):
        return lambda root: _walk(root, steps)
    missing = MISSING
    errors = (KeyError, TypeError, IndexError)
    if not steps:
        return lambda root: root
    if len(steps) == 1:
        (a,) = steps

        def get1(root: Any) -> Any:
            try:
                return root[a]
            except errors:
                return missing

        return get1
    if len(steps) == 2:
        a, b = steps

        def get2(root: Any) -> Any:
            try:
                return root[a][b]
            except errors:
                return missing

        return get2
    if len(steps) == 3:
        a, b, c = steps

        def get3(root: Any) -> Any:
            try:
                return root[a][b][c]
            except errors:
                return missing

        return get3

    def getn(root: Any) -> Any:
        try:
            for s in steps:
                root = root[s]
        except errors:
            return missing
        return root

    return getn
