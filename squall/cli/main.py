"""The ``squall`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from squall import __version__
from squall.cli.commands import (
    apikeys,
    auth,
    content,
    executions,
    keys,
    rbac,
    rules,
    server,
    status,
    users,
    workflows,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squall",
        description="Squall: event-driven automation that speaks StackStorm's languages.",
        epilog="Server: SQUALL_URL (default http://127.0.0.1:9101). Credentials: `squall "
        "login`, SQUALL_API_KEY / SQUALL_TOKEN, or $SQUALL_HOME/credentials.",
    )
    parser.add_argument("--version", action="version", version=f"squall {__version__}")
    parser.add_argument("--url", help="server URL (overrides SQUALL_URL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (server, executions, content, keys, rules, auth, workflows, status):
        module.register(sub)
    for module in (users, rbac, apikeys):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "needs_client", True):
        return int(args.func(args))
    from squall.cli.client import ApiError, Client  # the server commands need no HTTP client

    client = Client(args.url)
    try:
        return int(args.func(args, client))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `squall … | head`: the reader went away; that is not an error of ours.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
