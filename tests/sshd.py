"""A real SSH server on 127.0.0.1 for the SSH runner tests (asyncssh, no mocks).

Sessions run the client's command with ``/bin/sh -c`` in a local subprocess (its own process
group), as sshd runs it through the login shell; SFTP serves the local file system. When the
client closes the channel before the command ends, the whole process group is killed, as
sshd's hang-up does. One user (:data:`USER`) logs in with :data:`PASSWORD` or the generated
client key; the server's host key is written to a known hosts file for each listening port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

__all__ = ["PASSWORD", "USER", "SshServer", "start_ssh_server"]

USER = "squall"
PASSWORD = "pw-'; echo LEAK #"
_READ = 64 * 1024


class _Auth(asyncssh.SSHServer):
    def __init__(self, server: SshServer) -> None:
        self._server = server

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._server.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections -= 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        return True  # direct TCP forwarding, so the server can serve as a bastion host


@dataclass
class SshServer:
    """A running test server: its ports, keys, and what it ran."""

    root: Path
    ports: list[int] = field(default_factory=list)
    #: Command lines received, in order.
    commands: list[str] = field(default_factory=list)
    #: Process group ids of the commands started.
    pids: list[int] = field(default_factory=list)
    #: Client connections open now.
    connections: int = 0
    #: Variables added to the environment of the commands (``PATH`` of a fake ``sudo``).
    env: dict[str, str] = field(default_factory=dict)
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    _servers: list[asyncssh.SSHAcceptor] = field(default_factory=list)

    @property
    def key_file(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def hosts(self) -> str:
        """``127.0.0.1:<port>`` of every listening port, comma-separated."""
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or ""
        self.commands.append(command)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **self.env},
        )
        self.pids.append(proc.pid)
        self._procs.append(proc)
        assert proc.stdin and proc.stdout and proc.stderr

        async def upstream() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(Exception):
                while data := await process.stdin.read(_READ):
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            with contextlib.suppress(Exception):
                proc.stdin.close()

        async def downstream(
            reader: asyncio.StreamReader, writer: asyncssh.SSHWriter[bytes]
        ) -> None:
            while data := await reader.read(_READ):
                with contextlib.suppress(Exception):  # keep draining once the client is gone
                    writer.write(data)

        feed = asyncio.create_task(upstream())
        done = asyncio.gather(
            downstream(proc.stdout, process.stdout),
            downstream(proc.stderr, process.stderr),
            proc.wait(),
        )
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            await asyncio.wait({done, closed}, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                process.exit(proc.returncode if proc.returncode >= 0 else 255)
        finally:
            # The client hung up first (or the server stops): kill the group, as sshd does,
            # and let the pipes drain so the subprocess transport closes.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            feed.cancel()
            closed.cancel()
            await asyncio.shield(asyncio.gather(done, feed, closed, return_exceptions=True))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            # A session cut short by the test's end may not have drained the pipes.
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()


async def start_ssh_server(root: Path, *, listeners: int = 2) -> SshServer:
    """Start ``listeners`` listening ports sharing one host key, and write the key files."""
    root.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    server = SshServer(root)
    client_key.write_private_key(str(server.key_file))
    server.key_file.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    for _ in range(listeners):
        acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=lambda: _Auth(server),
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            process_factory=server._session,
            sftp_factory=True,
            encoding=None,
        )
        server._servers.append(acceptor)
        server.ports.append(acceptor.get_port())
    public = host_key.export_public_key().decode().strip()
    server.known_hosts.write_text("".join(f"[127.0.0.1]:{p} {public}\n" for p in server.ports))
    return server
