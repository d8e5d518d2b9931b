"""``/api/v1/packs``: install, the pack index and search, and a pack's files.

Squall has no network pack exchange: its *index* is the packs on the pack search path (the
built-in ones and ``SQUALL_PACKS_PATH``), registered or not. ``install`` takes git URLs
(``URL[=VERSION]``, StackStorm's form) and local directories, installs each into the first
directory of the pack search path (``$SQUALL_HOME/packs`` unless ``SQUALL_PACKS_PATH`` says
otherwise) and registers it, synchronously (StackStorm runs ``packs.install`` as an
execution) — see :mod:`squall.engine.pack_install`; names already on the search path are
just registered. Names of the StackStorm Exchange are not supported and say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from squall.api.deps import Admin, Auth, credentials, get_runtime
from squall.api.serialize import json_response
from squall.engine.pack_install import InstallOutcome
from squall.engine.runtime import Runtime
from squall.errors import NotFoundError, SquallError, ValidationError
from squall.model.ids import new_id
from squall.model.status import ExecutionStatus
from squall.packs import load_yaml_file
from squall.packs.sources import redact_spec
from squall.store import content
from squall.store import executions as exrepo
from squall.store.util import utcnow

__all__ = ["router"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])

#: Files larger than this are listed without their content by ``views/files``.
MAX_FILE_BYTES = 512 * 1024
_SKIP_DIRS = {".git", "__pycache__", ".venv", "virtualenv", "node_modules"}


class InstallRequest(BaseModel):
    """Body of ``POST /api/v1/packs/install`` (StackStorm's PacksInstall)."""

    model_config = ConfigDict(extra="forbid")

    packs: list[str] = Field(
        min_length=1,
        description="git URLs (URL or URL=VERSION), local pack directories, or names of "
        "packs on the pack search path",
    )
    #: Replace a pack directory that ``pack install`` did not create, and let the installed
    #: pack hide one of the same ref further down the pack search path.
    force: bool = False
    #: Accepted for StackStorm compatibility; Squall does not install pack dependencies.
    skip_dependencies: bool = False
    #: Seconds each git command may take (default 600).
    timeout: int | None = Field(default=None, ge=0)


class SearchRequest(BaseModel):
    """Body of ``POST /api/v1/packs/index/search``: ``{query}`` or ``{pack}``."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = None
    pack: str | None = None


def _index_entry(path: Path) -> dict[str, Any] | None:
    try:
        meta = load_yaml_file(path / "pack.yaml").data
    except Exception:  # an unreadable pack is left out of the index, registration reports it
        return None
    if not isinstance(meta, dict):
        return None
    name = str(meta.get("ref") or meta.get("name") or path.name)
    return {
        "ref": name,
        "name": str(meta.get("name") or name),
        "description": str(meta.get("description") or ""),
        "version": str(meta.get("version") or ""),
        "author": str(meta.get("author") or ""),
        "email": str(meta.get("email") or ""),
        "keywords": list(meta.get("keywords") or []),
        "repo_url": f"file://{path}",
        "content": {},
    }


def _index(rt: Runtime) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in rt.packs.discover().values():
        entry = _index_entry(path)
        if entry is not None:
            out.setdefault(entry["ref"], entry)
    return out


@router.get("/index")
async def pack_index(request: Request, principal: Auth) -> Response:
    index = _index(get_runtime(request))
    health = {"indexes": {"count": 1, "valid": 1, "invalid": 0, "errors": {}, "status": []}}
    return json_response({"index": index, "health": health})


@router.get("/index/health")
async def pack_index_health(request: Request, principal: Auth) -> Response:
    index = _index(get_runtime(request))
    return json_response(
        {
            "indexes": {"count": 1, "valid": 1, "invalid": 0, "errors": {}, "status": []},
            "packs": {"count": len(index)},
        }
    )


@router.post("/index/search")
async def pack_search(body: SearchRequest, request: Request, principal: Auth) -> Response:
    """Packs whose name, description or keywords contain ``query`` (case-insensitive), or
    the one pack named ``pack`` (``null`` when unknown)."""
    if (body.query is None) == (body.pack is None):
        raise ValidationError("give exactly one of query or pack")
    index = _index(get_runtime(request))
    if body.pack is not None:
        return json_response(index.get(body.pack))
    needle = (body.query or "").lower()
    found = [
        entry
        for entry in index.values()
        if needle in entry["name"].lower()
        or needle in entry["description"].lower()
        or any(needle in str(k).lower() for k in entry["keywords"])
    ]
    return json_response(found)


_NDJSON = "application/x-ndjson"
#: Sent by the ``packs.squall_install`` action: the installation already has its execution.
_EXECUTION_HEADER = "X-Squall-Execution-Id"
#: Seconds between keep-alive lines of a streamed installation.
_HEARTBEAT = 10.0


@router.post("/install")
async def install_packs(body: InstallRequest, request: Request, principal: Admin) -> Response:
    """Install packs from git (``URL[=VERSION]``) or a directory, and register them.

    Answers when done with ``{packs, ok, rolled_back}`` (each pack's registration and
    ``install`` record). With ``Accept: application/x-ndjson`` it streams one JSON line per
    step (``{"progress": "cloning …"}``) and ends with ``{"status": 200|4xx, "result": …}``.
    """
    rt = get_runtime(request)
    timeout = float(body.timeout) if body.timeout else None
    # The packs.install action (packs.squall_install) calls this route and is itself the
    # record of the installation; any other caller gets one (see _record).
    record = not await _called_by_its_execution(request, rt)
    started = utcnow()

    async def install(progress: Callable[[str], None] | None) -> tuple[int, dict[str, Any]]:
        outcome = await rt.packs.installer.install(
            body.packs,
            force=body.force,
            user=principal.user,
            timeout=timeout,
            progress=progress,
        )
        payload = outcome.payload()
        if record:
            execution_id = await _record(rt, principal.user, body, outcome, started)
            if execution_id is not None:
                payload["execution_id"] = execution_id
        return (200 if outcome.ok else 400), payload

    if _NDJSON not in request.headers.get("accept", ""):
        # Shielded up to the record: a client that goes away leaves a recorded installation.
        status, payload = await asyncio.shield(_background(install(None)))
        return json_response(payload, status)

    queue: asyncio.Queue[str] = asyncio.Queue()
    # Runs to the end even when the client goes away (then nobody reads its result).
    task = _background(install(queue.put_nowait))

    async def lines() -> AsyncIterator[bytes]:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait(
                {getter, task}, timeout=_HEARTBEAT, return_when=asyncio.FIRST_COMPLETED
            )
            if getter.done():
                yield _line({"progress": getter.result()})
                continue
            getter.cancel()
            if not task.done():
                yield b"\n"  # a long clone says nothing: keep the connection alive
        try:
            status, payload = task.result()
        except SquallError as exc:
            status, payload = exc.http_status, {"faultstring": str(exc)}
        except Exception as exc:
            log.exception("pack installation failed")
            status, payload = 500, {"faultstring": f"internal error: {type(exc).__name__}"}
        yield _line({"status": status, "result": payload})

    return StreamingResponse(lines(), media_type=_NDJSON)


#: Installations whose client may have gone: kept referenced until they finish.
_RUNNING: set[asyncio.Task[Any]] = set()


def _background(coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    task = asyncio.ensure_future(coro)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


async def _called_by_its_execution(request: Request, rt: Runtime) -> bool:
    """Whether the caller is the running ``packs.squall_install`` execution it names in
    ``X-Squall-Execution-Id``: its own token (issued for that execution) must say so. Anyone
    else's header is ignored, so no caller can keep an installation out of the history."""
    claimed = request.headers.get(_EXECUTION_HEADER)
    token, _key = credentials(request)
    if not claimed or not token:
        return False
    metadata = await rt.auth.token_metadata(token)
    if metadata.get("execution_id") != claimed:
        log.warning("ignoring %s %r: not the caller's execution", _EXECUTION_HEADER, claimed)
        return False
    ex = await rt.db.read(lambda conn: exrepo.get(conn, claimed, with_result=False))
    return (
        ex is not None
        and ex.action_ref == "packs.squall_install"
        and ex.status == ExecutionStatus.RUNNING
    )


async def _record(
    rt: Runtime, user: str, body: InstallRequest, outcome: InstallOutcome, started: datetime
) -> str | None:
    """Record the installation as a finished ``packs.install`` execution, as StackStorm
    runs one: the history shows every install, and the ``st2`` CLI, which follows that
    execution, shows the installed packs. ``None`` when the ``packs`` pack is missing."""
    try:
        action, bundle = await rt.executions.action("packs.install")
    except NotFoundError:
        return None
    warnings = [f"{r.ref}: {w}" for r in outcome.results for w in r.warnings]
    output: dict[str, Any] = {
        "packs_list": [r.ref for r in outcome.results] if outcome.ok else [],
        "warning_list": [str(w) for w in warnings],
    }
    result: dict[str, Any] = {"output": output}
    if not outcome.ok:
        result["errors"] = [{"type": "error", "message": outcome.payload()["faultstring"]}]
    status = ExecutionStatus.SUCCEEDED if outcome.ok else ExecutionStatus.FAILED
    row = exrepo.new_row(
        id=new_id(),
        action_ref=action.ref,
        action_snapshot=action.snapshot,
        runner_type=bundle.runner.name,
        # As shown and stored: a URL's user info (a password, a token) is masked.
        parameters={"packs": [redact_spec(s) for s in body.packs], "force": body.force},
        context={"user": user, "pack": "packs"},
        user=user,
        now=started,
        status=ExecutionStatus.RUNNING,
    )
    row["started_at"] = started

    def _write(conn: Connection) -> None:
        exrepo.insert(conn, [row])
        done = exrepo.finish(conn, row["id"], status=status, result=result, now=utcnow())
        if done is not None:
            rt.executions.on_terminal(conn, done)

    await rt.db.write(_write)
    return str(row["id"])


def _line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, default=str) + "\n").encode()


async def _pack_dir(request: Request, ref: str) -> Path:
    record = await get_runtime(request).db.read(lambda conn: content.get_pack(conn, ref))
    if record is None:
        raise NotFoundError(f"pack {ref!r} not found")
    return Path(record.path).resolve()


@router.get("/views/files/{ref_or_id}")
async def pack_files(ref_or_id: str, request: Request, principal: Auth) -> Response:
    """Every text file of a pack: ``[{file_path, content}]`` (large or binary files are
    listed with ``content: null``)."""
    base = await _pack_dir(request, ref_or_id)
    out: list[dict[str, Any]] = []
    for current, dirs, files in os.walk(base, followlinks=False):
        # Symlinked directories are not entered (os.walk); skipped ones are not listed.
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for name in files:
            path = Path(current) / name
            if not path.is_file() or (path.is_symlink() and not _inside(base, path.resolve())):
                continue
            out.append(_file_entry(base, path))
    out.sort(key=lambda entry: str(entry["file_path"]))
    return json_response(out)


def _inside(base: Path, resolved: Path) -> bool:
    """Whether ``resolved`` is a file of the pack at ``base`` that may be shown."""
    if not resolved.is_relative_to(base):
        return False
    return not any(part in _SKIP_DIRS for part in resolved.relative_to(base).parts)


def _file_entry(base: Path, path: Path) -> dict[str, Any]:
    text: str | None = None
    try:
        if path.stat().st_size <= MAX_FILE_BYTES:
            text = path.read_text()
    except (UnicodeDecodeError, OSError):
        text = None
    return {"file_path": str(path.relative_to(base)), "content": text}


@router.get("/views/file/{ref_or_id}/{file_path:path}")
async def pack_file(ref_or_id: str, file_path: str, request: Request, principal: Auth) -> Response:
    base = await _pack_dir(request, ref_or_id)
    path = (base / file_path).resolve()
    if not path.is_relative_to(base):
        raise ValidationError(f"file_path: {file_path!r} is outside the pack")
    # What views/files leaves out is not served either: .git/config can hold credentials.
    # Both the path as given and where it leads count (a link into .git).
    if any(part in _SKIP_DIRS for part in Path(file_path).parts) or not _inside(base, path):
        raise NotFoundError(f"pack {ref_or_id!r} has no file {file_path!r}")
    if not path.is_file():
        raise NotFoundError(f"pack {ref_or_id!r} has no file {file_path!r}")
    try:
        return PlainTextResponse(path.read_text())
    except UnicodeDecodeError:
        return Response(path.read_bytes(), media_type="application/octet-stream")
