"""``/api/v1/packs``: install, the pack index and search, and a pack's files.

Squall has no network pack exchange: its *index* is the packs on the pack search path (the
built-in ones and ``SQUALL_PACKS_PATH``), registered or not. ``install`` takes local pack
directories (a path or a ``file://`` URL), copies each into the first directory of the pack
search path (``$SQUALL_HOME/packs`` unless ``SQUALL_PACKS_PATH`` says otherwise) and
registers it, synchronously (StackStorm runs ``packs.install`` as an execution); names
already on the search path are just registered. Installing from git or the StackStorm
Exchange is not supported yet and says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import PlainTextResponse, Response

from squall.api.deps import Admin, Auth, get_runtime
from squall.api.serialize import json_response
from squall.engine.runtime import Runtime
from squall.errors import NotFoundError, PackError, ValidationError
from squall.packs import load_yaml_file
from squall.store import content

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])

#: Files larger than this are listed without their content by ``views/files``.
MAX_FILE_BYTES = 512 * 1024
_SKIP_DIRS = {".git", "__pycache__", ".venv", "virtualenv", "node_modules"}


class InstallRequest(BaseModel):
    """Body of ``POST /api/v1/packs/install`` (StackStorm's PacksInstall)."""

    model_config = ConfigDict(extra="forbid")

    packs: list[str] = Field(min_length=1, description="local pack directories or pack names")
    force: bool = False
    skip_dependencies: bool = False
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


def _source(spec: str) -> Path | None:
    if spec.startswith("file://"):
        return Path(spec[len("file://") :])
    if spec.startswith(("/", "./", "../")):
        return Path(spec)
    return None


@router.post("/install")
async def install_packs(body: InstallRequest, request: Request, principal: Admin) -> Response:
    rt = get_runtime(request)
    known = rt.packs.discover()
    # The first directory of the pack search path ($SQUALL_HOME/packs by default).
    installed_dir = rt.settings.pack_dirs[0]
    refs: list[str] = []
    for spec in body.packs:
        source = _source(spec)
        if source is None:
            name = spec.split("=", 1)[0]
            if name in known:
                refs.append(name)
                continue
            raise ValidationError(
                f"packs: {spec!r} is neither a local pack directory nor a pack on the search path",
                hint="installing from git or the StackStorm Exchange is not supported yet; "
                "give a directory (an absolute path or file:// URL)",
            )
        if not (source / "pack.yaml").is_file():
            raise ValidationError(f"packs: {str(source)!r} has no pack.yaml")
        entry = _index_entry(source)
        if entry is None:
            raise PackError(f"{source / 'pack.yaml'}: cannot be read")
        ref = entry["ref"]
        target = installed_dir / ref
        if target.exists() and target.resolve() != source.resolve():
            if not body.force:
                raise ValidationError(
                    f"pack {ref!r} is already installed at {target}", hint="set force: true"
                )
            shutil.rmtree(target)
        if target.resolve() != source.resolve():
            installed_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_SKIP_DIRS))
        refs.append(ref)
    results = await rt.packs.register_all(refs)
    ok = all(r.ok for r in results)
    payload = {"packs": [r.as_dict() for r in results], "ok": ok}
    if not ok:
        problems = "; ".join(
            f"{r.ref}: {r.error or '; '.join(str(i) for i in r.issues[:3])}"
            for r in results
            if not r.ok
        )
        payload["faultstring"] = f"some packs failed to install: {problems}"
    return json_response(payload, 200 if ok else 400)


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
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part in _SKIP_DIRS for part in rel.parts) or not path.is_file():
            continue
        text: str | None = None
        if path.stat().st_size <= MAX_FILE_BYTES:
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                text = None
        out.append({"file_path": str(rel), "content": text})
    return json_response(out)


@router.get("/views/file/{ref_or_id}/{file_path:path}")
async def pack_file(ref_or_id: str, file_path: str, request: Request, principal: Auth) -> Response:
    base = await _pack_dir(request, ref_or_id)
    path = (base / file_path).resolve()
    if not path.is_relative_to(base):
        raise ValidationError(f"file_path: {file_path!r} is outside the pack")
    if not path.is_file():
        raise NotFoundError(f"pack {ref_or_id!r} has no file {file_path!r}")
    try:
        return PlainTextResponse(path.read_text())
    except UnicodeDecodeError:
        return Response(path.read_bytes(), media_type="application/octet-stream")
