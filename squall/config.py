"""Settings, read once from the environment (``SQUALL_*``) and an optional TOML file.

Precedence: explicit keyword arguments > environment > ``$SQUALL_HOME/squall.toml`` > defaults.
Settings are an immutable value passed explicitly to whoever needs them; nothing reads the
environment after start-up.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from squall.errors import ValidationError

__all__ = ["DEFAULT_BIND", "Settings", "load_settings"]

DEFAULT_BIND = "127.0.0.1:9101"


def _split_paths(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(":") if p)


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _bool(value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one Squall process."""

    home: Path = Path(".squall")
    bind: str = DEFAULT_BIND
    #: ``sqlite:///…`` or ``postgresql://…``; empty means SQLite at ``home/squall.db``.
    database_url: str = ""
    #: Extra pack directories (colon-separated in ``SQUALL_PACKS_PATH``).
    packs_path: tuple[str, ...] = ()
    #: Directory with ``<pack>.yaml`` pack configs; default ``home/configs``.
    configs_path: str = ""
    admin_user: str = "admin"
    admin_password: str = ""
    #: Public URL the API is reachable at (for ``ST2_ACTION_API_URL`` and ``web_url``).
    public_url: str = ""
    #: Token lifetime in seconds, and the upper bound a client may ask for.
    token_ttl: int = 86400
    token_max_ttl: int = 86400 * 30
    #: Runner lease: a runner that has not renewed within this time is presumed dead.
    lease_seconds: float = 30.0
    #: Python action warm workers per interpreter and runs before recycling.
    python_workers: int = 4
    python_worker_max_runs: int = 500
    #: Concurrency of the runner host (executions in flight in this process).
    runner_concurrency: int = 64
    #: Hosts the http-request runner may (not) reach; empty allow list = all allowed.
    http_allow_hosts: tuple[str, ...] = ()
    http_deny_hosts: tuple[str, ...] = ()
    #: SSH runners: default login user (empty: the user Squall runs as), default private key
    #: file (empty: ``~/.ssh/id_ed25519``, ``id_ecdsa``, ``id_rsa`` … as OpenSSH tries them)
    #: and known hosts file (empty: ``~/.ssh/known_hosts``; ``off`` turns host key checking
    #: off for the whole deployment, with a warning in the log at start).
    ssh_user: str = ""
    ssh_key_file: str = ""
    ssh_known_hosts: str = ""
    #: SQLite ``synchronous`` pragma: FULL survives power loss, NORMAL only process crashes.
    sqlite_synchronous: str = "FULL"
    #: Maximum request body the API accepts, in bytes.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Log format: ``text`` for terminals, ``json`` for production.
    log_format: str = "text"
    log_level: str = "INFO"
    #: Output chunk flush interval (seconds) for live output.
    output_flush_interval: float = 0.1
    #: Roles this process runs (``all`` or a subset).
    roles: tuple[str, ...] = ("all",)
    #: PostgreSQL connections kept per process (as many again may open under load);
    #: 0 sizes the pool by role: 8 with the API, else 3.
    db_pool_size: int = 0
    #: Seconds a stopping runner host lets running actions finish before it abandons them.
    shutdown_grace: float = 10.0
    #: Run pack sensors in a process with the ``sensors`` role (false: this process runs
    #: none, whatever its roles).
    sensors: bool = True
    #: Seconds a stopping sensor gets for ``cleanup()`` before its process group is killed.
    sensor_stop_grace: float = 5.0
    #: ``squall serve`` on PostgreSQL migrates an older schema itself (under an advisory
    #: lock) instead of asking for ``squall db upgrade``.
    auto_migrate: bool = False
    #: RBAC definitions (``roles/``, ``assignments/``); default ``home/rbac``.
    rbac_path: str = ""
    #: Permission isolation: non-admin users see only their own executions and rules.
    rbac_isolation: bool = False
    #: Proxy authentication: the header naming the user, trusted only from these addresses
    #: or networks (none: proxy authentication is off).
    auth_proxy_header: str = "X-Forwarded-User"
    auth_proxy_addresses: tuple[str, ...] = ()
    #: Failed logins allowed per user and per client address within the window (0: no limit).
    login_max_failures: int = 10
    login_failure_window: float = 300.0
    #: Browser origins allowed to call the API (CORS); none: same-origin only.
    cors_origins: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'squall.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def configs_dir(self) -> Path:
        return Path(self.configs_path) if self.configs_path else self.home / "configs"

    @property
    def rbac_dir(self) -> Path:
        return Path(self.rbac_path) if self.rbac_path else self.home / "rbac"

    @property
    def pack_dirs(self) -> tuple[Path, ...]:
        """Directories searched for packs, highest priority first."""
        dirs = [Path(p) for p in self.packs_path] if self.packs_path else [self.home / "packs"]
        return tuple(dirs)

    @property
    def api_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host, _, port = self.bind.rpartition(":")
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        try:
            return host or "127.0.0.1", int(port)
        except ValueError as exc:
            raise ValidationError(
                f"invalid bind address {self.bind!r}", hint="expected HOST:PORT"
            ) from exc


_ENV: dict[str, tuple[str, Any]] = {
    # env var -> (field, parser)
    "SQUALL_HOME": ("home", Path),
    "SQUALL_BIND": ("bind", str),
    "SQUALL_DATABASE_URL": ("database_url", str),
    "SQUALL_PACKS_PATH": ("packs_path", _split_paths),
    "SQUALL_CONFIGS_PATH": ("configs_path", str),
    "SQUALL_ADMIN_USER": ("admin_user", str),
    "SQUALL_ADMIN_PASSWORD": ("admin_password", str),
    "SQUALL_PUBLIC_URL": ("public_url", str),
    "SQUALL_TOKEN_TTL": ("token_ttl", int),
    "SQUALL_TOKEN_MAX_TTL": ("token_max_ttl", int),
    "SQUALL_LEASE_SECONDS": ("lease_seconds", float),
    "SQUALL_PYTHON_WORKERS": ("python_workers", int),
    "SQUALL_PYTHON_WORKER_MAX_RUNS": ("python_worker_max_runs", int),
    "SQUALL_RUNNER_CONCURRENCY": ("runner_concurrency", int),
    "SQUALL_HTTP_ALLOW_HOSTS": ("http_allow_hosts", _split_list),
    "SQUALL_HTTP_DENY_HOSTS": ("http_deny_hosts", _split_list),
    "SQUALL_SSH_USER": ("ssh_user", str),
    "SQUALL_SSH_KEY_FILE": ("ssh_key_file", str),
    "SQUALL_SSH_KNOWN_HOSTS": ("ssh_known_hosts", str),
    "SQUALL_SQLITE_SYNCHRONOUS": ("sqlite_synchronous", str),
    "SQUALL_MAX_BODY_BYTES": ("max_body_bytes", int),
    "SQUALL_LOG_FORMAT": ("log_format", str),
    "SQUALL_LOG_LEVEL": ("log_level", str),
    "SQUALL_ROLES": ("roles", _split_list),
    "SQUALL_DB_POOL_SIZE": ("db_pool_size", int),
    "SQUALL_SHUTDOWN_GRACE": ("shutdown_grace", float),
    "SQUALL_SENSORS": ("sensors", _bool),
    "SQUALL_SENSOR_STOP_GRACE": ("sensor_stop_grace", float),
    "SQUALL_AUTO_MIGRATE": ("auto_migrate", _bool),
    "SQUALL_RBAC_PATH": ("rbac_path", str),
    "SQUALL_RBAC_ISOLATION": ("rbac_isolation", _bool),
    "SQUALL_AUTH_PROXY_HEADER": ("auth_proxy_header", str),
    "SQUALL_AUTH_PROXY_ADDRESSES": ("auth_proxy_addresses", _split_list),
    "SQUALL_LOGIN_MAX_FAILURES": ("login_max_failures", int),
    "SQUALL_LOGIN_FAILURE_WINDOW": ("login_failure_window", float),
    "SQUALL_CORS_ORIGINS": ("cors_origins", _split_list),
}

_FIELD_TYPES = {f.name: f for f in fields(Settings)}


def _from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"{path}: cannot read settings: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELD_TYPES or key == "extra":
            known = ", ".join(sorted(k for k in _FIELD_TYPES if k != "extra"))
            raise ValidationError(f"{path}: unknown setting {key!r}", hint=f"known: {known}")
        if isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``) and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var, (name, parse) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValidationError(f"invalid value for {var}: {raw!r} ({exc})") from exc
    home = Path(overrides.get("home") or values.get("home") or Settings.home)
    file_values = _from_file(home / "squall.toml")
    merged = {**file_values, **values, **{k: v for k, v in overrides.items() if v is not None}}
    if "home" in merged:
        merged["home"] = Path(merged["home"])
    settings = replace(Settings(), **merged)
    if settings.sqlite_synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValidationError(
            f"invalid SQUALL_SQLITE_SYNCHRONOUS {settings.sqlite_synchronous!r}",
            hint="use FULL (default), EXTRA or NORMAL",
        )
    return settings
