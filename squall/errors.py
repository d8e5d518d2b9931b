"""Squall's exception hierarchy.

One root, :class:`SquallError`, and three branches:

* :class:`InfrastructureError` — the world failed us (database, network, subprocess).
* :class:`DomainError` — the user's input or content is wrong (packs, parameters, rules,
  workflows, expressions). These carry enough context to say *what*, *where* and *how to fix*.
* :class:`ControlFlow` — not failures: signals used by services (retry later, abandoned).

API adapters map domain errors to 4xx and infrastructure errors to 5xx/503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Abandoned",
    "AuthError",
    "ConflictError",
    "ControlFlow",
    "DomainError",
    "ExpressionError",
    "InfrastructureError",
    "Issue",
    "NotFoundError",
    "PackError",
    "ParameterError",
    "PermissionDenied",
    "Retry",
    "RuleError",
    "RunnerError",
    "SquallError",
    "StoreError",
    "ValidationError",
    "WorkflowError",
]


class SquallError(Exception):
    """Root of every error Squall raises on purpose."""

    #: HTTP status an API adapter should answer with.
    http_status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


# --- infrastructure -------------------------------------------------------------------------


class InfrastructureError(SquallError):
    """A dependency failed: database, network, filesystem, subprocess."""

    http_status = 503


class StoreError(InfrastructureError):
    """The database failed or is unreachable."""


class RunnerError(InfrastructureError):
    """A runner could not start or supervise the action's process."""

    http_status = 500


# --- domain ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One precise problem in user input: where it is, what is wrong, what is expected.

    ``file`` and ``line`` locate the problem in a source file (1-based line); ``path`` is the
    field path inside the document (``parameters.cmd.type``).
    """

    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
        if self.path:
            where = f"{where}: {self.path}" if where else self.path
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class DomainError(SquallError):
    """The input is wrong. Carries zero or more :class:`Issue` for precise locations."""

    http_status = 400

    def __init__(
        self, message: str, *, issues: list[Issue] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.issues = list(issues or [])

    def __str__(self) -> str:
        base = super().__str__()
        if not self.issues:
            return base
        lines = [base, *(f"  - {issue}" for issue in self.issues)]
        return "\n".join(lines)


class ValidationError(DomainError):
    """A document or request body does not match its schema."""


class ParameterError(ValidationError):
    """Action parameters are missing, mistyped, immutable or cannot be rendered."""


class PackError(DomainError):
    """A pack or one of its files is invalid."""


class RuleError(DomainError):
    """A rule is invalid or cannot be evaluated."""


class WorkflowError(DomainError):
    """A workflow definition is invalid or failed at run time."""


class ExpressionError(DomainError):
    """A Jinja or YAQL expression failed to parse or evaluate."""


class NotFoundError(DomainError):
    """A referenced object does not exist."""

    http_status = 404


class ConflictError(DomainError):
    """The request conflicts with the current state (duplicate, wrong status)."""

    http_status = 409


class AuthError(DomainError):
    """Missing or invalid credentials."""

    http_status = 401


class PermissionDenied(DomainError):
    """Authenticated, but not allowed."""

    http_status = 403


# --- control flow ---------------------------------------------------------------------------


class ControlFlow(SquallError):
    """Signals between services; never shown to users as failures."""


class Retry(ControlFlow):
    """Try the unit of work again later (``delay`` seconds)."""

    def __init__(self, message: str = "retry", *, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay


class Abandoned(ControlFlow):
    """The worker that held this work is gone; the work will not complete."""
