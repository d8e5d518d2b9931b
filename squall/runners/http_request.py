"""The ``http-request`` runner (``core.http``), on httpx.

Runner parameters: ``url`` (required), ``headers``, ``cookies``, ``allow_redirects`` (false),
``http_proxy`` / ``https_proxy``, ``username`` / ``password`` (basic auth),
``verify_ssl_cert`` (true), ``url_hosts_blacklist`` / ``url_hosts_whitelist`` (mutually
exclusive). Action parameters (``core.http``): ``method`` (GET), ``body``, ``params``,
``auth``, ``timeout`` (60 s), ``headers`` (merged over the runner's), and a file upload
(``file_content`` with ``file_name``/``file_path`` and ``file_content_type``, sent as
multipart form field named after the file).

Host lists — the deployment's (:class:`~squall.runners.registry.RunnerSettings`) first, then
the action's — are checked for the URL and for every redirect target before anything is sent.
Redirects are followed only with ``allow_redirects`` (at most 10).

Result: ``{status_code, body, parsed, headers}``; ``body`` is decoded JSON (``parsed: true``)
when the response's content type is JSON, the text otherwise. Status ``succeeded`` for 2xx
responses, ``failed`` otherwise or on a connection error (``{error}``), ``timeout`` when the
request timed out. Deviations from StackStorm: ``auth`` of the form ``name=value`` sets header
``name`` (anything else is sent as ``Authorization``); ``file_path`` is never read on the
runner host — the client fills ``file_content``.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import PurePath
from typing import Any

import httpx

from squall.errors import RunnerError
from squall.model.status import ExecutionStatus
from squall.runners.base import RunContext, Runner, RunResult
from squall.runners.http_hosts import HostRules

__all__ = ["HttpRequestRunner"]

_MAX_REDIRECTS = 10
_DEFAULT_BODY_LIMIT = 50 * 1024 * 1024


def _no_cookie_jar() -> CookieJar:
    """A jar that stores nothing: a shared client must not carry cookies between actions."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _str_map(value: Any, name: str) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise RunnerError(f"parameter {name!r} must be an object, got {type(value).__name__}")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


class HttpRequestRunner(Runner):
    """Sends one HTTP request per execution.

    Args:
        allow_hosts: deployment-wide allow list (empty: every host not denied).
        deny_hosts: deployment-wide deny list.
        body_limit: response bytes read at most; a larger body fails the run.
    """

    names = ("http-request",)

    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        deny_hosts: Sequence[str] = (),
        body_limit: int = _DEFAULT_BODY_LIMIT,
    ) -> None:
        self._deployment = HostRules(
            allow=allow_hosts,
            deny=deny_hosts,
            allow_name="the deployment's HTTP allow list",
            deny_name="the deployment's HTTP deny list",
        )
        self._body_limit = body_limit
        self._clients: dict[tuple[bool, str | None, str | None], httpx.AsyncClient] = {}

    async def run(self, ctx: RunContext) -> RunResult:
        """Send the request and report the response."""
        try:
            rules, request_kwargs, timeout = self._prepare(ctx)
            url = httpx.URL(request_kwargs.pop("url"))
            if url.scheme not in ("http", "https"):
                raise RunnerError(f"url must be http:// or https://, got {_shown(url)!r}")
            client = self._client(ctx.runner_parameters)
            request = client.build_request(url=url, timeout=timeout, **request_kwargs)
        except (RunnerError, httpx.InvalidURL, ValueError, TypeError) as exc:
            return _failed(getattr(exc, "message", None) or str(exc))
        follow = bool(ctx.runner_parameters.get("allow_redirects"))
        try:
            return await self._exchange(client, request, rules, follow)
        except httpx.TimeoutException as exc:
            error = f"request to {request.url.host} timed out after {timeout} seconds ({exc})"
            return RunResult(ExecutionStatus.TIMEOUT, {"error": error})
        except httpx.HTTPError as exc:
            return _failed(f"request to {request.url.host} failed: {type(exc).__name__}: {exc}")

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        rules: Sequence[HostRules],
        follow: bool,
    ) -> RunResult:
        for hop in range(_MAX_REDIRECTS + 1):
            for rule in rules:
                refusal = rule.refusal(request.url)
                if refusal:
                    what = "redirect target" if hop else "url"
                    return _failed(f"{what} {_shown(request.url)!r} refused: {refusal}")
            response = await client.send(request, stream=True)
            try:
                next_request = response.next_request
                if not (follow and response.is_redirect and next_request is not None):
                    return await self._result(response)
            finally:
                await response.aclose()
            request = next_request
        return _failed(f"more than {_MAX_REDIRECTS} redirects")

    async def _result(self, response: httpx.Response) -> RunResult:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._body_limit:
                return _failed(
                    f"response body is larger than {self._body_limit} bytes "
                    f"(status {response.status_code})"
                )
            chunks.append(chunk)
        raw = b"".join(chunks)
        encoding = response.charset_encoding or "utf-8"
        try:
            text = raw.decode(encoding, errors="replace")
        except LookupError:
            text = raw.decode("utf-8", errors="replace")
        body: Any = text
        parsed = False
        if _is_json(response.headers.get("content-type", "")) and text.strip():
            try:
                body, parsed = json.loads(text), True
            except ValueError:
                pass
        headers: dict[str, str] = {}
        for key, value in response.headers.raw:
            name, val = key.decode("latin-1"), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {val}" if name in headers else val
        result = {
            "status_code": response.status_code,
            "body": body,
            "parsed": parsed,
            "headers": headers,
        }
        ok = 200 <= response.status_code < 300
        return RunResult(ExecutionStatus.SUCCEEDED if ok else ExecutionStatus.FAILED, result)

    def _prepare(self, ctx: RunContext) -> tuple[list[HostRules], dict[str, Any], float]:
        rp, ap = ctx.runner_parameters, ctx.action_parameters
        if not rp.get("url"):
            raise RunnerError("runner parameter 'url' is required")
        if rp.get("url_hosts_blacklist") and rp.get("url_hosts_whitelist"):
            raise RunnerError(
                "url_hosts_blacklist and url_hosts_whitelist are mutually exclusive; "
                "set only one of them"
            )
        rules = [self._deployment] if self._deployment else []
        action_rules = HostRules(
            allow=rp.get("url_hosts_whitelist") or (), deny=rp.get("url_hosts_blacklist") or ()
        )
        if action_rules:
            rules.append(action_rules)

        headers = _str_map(rp.get("headers"), "headers") | _str_map(ap.get("headers"), "headers")
        auth_header = ap.get("auth")
        if auth_header:
            name, sep, value = str(auth_header).partition("=")
            if sep and name.strip() and " " not in name.strip():
                headers[name.strip()] = value
            else:
                headers["Authorization"] = str(auth_header)
        cookies = _str_map(rp.get("cookies"), "cookies")
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())

        kwargs: dict[str, Any] = {
            "method": str(ap.get("method") or "GET").upper(),
            "url": str(rp["url"]),
            "headers": headers,
            "params": {k: v for k, v in (ap.get("params") or {}).items() if v is not None},
        }
        body = ap.get("body")
        files = self._files(ap)
        if files:
            if body is not None and not isinstance(body, Mapping):
                raise RunnerError("with a file upload, body must be an object of form fields")
            kwargs["files"] = files
            if body:
                kwargs["data"] = {str(k): str(v) for k, v in body.items()}
        elif isinstance(body, Mapping | list):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = str(body).encode("utf-8")
        if rp.get("username"):
            # As a header, not an httpx auth flow: httpx drops the header on a redirect to
            # another origin, where an auth flow would send the password along.
            pair = f"{rp['username']}:{rp.get('password') or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        timeout = float(ap.get("timeout") or 60)
        return rules, kwargs, timeout

    @staticmethod
    def _files(ap: Mapping[str, Any]) -> dict[str, Any] | None:
        content = ap.get("file_content")
        path = ap.get("file_path")
        if content is None:
            if path:
                raise RunnerError(
                    "file_path is not read on the runner host: pass the file's data in "
                    "file_content (the st2/squall CLI does this for you)"
                )
            return None
        name = str(ap.get("file_name") or (PurePath(str(path)).name if path else "file"))
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        content_type = ap.get("file_content_type")
        value = (name, data, str(content_type)) if content_type else (name, data)
        return {name: value}

    def _client(self, rp: Mapping[str, Any]) -> httpx.AsyncClient:
        verify = rp.get("verify_ssl_cert")
        verify = True if verify is None else bool(verify)
        http_proxy = rp.get("http_proxy") or None
        https_proxy = rp.get("https_proxy") or None
        key = (verify, http_proxy, https_proxy)
        client = self._clients.get(key)
        if client is None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
            if http_proxy:
                mounts["http://"] = httpx.AsyncHTTPTransport(proxy=http_proxy, verify=context)
            if https_proxy:
                mounts["https://"] = httpx.AsyncHTTPTransport(proxy=https_proxy, verify=context)
            client = httpx.AsyncClient(
                verify=context,
                follow_redirects=False,
                cookies=_no_cookie_jar(),
                mounts=mounts or None,
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        """Close the pooled HTTP connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _shown(url: httpx.URL) -> str:
    """``url`` for messages: without user:password@."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def _failed(message: str) -> RunResult:
    return RunResult(ExecutionStatus.FAILED, {"error": message})
