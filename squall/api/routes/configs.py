"""``/api/v1/configs`` and ``/api/v1/config_schemas``: pack configuration.

A pack's config lives in ``$SQUALL_HOME/configs/<pack>.yaml`` (``SQUALL_CONFIGS_PATH``), as
StackStorm's ``/opt/stackstorm/configs``. ``PUT`` writes that file and registers the pack
again, so the values are validated against ``config.schema.yaml`` exactly as at start-up and
nothing is half-written: an invalid config leaves the file and the registered values as they
were. Secret values are masked unless an admin asks for ``show_secrets``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

import yaml
from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from squall.api.deps import Auth, Paging, get_runtime
from squall.api.serialize import MASK, json_response
from squall.auth.service import Principal
from squall.errors import NotFoundError, PermissionDenied, ValidationError
from squall.store import content
from squall.store.schema import pack_configs

__all__ = ["router"]

router = APIRouter(tags=["configs"])


def _mask(values: dict[str, Any], secret_paths: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(values)
    for path in secret_paths:
        parts = path.split(".")
        node: Any = out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            node[parts[-1]] = MASK
    return out


def _rows(conn: Connection) -> list[Any]:
    return list(conn.execute(pack_configs.select().order_by(pack_configs.c.pack)).all())


def _config_doc(row: Any, *, show_secrets: bool) -> dict[str, Any]:
    values = dict(row.values or {})
    return {
        "id": row.pack,
        "pack": row.pack,
        "values": values if show_secrets else _mask(values, row.secret_paths or []),
    }


def _may_show(principal: Principal, show_secrets: bool) -> bool:
    if show_secrets and not principal.is_admin:
        raise PermissionDenied(
            f"user {principal.user!r} may not read secret config values",
            hint="only admins may use show_secrets",
        )
    return show_secrets


@router.get("/api/v1/configs")
async def list_configs(
    request: Request, principal: Auth, page: Paging, show_secrets: bool = False
) -> Response:
    shown = _may_show(principal, show_secrets)
    rows = await get_runtime(request).db.read(_rows)
    docs = [_config_doc(r, show_secrets=shown) for r in rows if r.values]
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


async def _row(request: Request, pack: str) -> Any:
    rows = await get_runtime(request).db.read(_rows)
    for row in rows:
        if row.pack == pack:
            return row
    return None


@router.get("/api/v1/configs/{pack_ref}")
async def get_config(
    pack_ref: str, request: Request, principal: Auth, show_secrets: bool = False
) -> Response:
    shown = _may_show(principal, show_secrets)
    row = await _row(request, pack_ref)
    if row is None or not row.values:
        raise NotFoundError(f"config of pack {pack_ref!r} not found (no such pack or no config)")
    return json_response(_config_doc(row, show_secrets=shown))


@router.put("/api/v1/configs/{pack_ref}")
async def put_config(
    pack_ref: str, request: Request, principal: Auth, show_secrets: bool = False
) -> Response:
    """Replace a pack's config with the JSON object in the body (validated by its schema)."""
    import orjson

    rt = get_runtime(request)
    if await rt.db.read(lambda conn: content.get_pack(conn, pack_ref)) is None:
        raise NotFoundError(f"pack {pack_ref!r} not found")
    try:
        values = orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ValidationError("body: must be a JSON object of config values")
    path = rt.settings.configs_dir / f"{pack_ref}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_bytes() if path.exists() else None
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(values, sort_keys=False))
    os.replace(tmp, path)
    results = await rt.packs.register_all([pack_ref])
    failed = [r for r in results if not r.ok]
    if failed:
        # Put the old file back and register it again: the config stays as it was.
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(previous)
        await rt.packs.register_all([pack_ref])
        problems = "; ".join(
            "; ".join(str(i) for i in r.issues) or r.error or "registration failed" for r in failed
        )
        raise ValidationError(f"invalid config for pack {pack_ref!r}: {problems}")
    row = await _row(request, pack_ref)
    shown = principal.is_admin and show_secrets
    if row is None:
        return json_response({"id": pack_ref, "pack": pack_ref, "values": values})
    return json_response(_config_doc(row, show_secrets=shown))


@router.get("/api/v1/config_schemas")
async def list_config_schemas(request: Request, principal: Auth, page: Paging) -> Response:
    rows = await get_runtime(request).db.read(_rows)
    docs = [
        {"id": r.pack, "pack": r.pack, "attributes": r.schema} for r in rows if r.schema is not None
    ]
    return json_response(
        docs[page.offset : page.offset + page.limit],
        headers={"X-Total-Count": str(len(docs)), "X-Limit": str(page.limit)},
    )


@router.get("/api/v1/config_schemas/{pack_ref}")
async def get_config_schema(pack_ref: str, request: Request, principal: Auth) -> Response:
    row = await _row(request, pack_ref)
    if row is None or row.schema is None:
        raise NotFoundError(
            f"config schema of pack {pack_ref!r} not found (no such pack or no schema)"
        )
    return json_response({"id": pack_ref, "pack": pack_ref, "attributes": row.schema})
