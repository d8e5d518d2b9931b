"""Shell-safe rendering of command templates (``local-shell-cmd``'s ``cmd``).

Naive rendering of ``echo "{{ message }}"`` lets a message such as ``"; rm -rf ~; echo "``
run commands. :func:`render_shell_safe` instead rewrites every ``{{ expr }}`` so that its value
is escaped for the shell quoting context it lands in, determined by scanning the template's
literal text with POSIX ``sh`` quoting rules:

* inside ``"…"``: ``\\``, ``"``, ``$`` and ````` are backslash-escaped;
* inside ``'…'``: ``'`` becomes ``'\\''``;
* unquoted (also inside ``$( … )``): the value is quoted with :func:`shlex.quote`
  (``''`` for the empty string);
* inside a ``#`` comment: line breaks become spaces.

A benign value in quotes renders exactly as naive rendering would, so ``echo "{{ msg }}"``
prints the message literally, whatever it contains.

Opt-out: ``{{ fragment | shell_unsafe }}`` (as the *last* filter) inserts the value unescaped —
for parameters that are meant to be shell code.

Refused (raises :class:`~squall.errors.ExpressionError`), because no escaping is sound there:
an expression inside backticks (use ``$( … )``), right after a backslash, or after a
here-document operator ``<<``.

Limitation: ``{% if %}``/``{% for %}`` bodies are scanned in template order, as if every branch
were rendered once; keep quotes balanced within each branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError

from squall.errors import ExpressionError
from squall.expr.jinja import compile_template, get_environment

__all__ = ["render_shell_safe", "rewrite_shell_template"]

_FILTER_FOR_STATE = {
    "U": "_squall_sh_unquoted",
    "D": "_squall_sh_double",
    "S": "_squall_sh_single",
    "C": "_squall_sh_comment",
}
_WORD_BREAKS = frozenset(" \t\n;&|()<>")


@dataclass
class _Frame:
    kind: str  # U (unquoted), S ('…'), D ("…"), C (comment)
    terminator: str | None = None  # for U frames opened by $( or `
    depth: int = 0  # nested plain parentheses inside a $( … ) frame


class _ShellScanner:
    """Tracks POSIX shell quoting state across the literal parts of a template."""

    def __init__(self) -> None:
        self.frames = [_Frame("U")]
        self.escaped = False  # the previous character was an escaping backslash
        self.heredoc = False
        self.last = "\n"

    @property
    def state(self) -> _Frame:
        return self.frames[-1]

    def in_backticks(self) -> bool:
        return any(frame.terminator == "`" for frame in self.frames)

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            ch = text[i]
            nxt = text[i + 1] if i + 1 < len(text) else ""
            top = self.frames[-1]
            if self.escaped:
                self.escaped = False
            elif top.kind == "C":
                if ch == "\n":
                    self.frames.pop()
            elif top.kind == "S":
                if ch == "'":
                    self.frames.pop()
            elif top.kind == "D":
                if ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.frames.pop()
                elif ch == "$" and nxt == "(":
                    self.frames.append(_Frame("U", ")"))
                    i += 1
                elif ch == "`":
                    self.frames.append(_Frame("U", "`"))
            else:
                i = self._feed_unquoted(top, ch, nxt, text, i)
            self.last = text[i]
            i += 1

    def _feed_unquoted(self, top: _Frame, ch: str, nxt: str, text: str, i: int) -> int:
        if ch == "\\":
            self.escaped = True
        elif ch == "'":
            self.frames.append(_Frame("S"))
        elif ch == '"':
            self.frames.append(_Frame("D"))
        elif ch == "`":
            if top.terminator == "`":
                self.frames.pop()
            else:
                self.frames.append(_Frame("U", "`"))
        elif ch == "$" and nxt == "(":
            self.frames.append(_Frame("U", ")"))
            return i + 1
        elif ch == "(":
            top.depth += 1
        elif ch == ")":
            if top.depth:
                top.depth -= 1
            elif top.terminator == ")":
                self.frames.pop()
        elif ch == "#" and self.last in _WORD_BREAKS:
            self.frames.append(_Frame("C"))
        elif ch == "<" and nxt == "<":
            if text[i + 2 : i + 3] == "<":  # <<< is a here-string: an ordinary word follows
                return i + 2
            self.heredoc = True
            return i + 1
        return i


def _expression_filter(scanner: _ShellScanner, template: str, lineno: int) -> str:
    where = f"in shell command template {template!r} (line {lineno})"
    if scanner.escaped:
        raise ExpressionError(f"a {{{{ }}}} right after a backslash is ambiguous {where}")
    if scanner.state.kind != "S" and scanner.in_backticks():
        raise ExpressionError(
            f"{{{{ }}}} inside backticks cannot be escaped safely {where}",
            hint="use $( … ) instead of backticks",
        )
    if scanner.heredoc:
        raise ExpressionError(
            f"{{{{ }}}} after a here-document (<<) cannot be escaped safely {where}",
            hint="pass the value through a parameter or an environment variable",
        )
    return _FILTER_FOR_STATE[scanner.state.kind]


@lru_cache(maxsize=1024)
def rewrite_shell_template(template: str) -> str:
    """Rewrite ``template`` so each ``{{ expr }}`` escapes its value for its quoting context.

    Returns:
        An equivalent Jinja template with an escaping filter applied to every expression
        (``{{ (expr) | _squall_sh_double }}`` …).

    Raises:
        ExpressionError: the template does not parse, or an expression sits where no escaping
            is sound (backticks, after a backslash, after ``<<``).
    """
    compile_template(template)  # reports syntax errors with the template's own text
    env = get_environment()
    scanner = _ShellScanner()
    out: list[str] = []
    expression: list[str] | None = None
    try:
        for lineno, token, value in env.lex(template):
            if token == "variable_begin":
                expression = []
                out.append(value)
            elif token == "variable_end":
                inner = "".join(expression or []).strip()
                escape = _expression_filter(scanner, template, lineno)
                out.append(f" ({inner}) | {escape} {value}")
                expression = None
            elif expression is not None:
                expression.append(value)
            else:
                if token == "data":
                    scanner.feed(value)
                out.append(value)
    except TemplateSyntaxError as exc:  # pragma: no cover - compile_template caught it
        raise ExpressionError(f"Invalid Jinja template {template!r}: {exc.message}") from exc
    return "".join(out)


def render_shell_safe(template: str, context: Mapping[str, Any]) -> str:
    """Render a shell command template so substituted values cannot inject shell syntax.

    Args:
        template: A command such as ``echo "{{ message }}"``.
        context: Template variables.

    Returns:
        The command; each value is escaped for the quoting context it appears in.

    Raises:
        ExpressionError: rendering failed or an expression is in an unsupported position.
    """
    rewritten = rewrite_shell_template(template)
    try:
        return compile_template(rewritten).render(context)
    except ExpressionError as exc:
        # Report the user's template, not the escaping rewrite of it.
        message = exc.message.replace(rewritten, template)
        for name in _FILTER_FOR_STATE.values():
            message = message.replace(f" | {name}", "")
        raise ExpressionError(message, hint=exc.hint) from exc
