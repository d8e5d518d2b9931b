"""Criteria operators with StackStorm's semantics.

Each operator *binds* a pattern once — validating it and precomputing what it can (compiled
regexes, lower-cased strings, membership sets) — and returns a predicate
``(value, ctx) -> bool`` evaluated per event. Names are case-insensitive; aliases map to the
same operator.

Semantics (StackStorm's, with the differences listed):

* A pattern of ``None`` (a template that rendered to nothing) makes every operator false
  except ``nequals``, ``exists`` and ``nexists``.
* A value of ``None`` (an explicit JSON ``null``) is false for the string, ordering, time and
  membership-in-string operators, where StackStorm raised ``TypeError`` and recorded a failed
  enforcement. ``equals``/``nequals``/``inside``/``ninside`` over containers compare it as is.
* A type mismatch StackStorm would raise on (``icontains`` on a list, ``startswith`` on a
  number, ``lessthan`` between a string and a list …) raises :class:`OperatorTypeError`; the
  rules engine records it as a failed enforcement, as StackStorm does.
* ``lessthan``/``greaterthan``/``timediff_*`` compare a number with a *numeric string*
  numerically. StackStorm raised ``TypeError`` there (Python 3 refuses ``10 < "5"``), so this
  only turns an error into an answer. Two strings still compare lexically, as in StackStorm.
* ``timediff_lt``/``timediff_gt`` accept ISO-8601 strings (with or without offset; naive means
  UTC), epoch seconds (numbers or numeric strings) and ``datetime`` objects.
* ``contains``/``ncontains`` work on strings (substring), lists (membership) and objects
  (key membership); ``inside``/``ninside`` are their mirror image (value in pattern).

A key path that does not exist is handled by the caller: every operator is false except
``nexists`` (see :mod:`squall.rules.criteria`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from squall.rules._coerce import OperatorTypeError, as_number, parse_timestamp

__all__ = [
    "OPERATORS",
    "SEARCH",
    "SEARCH_CONDITIONS",
    "Clock",
    "Operator",
    "OperatorTypeError",
    "PatternError",
    "Predicate",
    "get_operator",
    "operator_names",
    "parse_timestamp",
]

SEARCH = "search"
#: ``search`` conditions: (item quantifier, pattern quantifier) — see the criteria module.
SEARCH_CONDITIONS: Mapping[str, tuple[Callable[..., bool], Callable[..., bool]]] = {
    "any": (any, all),
    "all": (all, all),
    "all2any": (all, any),
    "any2any": (any, any),
}


class Clock(Protocol):
    """What a predicate may read from the evaluation context: the current time."""

    @property
    def now(self) -> datetime: ...


Predicate = Callable[[Any, Clock], bool]


class PatternError(ValueError):
    """The pattern cannot be used with the operator (bad regex, wrong type)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """One criteria operator.

    Attributes:
        name: The canonical (long) name.
        aliases: Other accepted names.
        bind: Validates a pattern and returns the predicate; raises :class:`PatternError`.
        needs_pattern: Whether a rule must give a ``pattern``.
        when_missing: The result when the key path does not exist.
    """

    name: str
    aliases: tuple[str, ...]
    bind: Callable[[Any], Predicate]
    needs_pattern: bool = True
    when_missing: bool = False


def _false(value: Any, ctx: Clock) -> bool:
    return False


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _mismatch(op: str, value: Any, wanted: str) -> OperatorTypeError:
    return OperatorTypeError(f"{op} needs {wanted} value, got {_tname(value)} {value!r:.80}")


def _str_pattern(op: str, pattern: Any) -> str:
    if not isinstance(pattern, str):
        raise PatternError(f"{op} needs a string pattern, got {_tname(pattern)} {pattern!r:.80}")
    return pattern


# --- equality ---------------------------------------------------------------------------------


def _bind_equals(pattern: Any) -> Predicate:
    if pattern is None:
        return _false
    return lambda v, ctx: v == pattern


def _bind_nequals(pattern: Any) -> Predicate:
    return lambda v, ctx: v != pattern


def _bind_iequals(pattern: Any) -> Predicate:
    if pattern is None:
        return _false
    lowered = _str_pattern("iequals", pattern).lower()

    def iequals(v: Any, ctx: Clock) -> bool:
        if isinstance(v, str):
            return v.lower() == lowered
        if v is None:
            return False
        raise _mismatch("iequals", v, "a string")

    return iequals


# --- containment ------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, dict, set, frozenset)


def _bind_contains(name: str, negate: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        pattern_is_str = isinstance(pattern, str)

        def contains(v: Any, ctx: Clock) -> bool:
            if isinstance(v, str):
                if not pattern_is_str:
                    raise OperatorTypeError(
                        f"{name}: cannot look for a {_tname(pattern)} inside a string"
                    )
                return (pattern in v) != negate
            if isinstance(v, _CONTAINERS):
                try:
                    return (pattern in v) != negate
                except TypeError as exc:
                    raise OperatorTypeError(f"{name}: {exc}") from None
            if v is None:
                return False
            raise _mismatch(name, v, "a string, list or object")

        return contains

    return bind


def _bind_icontains(name: str, negate: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        lowered = _str_pattern(name, pattern).lower()

        def icontains(v: Any, ctx: Clock) -> bool:
            if isinstance(v, str):
                return (lowered in v.lower()) != negate
            if v is None:
                return False
            raise _mismatch(name, v, "a string")

        return icontains

    return bind


def _bind_affix(name: str, suffix: bool, fold: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        pat = _str_pattern(name, pattern)
        if fold:
            pat = pat.lower()

        def affix(v: Any, ctx: Clock) -> bool:
            if isinstance(v, str):
                if fold:
                    v = v.lower()
                return v.endswith(pat) if suffix else v.startswith(pat)
            if v is None:
                return False
            raise _mismatch(name, v, "a string")

        return affix

    return bind


def _bind_inside(name: str, negate: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        if isinstance(pattern, str):

            def in_string(v: Any, ctx: Clock) -> bool:
                if isinstance(v, str):
                    return (v in pattern) != negate
                if v is None:
                    return False
                raise _mismatch(name, v, "a string (the pattern is a string)")

            return in_string
        if not isinstance(pattern, _CONTAINERS):
            raise PatternError(
                f"{name} needs a list, object or string pattern, got {_tname(pattern)}"
            )
        container: Any = pattern
        if isinstance(pattern, list | tuple):
            try:
                container = frozenset(pattern)  # same answers as the list for hashable values
            except TypeError:
                container = pattern

        def in_container(v: Any, ctx: Clock) -> bool:
            try:
                return (v in container) != negate
            except TypeError:
                if container is not pattern and not isinstance(pattern, Mapping):
                    return (v in pattern) != negate  # an unhashable value: compare item by item
                raise OperatorTypeError(f"{name}: {_tname(v)} cannot be a key") from None

        return in_container

    return bind


# --- ordering ---------------------------------------------------------------------------------


def _bind_order(name: str, less: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        pattern_number = as_number(pattern)

        def order(v: Any, ctx: Clock) -> bool:
            if v is None:
                return False
            try:
                return bool(v < pattern) if less else bool(v > pattern)
            except TypeError:
                number = as_number(v)
                if number is None or pattern_number is None:
                    raise OperatorTypeError(
                        f"{name}: cannot compare {_tname(v)} {v!r:.80} with "
                        f"{_tname(pattern)} {pattern!r:.80}"
                    ) from None
                return number < pattern_number if less else number > pattern_number

        return order

    return bind


# --- patterns ---------------------------------------------------------------------------------


def _compile(name: str, pattern: Any, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(_str_pattern(name, pattern), flags)
    except re.error as exc:
        raise PatternError(f"{name}: invalid regular expression {pattern!r}: {exc}") from None


def _bind_regex(name: str, flags: int, anchored: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        rx = _compile(name, pattern, flags)
        find = rx.match if anchored else rx.search

        def regex(v: Any, ctx: Clock) -> bool:
            if isinstance(v, str):
                return find(v) is not None
            if v is None:
                return False
            raise _mismatch(name, v, "a string")

        return regex

    return bind


def _bind_wildcard(pattern: Any) -> Predicate:
    if pattern is None:
        return _false
    # POSIX fnmatch is case-sensitive (normcase is the identity), as on StackStorm's hosts.
    match = re.compile(fnmatch.translate(_str_pattern("matchwildcard", pattern))).match

    def wildcard(v: Any, ctx: Clock) -> bool:
        if isinstance(v, str):
            return match(v) is not None
        if v is None:
            return False
        raise _mismatch("matchwildcard", v, "a string")

    return wildcard


# --- time -------------------------------------------------------------------------------------


def _bind_timediff(name: str, less: bool) -> Callable[[Any], Predicate]:
    def bind(pattern: Any) -> Predicate:
        if pattern is None:
            return _false
        seconds = as_number(pattern)
        if seconds is None:
            raise PatternError(f"{name} needs a number of seconds, got {pattern!r:.80}")

        def timediff(v: Any, ctx: Clock) -> bool:
            if v is None:
                return False
            age = (ctx.now - parse_timestamp(v)).total_seconds()
            return age < seconds if less else age > seconds

        return timediff

    return bind


# --- existence --------------------------------------------------------------------------------


def _bind_exists(pattern: Any) -> Predicate:
    return lambda v, ctx: v is not None


def _bind_nexists(pattern: Any) -> Predicate:
    return lambda v, ctx: v is None


def _bind_search(pattern: Any) -> Predicate:
    raise PatternError("search is evaluated by the criteria compiler, not bound directly")


_ALL: tuple[Operator, ...] = (
    Operator("equals", ("eq",), _bind_equals),
    Operator("nequals", ("neq",), _bind_nequals),
    Operator("iequals", ("ieq",), _bind_iequals),
    Operator("contains", (), _bind_contains("contains", False)),
    Operator("ncontains", (), _bind_contains("ncontains", True)),
    Operator("icontains", (), _bind_icontains("icontains", False)),
    Operator("incontains", (), _bind_icontains("incontains", True)),
    Operator("startswith", (), _bind_affix("startswith", suffix=False, fold=False)),
    Operator("istartswith", (), _bind_affix("istartswith", suffix=False, fold=True)),
    Operator("endswith", (), _bind_affix("endswith", suffix=True, fold=False)),
    Operator("iendswith", (), _bind_affix("iendswith", suffix=True, fold=True)),
    Operator("lessthan", ("lt",), _bind_order("lessthan", less=True)),
    Operator("greaterthan", ("gt",), _bind_order("greaterthan", less=False)),
    Operator("matchwildcard", (), _bind_wildcard),
    Operator("regex", (), _bind_regex("regex", 0, anchored=False)),
    Operator("iregex", (), _bind_regex("iregex", re.IGNORECASE, anchored=False)),
    Operator("matchregex", (), _bind_regex("matchregex", re.DOTALL, anchored=True)),
    Operator("timediff_lt", ("td_lt",), _bind_timediff("timediff_lt", less=True)),
    Operator("timediff_gt", ("td_gt",), _bind_timediff("timediff_gt", less=False)),
    Operator("exists", (), _bind_exists, needs_pattern=False),
    Operator("nexists", (), _bind_nexists, needs_pattern=False, when_missing=True),
    Operator("inside", ("in",), _bind_inside("inside", False)),
    Operator("ninside", ("nin",), _bind_inside("ninside", True)),
    Operator(SEARCH, (), _bind_search),
)

#: Every accepted name (lower-case), aliases included, to its operator.
OPERATORS: Mapping[str, Operator] = {name: op for op in _ALL for name in (op.name, *op.aliases)}


def operator_names() -> list[str]:
    """All accepted operator names, aliases included, sorted."""
    return sorted(OPERATORS)


def get_operator(name: str) -> Operator:
    """Look an operator up by name or alias, case-insensitively.

    Raises:
        KeyError: no such operator; the message lists the valid names.
    """
    op = OPERATORS.get(name.lower()) if isinstance(name, str) else None
    if op is None:
        raise KeyError(f"unknown operator {name!r}; valid operators: {', '.join(operator_names())}")
    return op
