"""SSH connections of the remote-shell runners: targets, credentials, clear errors.

A target comes from one entry of the ``hosts`` runner parameter: ``host``, ``host:port``,
``user@host``, ``user@host:port`` or ``[v6addr]:port``. Credentials follow StackStorm: a
``password`` when given, else ``private_key`` (key material when it contains a PEM/OpenSSH
header, else a path on the runner host) with its ``passphrase``, else the deployment's default
key file (``SQUALL_SSH_KEY_FILE``, or OpenSSH's default key files).

Host keys are checked against the deployment's known hosts file (``SQUALL_SSH_KNOWN_HOSTS``,
``~/.ssh/known_hosts`` by default); ``off`` turns checking off for the whole deployment and is
logged when the runner starts. Nothing ambient is consulted besides: no ``~/.ssh/config``, no
SSH agent.

Every failure becomes an :class:`SshError` whose message names the host and never carries a
secret (password, passphrase, key material).
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from squall.errors import RunnerError

__all__ = ["SshDefaults", "SshError", "SshTarget", "connect", "parse_hosts"]

log = logging.getLogger(__name__)

_KNOWN_HOSTS_OFF = frozenset({"off", "none", "no", "false", "0", "disabled"})
#: StackStorm's test for key material: the header of a PEM or OpenSSH private key.
_KEY_HEADER = "-----begin"
_DEFAULT_PORT = 22


class SshError(RunnerError):
    """Connecting or authenticating to one host failed (the message names the host)."""


@dataclass(frozen=True)
class SshDefaults:
    """Deployment defaults of the SSH runners (from Squall's settings).

    Attributes:
        user: login user when neither ``username`` nor ``user@host`` names one.
        key_file: private key file when no ``password`` / ``private_key`` is given (empty:
            OpenSSH's default key files).
        known_hosts: known hosts file, or ``None`` when host key checking is off.
    """

    user: str
    key_file: str = ""
    known_hosts: str | None = ""

    @classmethod
    def from_settings(cls, *, user: str, key_file: str, known_hosts: str) -> SshDefaults:
        """Resolve the ``SQUALL_SSH_*`` settings (empty means the documented default)."""
        checked: str | None
        if known_hosts.strip().lower() in _KNOWN_HOSTS_OFF:
            log.warning(
                "SSH host key checking is OFF for this deployment (SQUALL_SSH_KNOWN_HOSTS=%s): "
                "remote-shell actions trust any host key, so a man in the middle can read "
                "their commands and passwords",
                known_hosts,
            )
            checked = None
        else:
            checked = os.path.expanduser(known_hosts or "~/.ssh/known_hosts")
        return cls(
            user=user or getpass.getuser(),
            key_file=os.path.expanduser(key_file) if key_file else "",
            known_hosts=checked,
        )


@dataclass(frozen=True)
class SshTarget:
    """One entry of ``hosts``: where to connect, as whom, and the key of its result."""

    label: str
    host: str
    port: int
    user: str

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port`` for IPv6 addresses), as in error messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise RunnerError(f"invalid host {entry!r}: expected [address] or [address]:port")
        port_text = rest[1:] if rest else ""
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:  # a bare IPv6 address, or a plain host name
        host, port_text = entry, ""
    if not host:
        raise RunnerError(f"invalid host {entry!r}: the host name is empty")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RunnerError(f"invalid port in host {entry!r}: expected a number from 1 to 65535")
    return host, int(port_text)


def parse_hosts(hosts: Any, *, port: Any, user: str) -> list[SshTarget]:
    """Targets of the ``hosts`` runner parameter, in order, without repeats.

    Args:
        hosts: comma-separated ``[user@]host[:port]`` entries.
        port: the ``port`` runner parameter (default 22) for entries without one.
        user: the login user for entries without ``user@``.

    Raises:
        RunnerError: ``hosts`` is empty or an entry is malformed.
    """
    if not isinstance(hosts, str) or not hosts.strip():
        raise RunnerError(
            "runner parameter 'hosts' is required: a comma-separated list of hosts "
            "(host, host:port or user@host)"
        )
    default_port = int(port) if port else _DEFAULT_PORT
    targets: dict[str, SshTarget] = {}
    for raw in hosts.split(","):
        label = raw.strip()
        if not label or label in targets:
            continue
        login, at, rest = label.rpartition("@")
        host, entry_port = _split_host_port(rest)
        if at and not login:
            raise RunnerError(f"invalid host {label!r}: the user name before '@' is empty")
        targets[label] = SshTarget(
            label=label, host=host, port=entry_port or default_port, user=login or user
        )
    if not targets:
        raise RunnerError("runner parameter 'hosts' names no host")
    return list(targets.values())


def _client_keys(params: Mapping[str, Any], defaults: SshDefaults) -> Any:
    """The ``client_keys`` option: loaded key material, a key path, or OpenSSH's defaults."""
    private_key = params.get("private_key")
    passphrase = params.get("passphrase") or None
    if private_key:
        if _KEY_HEADER in str(private_key).lower():
            try:
                return [asyncssh.import_private_key(str(private_key), passphrase)]
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
                # The library's message describes the failure, never the key itself.
                raise SshError(f"cannot use the private_key runner parameter: {exc}") from exc
        return [_load_key_file(str(private_key), passphrase)]
    if defaults.key_file:
        return [_load_key_file(defaults.key_file, passphrase)]
    return ()  # OpenSSH's default key files under ~/.ssh


def _load_key_file(path: str, passphrase: str | None) -> asyncssh.SSHKey:
    expanded = os.path.expanduser(path)
    if not Path(expanded).is_file():
        raise SshError(f"private key file {path!r} does not exist on the runner host")
    try:
        return asyncssh.read_private_key(expanded, passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise SshError(f"cannot use private key file {path!r}: {exc}") from exc
    except OSError as exc:
        raise SshError(f"cannot read private key file {path!r}: {exc.strerror or exc}") from exc


def _options(
    target: SshTarget, params: Mapping[str, Any], defaults: SshDefaults, connect_timeout: float
) -> dict[str, Any]:
    if defaults.known_hosts is not None and not Path(defaults.known_hosts).is_file():
        raise SshError(
            f"known hosts file {defaults.known_hosts!r} does not exist, so the host key of "
            f"{target.address} cannot be checked: create it (ssh-keyscan -p {target.port} "
            f"{target.host} >> {defaults.known_hosts}) or set SQUALL_SSH_KNOWN_HOSTS"
        )
    options: dict[str, Any] = {
        "port": target.port,
        "username": target.user,
        "known_hosts": defaults.known_hosts,
        "config": None,
        "agent_path": None,
        "connect_timeout": connect_timeout,
        "login_timeout": connect_timeout,
    }
    password = params.get("password")
    if password:
        options |= {"password": str(password), "client_keys": None}
    else:
        options |= {"client_keys": _client_keys(params, defaults), "password_auth": False}
    return options


async def connect(
    target: SshTarget,
    params: Mapping[str, Any],
    defaults: SshDefaults,
    *,
    connect_timeout: float,
    tunnel: asyncssh.SSHClientConnection | None = None,
) -> asyncssh.SSHClientConnection:
    """Open an authenticated SSH connection to ``target``.

    Raises:
        SshError: with a message naming the host: unreachable, host key not trusted,
            authentication refused, unusable key.
    """
    options = _options(target, params, defaults, connect_timeout)
    try:
        return await asyncssh.connect(target.host, tunnel=tunnel, **options)
    except asyncssh.PermissionDenied as exc:
        how = "password" if params.get("password") else "private key"
        raise SshError(
            f"authentication failed for {target.user}@{target.host} (port {target.port}, "
            f"{how}): {exc.reason}"
        ) from exc
    except asyncssh.HostKeyNotVerifiable as exc:
        raise SshError(
            f"host key of {target.address} is not trusted: {exc.reason}; add the host to "
            f"{defaults.known_hosts} (ssh-keyscan -p {target.port} {target.host}) or, for a "
            "deployment that accepts the risk, set SQUALL_SSH_KNOWN_HOSTS=off"
        ) from exc
    except asyncssh.DisconnectError as exc:
        raise SshError(f"cannot connect to {target.address}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise SshError(
            f"cannot connect to {target.address}: no answer within {connect_timeout:g} seconds"
        ) from exc
    except OSError as exc:
        # asyncio's "Connect call failed (addr)" carries the reason only in errno.
        if isinstance(exc, socket.gaierror):
            reason = f"cannot resolve {target.host!r}: {exc.strerror}"
        else:
            reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        raise SshError(f"cannot connect to {target.address}: {reason}") from exc
    except asyncssh.Error as exc:
        raise SshError(f"cannot connect to {target.address}: {exc.reason}") from exc
