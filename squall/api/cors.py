"""CORS from a configured allow-list only (``SQUALL_CORS_ORIGINS``).

StackStorm reflected any origin, ``null`` included, with credentials (CVE-2019-9580,
st2#6390). Here an origin is allowed only when it is listed exactly; ``*`` and ``null`` are
refused at start, and with no origins configured no CORS headers are sent at all (same-origin
only). Allowed origins get credentials, the auth headers, and the pagination headers exposed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from squall.errors import ValidationError

__all__ = ["add_cors", "check_origins"]

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def check_origins(origins: Sequence[str]) -> list[str]:
    """The normalized origins; raises :class:`ValidationError` for unsafe or malformed ones."""
    out: list[str] = []
    for origin in origins:
        value = origin.strip().rstrip("/")
        if value in ("*", "null") or not _ORIGIN.match(value):
            raise ValidationError(
                f"SQUALL_CORS_ORIGINS: {origin!r} is not an allowed origin",
                hint="list exact origins such as https://ui.example.com:8443; "
                "'*' and 'null' are refused",
            )
        out.append(value)
    return out


def add_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Install the CORS middleware when origins are configured."""
    allowed = check_origins(origins)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=[
            "Content-Type",
            "X-Auth-Token",
            "St2-Api-Key",
            "St2-Context",
            "Last-Event-ID",
        ],
        expose_headers=["X-Total-Count", "X-Limit"],
        max_age=600,
    )
