"""http-request against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from squall.model.status import ExecutionStatus
from squall.runners.http_request import HttpRequestRunner

pytestmark = pytest.mark.timeout(60)


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str, extra=()) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, doc: object, extra=()) -> None:
                self._send(code, json.dumps(doc).encode(), "application/json", extra)

            def _handle(self) -> None:
                url = urlsplit(self.path)
                server.requests.append((self.command, url.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if url.path == "/json":
                    self._json(200, {"hello": "world"}, [("X-Custom", "yes")])
                elif url.path == "/echo":
                    self._json(
                        200,
                        {
                            "method": self.command,
                            "query": parse_qs(url.query),
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body.decode("utf-8", "replace"),
                        },
                    )
                elif url.path == "/text":
                    self._send(200, "plain ü".encode(), "text/plain; charset=utf-8")
                elif url.path == "/redirect":
                    self._send(302, b"", "text/plain", [("Location", "/json")])
                elif url.path == "/redirect-localhost":
                    port = self.server.server_address[1]
                    target = f"http://localhost:{port}/json"
                    self._send(302, b"", "text/plain", [("Location", target)])
                elif url.path.startswith("/status/"):
                    code = int(url.path.rsplit("/", 1)[1])
                    self._json(code, {"error": "nope"})
                elif url.path == "/slow":
                    server.release.wait(30)
                    self._json(200, {"late": True})
                else:
                    self._send(404, b"not found", "text/plain")

            def do_GET(self) -> None:
                self._handle()

            do_POST = do_PUT = do_DELETE = do_GET

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
async def runner():
    r = HttpRequestRunner()
    yield r
    await r.close()


@pytest.fixture
def http_ctx(make_ctx):
    def factory(url: str, *, runner_parameters=None, **action_parameters):
        return make_ctx(
            "http-request",
            runner_parameters={"url": url, **(runner_parameters or {})},
            action_parameters=action_parameters,
            secret_names=frozenset({"password"}),
        )

    return factory


async def test_get_json_is_parsed(runner, server, http_ctx):
    res = await runner.run(http_ctx(f"{server.base}/json"))
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["status_code"] == 200
    assert res.result["body"] == {"hello": "world"}
    assert res.result["parsed"] is True
    assert res.result["headers"]["X-Custom"] == "yes"
    assert set(res.result) == {"status_code", "body", "parsed", "headers"}


async def test_text_body_is_not_parsed(runner, server, http_ctx):
    res = await runner.run(http_ctx(f"{server.base}/text"))
    assert res.result["body"] == "plain ü"
    assert res.result["parsed"] is False


async def test_post_with_body_params_and_headers(runner, server, http_ctx):
    ctx = http_ctx(
        f"{server.base}/echo",
        runner_parameters={"headers": {"X-Runner": "r", "X-Both": "runner"}, "cookies": {"c": "1"}},
        method="POST",
        body='{"a": 1}',
        params={"q": "x y"},
        headers={"Content-Type": "application/json", "X-Both": "action"},
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    echo = res.result["body"]
    assert echo["method"] == "POST"
    assert echo["body"] == '{"a": 1}'
    assert echo["query"] == {"q": ["x y"]}
    assert echo["headers"]["x-runner"] == "r"
    assert echo["headers"]["x-both"] == "action"
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["cookie"] == "c=1"


async def test_basic_auth_and_auth_header(runner, server, http_ctx):
    ctx = http_ctx(
        f"{server.base}/echo",
        runner_parameters={"username": "alice", "password": "s3cret"},
    )
    res = await runner.run(ctx)
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert res.result["body"]["headers"]["authorization"] == expected
    res = await runner.run(http_ctx(f"{server.base}/echo", auth="X-Auth-Token=abc"))
    assert res.result["body"]["headers"]["x-auth-token"] == "abc"


async def test_redirects_not_followed_by_default(runner, server, http_ctx):
    res = await runner.run(http_ctx(f"{server.base}/redirect"))
    assert res.result["status_code"] == 302
    assert res.result["headers"]["Location"] == "/json"
    assert res.status == ExecutionStatus.FAILED
    assert server.requests == [("GET", "/redirect")]


async def test_redirects_followed_when_allowed(runner, server, http_ctx):
    ctx = http_ctx(f"{server.base}/redirect", runner_parameters={"allow_redirects": True})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.SUCCEEDED
    assert res.result["body"] == {"hello": "world"}


async def test_denied_host_sends_nothing(runner, server, http_ctx):
    ctx = http_ctx(f"{server.base}/json", runner_parameters={"url_hosts_blacklist": ["127.0.0.1"]})
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "127.0.0.1" in res.result["error"] and "url_hosts_blacklist" in res.result["error"]
    assert server.requests == []


async def test_allow_list(runner, server, http_ctx):
    allowed = http_ctx(
        f"{server.base}/json",
        runner_parameters={"url_hosts_whitelist": [f"127.0.0.1:{server.port}"]},
    )
    assert (await runner.run(allowed)).status == ExecutionStatus.SUCCEEDED
    other = http_ctx(
        f"{server.base}/json", runner_parameters={"url_hosts_whitelist": ["example.com"]}
    )
    res = await runner.run(other)
    assert res.status == ExecutionStatus.FAILED
    assert "not allowed by url_hosts_whitelist" in res.result["error"]
    assert len(server.requests) == 1


async def test_redirect_target_is_checked(runner, server, http_ctx):
    ctx = http_ctx(
        f"{server.base}/redirect-localhost",
        runner_parameters={"allow_redirects": True, "url_hosts_whitelist": ["127.0.0.1"]},
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "redirect target" in res.result["error"] and "localhost" in res.result["error"]
    assert server.requests == [("GET", "/redirect-localhost")]


async def test_lists_are_mutually_exclusive(runner, server, http_ctx):
    ctx = http_ctx(
        f"{server.base}/json",
        runner_parameters={"url_hosts_blacklist": ["a"], "url_hosts_whitelist": ["b"]},
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "mutually exclusive" in res.result["error"]
    assert server.requests == []


async def test_deployment_deny_list(server, http_ctx):
    runner = HttpRequestRunner(deny_hosts=["127.0.0.1"])
    try:
        res = await runner.run(http_ctx(f"{server.base}/json"))
    finally:
        await runner.close()
    assert res.status == ExecutionStatus.FAILED
    assert "deployment's HTTP deny list" in res.result["error"]
    assert server.requests == []


async def test_non_2xx_fails(runner, server, http_ctx):
    res = await runner.run(http_ctx(f"{server.base}/status/500"))
    assert res.status == ExecutionStatus.FAILED
    assert res.result["status_code"] == 500
    assert res.result["body"] == {"error": "nope"}


async def test_timeout(runner, server, http_ctx):
    res = await runner.run(http_ctx(f"{server.base}/slow", timeout=0.3))
    assert res.status == ExecutionStatus.TIMEOUT
    assert "timed out" in res.result["error"]


async def test_connection_refused_fails_clearly(runner, http_ctx):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = await runner.run(http_ctx(f"http://127.0.0.1:{port}/"))
    assert res.status == ExecutionStatus.FAILED
    assert "ConnectError" in res.result["error"]


async def test_file_upload_is_multipart(runner, server, http_ctx):
    ctx = http_ctx(
        f"{server.base}/echo",
        method="POST",
        file_name="report.txt",
        file_content="line one\n",
        file_content_type="text/plain",
    )
    res = await runner.run(ctx)
    echo = res.result["body"]
    assert echo["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'filename="report.txt"' in echo["body"]
    assert "line one" in echo["body"]


async def test_password_not_in_error_messages(runner, http_ctx):
    ctx = http_ctx(
        "http://127.0.0.1:1/",
        runner_parameters={"username": "u", "password": "hunter2"},
    )
    res = await runner.run(ctx)
    assert "hunter2" not in json.dumps(res.result)


async def test_url_credentials_not_in_refusal(runner, http_ctx):
    ctx = http_ctx(
        "http://bob:pa55word@127.0.0.1:1/x", runner_parameters={"url_hosts_whitelist": ["a.b"]}
    )
    res = await runner.run(ctx)
    assert res.status == ExecutionStatus.FAILED
    assert "pa55word" not in res.result["error"]
    assert "http://127.0.0.1:1/x" in res.result["error"]
