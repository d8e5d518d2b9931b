"""Writing actions through the API: ``POST /api/v1/actions``, ``PUT`` / ``DELETE
/api/v1/actions/{ref_or_id}`` and ``POST /api/v1/actions/{ref_or_id}/clone``.

A pack's directory is the source of truth (registration replaces a pack's content from its
files), so these routes write files into the pack — ``actions/<name>.yaml`` plus the optional
``data_files`` (entry points), as StackStorm does — and register that pack again. Registration
validates everything exactly as at start-up; when it fails, the files are put back as they were
and the pack registered again, so nothing is half-written. Packs shipped with Squall are
read-only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError
from starlette.responses import Response

from squall.api.deps import Admin, get_runtime
from squall.api.serialize import json_response
from squall.engine.runtime import Runtime
from squall.errors import ConflictError, NotFoundError, ValidationError
from squall.store import content

__all__ = ["router"]

router = APIRouter(tags=["actions"])

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class DataFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_path: str = Field(min_length=1, description="path inside the pack's actions/ directory")
    content: str


class ActionWrite(BaseModel):
    """An action's metadata (StackStorm's ActionCreateRequest / ActionUpdateRequest)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME, max_length=200)
    pack: str = Field(pattern=_NAME, max_length=128)
    runner_type: str = Field(min_length=1)
    description: str = ""
    enabled: bool = True
    entry_point: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] = Field(default_factory=dict)
    tags: list[Any] = Field(default_factory=list)
    notify: dict[str, Any] = Field(default_factory=dict)
    data_files: list[DataFile] = Field(default_factory=list)
    # Read-only fields of an action read back; accepted and ignored.
    id: str | None = None
    ref: str | None = None
    uid: str | None = None
    metadata_file: str | None = None


class ActionDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remove_files: bool = Field(
        default=False, description="also delete the entry point file (as st2 action delete -r)"
    )


class ActionClone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dest_pack: str = Field(pattern=_NAME)
    dest_action: str = Field(pattern=_NAME)
    overwrite: bool = False


async def _writable_pack(rt: Runtime, ref: str) -> Path:
    record = await rt.db.read(lambda conn: content.get_pack(conn, ref))
    if record is None:
        raise NotFoundError(f"pack {ref!r} not found", hint="register or install the pack first")
    if record.origin == "system":
        raise ValidationError(
            f"pack {ref!r} ships with Squall and is read-only",
            hint="clone the action into a pack of your own",
        )
    return Path(record.path)


def _inside(base: Path, relative: str, field: str) -> Path:
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()) or path == base.resolve():
        raise ValidationError(f"{field}: {relative!r} is outside the pack's actions/ directory")
    return path


class _Files:
    """File changes that can be undone (the previous contents are kept)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Path, bytes | None]] = []

    def write(self, path: Path, text: str) -> None:
        self._saved.append((path, path.read_bytes() if path.exists() else None))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".squall-tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def delete(self, path: Path) -> None:
        if path.exists():
            self._saved.append((path, path.read_bytes()))
            path.unlink()

    def undo(self) -> None:
        for path, data in reversed(self._saved):
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)


async def _register(rt: Runtime, pack: str, files: _Files) -> None:
    results = await rt.packs.register_all([pack])
    failed = [r for r in results if not r.ok]
    if failed:
        files.undo()
        await rt.packs.register_all([pack])
        problems = "; ".join(
            "; ".join(str(i) for i in r.issues) or r.error or "registration failed" for r in failed
        )
        raise ValidationError(f"pack {pack!r} did not register with this change: {problems}")


def _metadata(body: ActionWrite) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "runner_type": body.runner_type,
        "enabled": body.enabled,
    }
    if body.entry_point:
        doc["entry_point"] = body.entry_point
    for key in ("parameters", "output_schema", "tags", "notify"):
        value = getattr(body, key)
        if value:
            doc[key] = value
    return doc


async def _action_doc(rt: Runtime, ref: str) -> dict[str, Any]:
    record = await rt.db.read(lambda conn: content.get_action(conn, ref))
    if record is None:
        raise NotFoundError(f"action {ref!r} not found")
    return {**record.doc, "id": record.id}


async def _write(rt: Runtime, body: ActionWrite, *, metadata_file: str | None) -> None:
    pack_dir = await _writable_pack(rt, body.pack)
    actions_dir = pack_dir / "actions"
    files = _Files()
    target = pack_dir / (metadata_file or f"actions/{body.name}.yaml")
    try:
        for item in body.data_files:
            files.write(_inside(actions_dir, item.file_path, "data_files.file_path"), item.content)
        files.write(target, "---\n" + yaml.safe_dump(_metadata(body), sort_keys=False))
    except OSError as exc:
        files.undo()
        raise ValidationError(f"cannot write into pack {body.pack!r}: {exc.strerror}") from None
    await _register(rt, body.pack, files)


@router.post("/api/v1/actions", status_code=201)
async def create_action(body: ActionWrite, request: Request, principal: Admin) -> Response:
    rt = get_runtime(request)
    ref = f"{body.pack}.{body.name}"
    if await rt.db.read(lambda conn: content.get_action(conn, ref)) is not None:
        raise ConflictError(f"action {ref} already exists", hint="use PUT to change it")
    await _write(rt, body, metadata_file=None)
    return json_response(await _action_doc(rt, ref), 201)


@router.put("/api/v1/actions/{ref_or_id}")
async def update_action(
    ref_or_id: str, body: ActionWrite, request: Request, principal: Admin
) -> Response:
    rt = get_runtime(request)
    current = await _action_doc(rt, ref_or_id)
    if (body.pack, body.name) != (current["pack"], current["name"]):
        raise ValidationError(
            f"name/pack: an update cannot rename {current['ref']} to {body.pack}.{body.name}",
            hint="clone it, then delete the old one",
        )
    await _write(rt, body, metadata_file=current.get("metadata_file"))
    return json_response(await _action_doc(rt, current["ref"]))


@router.delete("/api/v1/actions/{ref_or_id}", status_code=204)
async def delete_action(ref_or_id: str, request: Request, principal: Admin) -> Response:
    rt = get_runtime(request)
    raw = await request.body()
    try:
        body = ActionDelete.model_validate_json(raw) if raw.strip() else ActionDelete()
    except PydanticError as exc:
        problems = "; ".join(
            f"body.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationError(f"invalid request: {problems}") from None
    current = await _action_doc(rt, ref_or_id)
    pack_dir = await _writable_pack(rt, current["pack"])
    files = _Files()
    files.delete(_inside(pack_dir, current.get("metadata_file") or "", "metadata_file"))
    if body.remove_files and current.get("entry_point"):
        files.delete(_inside(pack_dir / "actions", current["entry_point"], "entry_point"))
    await _register(rt, current["pack"], files)
    return Response(status_code=204)


@router.post("/api/v1/actions/{ref_or_id}/clone", status_code=201)
async def clone_action(
    ref_or_id: str, body: ActionClone, request: Request, principal: Admin
) -> Response:
    rt = get_runtime(request)
    source = await _action_doc(rt, ref_or_id)
    dest_ref = f"{body.dest_pack}.{body.dest_action}"
    existing = await rt.db.read(lambda conn: content.get_action(conn, dest_ref))
    if existing is not None and not body.overwrite:
        raise ConflictError(f"action {dest_ref} already exists", hint="set overwrite: true")
    dest_dir = await _writable_pack(rt, body.dest_pack)
    src_pack = await rt.db.read(lambda conn: content.get_pack(conn, source["pack"]))
    assert src_pack is not None
    files = _Files()
    entry = source.get("entry_point") or ""
    if entry:
        src = _inside(Path(src_pack.path) / "actions", entry, "entry_point")
        dst = _inside(dest_dir / "actions", entry, "entry_point")
        if src.is_file() and src != dst:
            files.write(dst, src.read_text())
        elif src.is_dir() and src != dst:
            shutil.copytree(src, dst, dirs_exist_ok=True)
    meta = {
        k: v
        for k, v in source.items()
        if k not in ("id", "ref", "uid", "pack", "metadata_file") and v not in ("", {}, [])
    }
    meta["name"] = body.dest_action
    files.write(
        dest_dir / "actions" / f"{body.dest_action}.yaml",
        "---\n" + yaml.safe_dump(meta, sort_keys=False),
    )
    await _register(rt, body.dest_pack, files)
    return json_response(await _action_doc(rt, dest_ref), 201)
