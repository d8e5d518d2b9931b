"""The CLI's HTTP client: finds the server and credentials, keeps a token, maps errors.

Credentials, in order: ``SQUALL_API_KEY``, ``SQUALL_TOKEN`` (or ``ST2_API_KEY`` /
``ST2_AUTH_TOKEN``), a cached token from ``squall login``, then the admin credentials file
``$SQUALL_HOME/credentials`` that ``squall up`` writes on first start.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ApiError", "Client", "token_cache_path"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_AUTH = 4


class ApiError(Exception):
    """A request failed; ``exit_code`` is what the CLI should exit with."""

    def __init__(self, message: str, *, status: int | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.status = status
        self.exit_code = exit_code


def token_cache_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "squall" / "tokens.json"


@dataclass
class _Creds:
    user: str
    password: str


class Client:
    """Synchronous client for the Squall API."""

    def __init__(self, url: str | None = None, *, timeout: float = 30.0) -> None:
        env = os.environ
        self.url = (url or env.get("SQUALL_URL") or self._url_from_credentials()).rstrip("/")
        self.home = Path(env.get("SQUALL_HOME") or ".squall")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._headers: dict[str, str] = {}
        self._authenticated = False

    @staticmethod
    def _url_from_credentials() -> str:
        home = Path(os.environ.get("SQUALL_HOME") or ".squall")
        try:
            data = json.loads((home / "credentials").read_text())
            return str(data.get("url") or "http://127.0.0.1:9101")
        except (OSError, ValueError):
            return "http://127.0.0.1:9101"

    # --- credentials ------------------------------------------------------------------------

    def _cached_token(self) -> str | None:
        try:
            data = json.loads(token_cache_path().read_text())
        except (OSError, ValueError):
            return None
        entry = data.get(self.url)
        if not entry or entry.get("expires", 0) < time.time() + 60:
            return None
        return str(entry["token"])

    def save_token(self, token: str, user: str, expires: float) -> None:
        path = token_cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[self.url] = {"token": token, "user": user, "expires": expires}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)

    def _file_credentials(self) -> _Creds | None:
        try:
            data = json.loads((self.home / "credentials").read_text())
        except (OSError, ValueError):
            return None
        if not data.get("user") or not data.get("password"):
            return None
        return _Creds(data["user"], data["password"])

    def login(self, user: str, password: str, *, ttl: int | None = None) -> dict[str, Any]:
        """Exchange a password for a token (and cache it)."""
        try:
            resp = self._http.post(
                "/auth/v1/tokens", auth=(user, password), json={"ttl": ttl} if ttl else {}
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        body = self._check(resp)
        from datetime import datetime

        expiry = datetime.fromisoformat(body["expiry"].replace("Z", "+00:00")).timestamp()
        self.save_token(body["token"], body["user"], expiry)
        self._headers = {"X-Auth-Token": body["token"]}
        self._authenticated = True
        return dict(body)

    def logout(self) -> None:
        """Revoke the cached token (``DELETE /auth/v1/tokens``) and forget it."""
        token = self._cached_token()
        if token is not None:
            try:
                self._http.delete("/auth/v1/tokens", headers={"X-Auth-Token": token})
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
        path = token_cache_path()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if data.pop(self.url, None) is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)

    def _authenticate(self) -> None:
        if self._authenticated:
            return
        env = os.environ
        key = env.get("SQUALL_API_KEY") or env.get("ST2_API_KEY")
        token = env.get("SQUALL_TOKEN") or env.get("ST2_AUTH_TOKEN")
        if key:
            self._headers = {"St2-Api-Key": key}
        elif token:
            self._headers = {"X-Auth-Token": token}
        elif cached := self._cached_token():
            self._headers = {"X-Auth-Token": cached}
        elif creds := self._file_credentials():
            self.login(creds.user, creds.password)
        else:
            raise ApiError(
                "not logged in: run `squall login USER`, or set SQUALL_API_KEY / SQUALL_TOKEN "
                f"(no credentials file in {self.home})",
                exit_code=EXIT_AUTH,
            )
        self._authenticated = True

    # --- requests ---------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> ApiError:
        return ApiError(
            f"cannot reach Squall at {self.url} ({type(exc).__name__}: {exc}); "
            "is `squall up` running? (set SQUALL_URL for another address)",
            exit_code=EXIT_UNAVAILABLE,
        )

    @staticmethod
    def _check(resp: httpx.Response) -> Any:
        if resp.status_code < 400:
            if not resp.content:
                return None
            if resp.headers.get("content-type", "").startswith("application/json"):
                return resp.json()
            return resp.text
        try:
            message = resp.json().get("faultstring") or resp.text
        except ValueError:
            message = resp.text or resp.reason_phrase
        code = EXIT_USAGE
        if resp.status_code in (401, 403):
            code = EXIT_AUTH
        elif resp.status_code >= 500:
            code = EXIT_UNAVAILABLE
        raise ApiError(
            f"{message} (HTTP {resp.status_code})", status=resp.status_code, exit_code=code
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        self._authenticate()
        for attempt in (1, 2):
            try:
                resp = self._http.request(
                    method, path, json=json_body, params=params, headers=self._headers
                )
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
            if resp.status_code == 401 and attempt == 1 and "X-Auth-Token" in self._headers:
                # A cached token may have been revoked or the server reset: log in again.
                creds = self._file_credentials()
                if creds is not None:
                    self.login(creds.user, creds.password)
                    continue
            if raw:
                self._check(resp)
                return resp
            return self._check(resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def get_with_total(self, path: str, **params: Any) -> tuple[Any, int | None]:
        resp = self.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}, raw=True
        )
        total = resp.headers.get("x-total-count")
        return resp.json(), int(total) if total is not None else None

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json_body=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request(
            "DELETE", path, params={k: v for k, v in params.items() if v is not None}
        )

    @contextlib.contextmanager
    def stream(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        read_timeout: float = 30.0,
        **params: Any,
    ) -> Iterator[httpx.Response]:
        """A streaming GET (server-sent events). Errors, including a broken connection while
        reading, raise :class:`ApiError` like :meth:`request`."""
        self._authenticate()
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        try:
            with self._http.stream(
                "GET",
                path,
                params={k: v for k, v in params.items() if v is not None},
                headers={**self._headers, **(headers or {})},
                timeout=timeout,
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._check(resp)
                yield resp
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def post_lines(
        self, path: str, body: Any, *, read_timeout: float = 60.0
    ) -> Iterator[dict[str, Any]]:
        """POST ``body`` asking for a stream of JSON lines (``application/x-ndjson``) and
        yield each line as it arrives (blank keep-alive lines are skipped)."""
        self._authenticate()
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        for attempt in (1, 2):
            try:
                with self._http.stream(
                    "POST",
                    path,
                    json=body,
                    headers={**self._headers, "Accept": "application/x-ndjson"},
                    timeout=timeout,
                ) as resp:
                    if resp.status_code == 401 and attempt == 1 and "X-Auth-Token" in self._headers:
                        creds = self._file_credentials()
                        if creds is not None:
                            self.login(creds.user, creds.password)
                            continue
                    if resp.status_code >= 400:
                        resp.read()
                        self._check(resp)
                    for line in resp.iter_lines():
                        if line.strip():
                            yield dict(json.loads(line))
                    return
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None

    def close(self) -> None:
        self._http.close()
