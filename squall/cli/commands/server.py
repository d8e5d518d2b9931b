"""``squall up`` and ``squall serve``: run Squall's services in this process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from squall.config import Settings, load_settings
from squall.errors import SquallError, ValidationError

__all__ = ["register"]

log = logging.getLogger("squall")

#: PostgreSQL advisory lock held during first-start set-up (admin user, pack registration).
_STARTUP_LOCK = 0x5351_4C53


def _setup_logging(settings: Settings) -> None:
    from squall.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)


async def _serve(settings: Settings, roles: tuple[str, ...], *, banner: bool) -> int:
    import uvicorn

    from squall.api.app import create_app
    from squall.engine.runtime import Runtime

    started = time.monotonic()
    # `squall up` is one process: it migrates. Several `squall serve` processes on PostgreSQL
    # do not upgrade the schema behind each other's back: `squall db upgrade` does (an empty
    # database is still created, under an advisory lock), unless SQUALL_AUTO_MIGRATE=true.
    migrate = banner or settings.is_sqlite or settings.auto_migrate
    rt = await Runtime.open(settings, roles=roles, migrate=migrate)
    try:
        # Processes starting together take turns for the first-start set-up.
        async with rt.db.advisory_lock(_STARTUP_LOCK):
            generated = await rt.ensure_admin()
            if "api" in rt.roles or "all" in roles:
                results = await rt.packs.register_changed()
                failed = [r for r in results if not r.ok]
                for r in failed:
                    log.error(
                        "pack %s: %s",
                        r.ref,
                        r.error or "; ".join(str(i) for i in r.issues),
                    )
        await rt.start_services()

        server: Any = None
        if "api" in rt.roles:
            host, port = settings.host_port

            class _Server(uvicorn.Server):
                @contextlib.contextmanager
                def capture_signals(self) -> Iterator[None]:
                    yield  # signals are ours: we stop services gracefully

            config = uvicorn.Config(
                create_app(rt),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                http="httptools",
                lifespan="off",
                timeout_graceful_shutdown=5,
            )
            server = _Server(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        serve_task = None
        if server is not None:
            serve_task = loop.create_task(server.serve(), name="http")
            while not server.started:
                if serve_task.done():
                    await serve_task  # raises the bind error
                    return 1
                await asyncio.sleep(0.01)
        if banner:
            _print_banner(settings, generated, time.monotonic() - started)
        else:
            log.info("squall ready (roles: %s)", ",".join(rt.roles))
        await stop.wait()
        print("\nstopping Squall …", file=sys.stderr)
        if server is not None and serve_task is not None:
            await rt.stream.close()  # end open event streams, or the server waits for them
            server.should_exit = True
            await serve_task
        return 0
    finally:
        await rt.close()


def _print_banner(settings: Settings, generated: str | None, elapsed: float) -> None:
    url = settings.api_url
    lines = [
        "",
        f"Squall is up at {url}  (ready in {elapsed:.1f}s, home {settings.home})",
    ]
    if generated:
        lines += [
            "",
            f"  First start: created user {settings.admin_user!r} with password {generated}",
            f"  (saved in {settings.home / 'credentials'}, where the squall CLI finds it)",
        ]
    lines += [
        "",
        "  Try, in another terminal:",
        "    squall run demo.hello name=you",
        "    squall run demo.system_report",
        "    squall run core.local cmd='uptime'",
        "    squall execution list",
        "",
        "  Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _check_port(settings: Settings) -> None:
    """Fail with one clear line when the address is taken, before starting anything."""
    host, port = settings.host_port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ValidationError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="another Squall (or program) uses it; pick another with --bind HOST:PORT",
            ) from None


def cmd_up(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(home=args.home, bind=args.bind)
        _check_port(settings)
    except SquallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        return _run(_serve(settings, ("all",), banner=True))
    except SquallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        return 3


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(home=args.home, bind=args.bind)
        roles = (
            tuple(r.strip() for r in args.role.split(",") if r.strip())
            if args.role
            else settings.roles
        )
        from squall.engine.runtime import parse_roles

        parse_roles(roles)
        if "api" in roles or "all" in roles:
            _check_port(settings)
    except SquallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    try:
        return _run(_serve(settings, roles, banner=False))
    except SquallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


def _run(coro: Any) -> int:
    try:
        import uvloop

        return int(uvloop.run(coro))
    except ImportError:
        return int(asyncio.run(coro))


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from squall.store.db import Database
    from squall.store.migrate import upgrade

    settings = load_settings(home=args.home)

    async def _go() -> str:
        db = Database(settings.db_url)
        try:
            return await upgrade(db)
        finally:
            await db.close()

    try:
        head = asyncio.run(_go())
    except SquallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"database at revision {head}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="run everything in one process (SQLite by default)",
        description="Start Squall: API, scheduler, runners and the rest in one process. "
        "Creates $SQUALL_HOME (default ./.squall) with the database, keys and the admin "
        "credentials on first start.",
    )
    up.add_argument("--home", help="state directory (default $SQUALL_HOME or ./.squall)")
    up.add_argument("--bind", help="HOST:PORT to listen on (default 127.0.0.1:9101)")
    up.set_defaults(func=cmd_up, needs_client=False)

    serve = sub.add_parser(
        "serve",
        help="run some roles in this process (scale-out on PostgreSQL)",
        description="Run the given roles: api, rules, scheduler, runner, workflow, timers, "
        "sensors, notifier, gc or all. Point SQUALL_DATABASE_URL at PostgreSQL to run "
        "several processes.",
    )
    serve.add_argument("--role", help="comma-separated roles (default: $SQUALL_ROLES, else all)")
    serve.add_argument("--home")
    serve.add_argument("--bind")
    serve.set_defaults(func=cmd_serve, needs_client=False)

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="verb", required=True, metavar="VERB")
    upg = dbsub.add_parser("upgrade", help="apply schema migrations")
    upg.add_argument("--home")
    upg.set_defaults(func=cmd_db_upgrade, needs_client=False)
