"""Pack content: packs, actions (with immutable snapshots), rules, sensors, policies, aliases,
trigger types and pack configs.

Registration replaces a pack's content in one transaction, keeping the ids of objects whose
ref did not change, so that nothing is ever half-registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from squall.model.ids import new_id
from squall.store.schema import (
    action_aliases,
    action_snapshots,
    actions,
    pack_configs,
    packs,
    policies,
    rules,
    sensor_types,
    trigger_types,
)
from squall.store.util import upsert

__all__ = [
    "CONTENT_TABLES",
    "ActionRecord",
    "PackRecord",
    "doc_hash",
    "enabled_rule_trigger_types",
    "get_action",
    "get_pack",
    "get_pack_config",
    "get_snapshot",
    "get_snapshots",
    "list_actions",
    "list_content",
    "list_packs",
    "remove_pack",
    "replace_pack",
]

#: Tables holding per-pack content, by kind.
CONTENT_TABLES: dict[str, sa.Table] = {
    "actions": actions,
    "rules": rules,
    "sensors": sensor_types,
    "policies": policies,
    "aliases": action_aliases,
    "triggers": trigger_types,
}


def doc_hash(doc: Mapping[str, Any]) -> str:
    """Content hash of a document (stable across key order)."""
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class PackRecord:
    ref: str
    name: str
    description: str
    version: str
    path: str
    doc: dict[str, Any]
    content_hash: str
    origin: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ActionRecord:
    id: str
    ref: str
    pack: str
    name: str
    runner_type: str
    enabled: bool
    doc: dict[str, Any]
    snapshot: str


def _pack(row: Any) -> PackRecord:
    return PackRecord(
        row.ref,
        row.name,
        row.description,
        row.version,
        row.path,
        row.doc,
        row.content_hash,
        row.origin,
        row.created_at,
        row.updated_at,
    )


def _action(row: Any) -> ActionRecord:
    return ActionRecord(
        row.id, row.ref, row.pack, row.name, row.runner_type, row.enabled, row.doc, row.snapshot
    )


def get_pack(conn: Connection, ref: str) -> PackRecord | None:
    row = (conn.execute(sa.select(packs).where(packs.c.ref == ref))).first()
    return _pack(row) if row else None


def list_packs(conn: Connection) -> list[PackRecord]:
    rows = (conn.execute(sa.select(packs).order_by(packs.c.ref))).all()
    return [_pack(r) for r in rows]


def get_action(conn: Connection, ref_or_id: str) -> ActionRecord | None:
    c = actions.c
    cond = c.ref == ref_or_id if "." in ref_or_id else c.id == ref_or_id
    row = (conn.execute(sa.select(actions).where(cond))).first()
    return _action(row) if row else None


def list_actions(
    conn: Connection,
    *,
    pack: str | None = None,
    name: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> tuple[list[ActionRecord], int]:
    c = actions.c
    where = []
    if pack:
        where.append(c.pack == pack)
    if name:
        where.append(c.name == name)
    total = (
        conn.execute(sa.select(sa.func.count()).select_from(actions).where(*where))
    ).scalar_one()
    rows = (
        conn.execute(
            sa.select(actions).where(*where).order_by(c.pack, c.name).limit(limit).offset(offset)
        )
    ).all()
    return [_action(r) for r in rows], int(total)


def get_snapshot(conn: Connection, snapshot: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(action_snapshots.c.doc).where(action_snapshots.c.hash == snapshot))
    ).first()
    return row.doc if row else None


def get_snapshots(conn: Connection, hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
    wanted = list(set(hashes))
    if not wanted:
        return {}
    rows = conn.execute(sa.select(action_snapshots).where(action_snapshots.c.hash.in_(wanted)))
    return {r.hash: r.doc for r in rows}


def list_content(conn: Connection, kind: str, *, pack: str | None = None) -> list[dict[str, Any]]:
    """Documents of one content kind (``rules``, ``sensors`` …), optionally for one pack."""
    table = CONTENT_TABLES[kind]
    stmt = sa.select(table.c.doc).order_by(table.c.ref)
    if pack:
        stmt = stmt.where(table.c.pack == pack)
    return [r.doc for r in (conn.execute(stmt)).all()]


def enabled_rule_trigger_types(conn: Connection) -> list[str]:
    """The trigger types that at least one enabled rule listens to."""
    rows = conn.execute(
        sa.select(rules.c.trigger_type).where(rules.c.enabled.is_(True)).distinct()
    ).all()
    return [r.trigger_type for r in rows]


def get_pack_config(conn: Connection, pack: str) -> tuple[dict[str, Any], list[str]]:
    """A pack's config values and its secret paths (``({}, [])`` when it has none)."""
    row = (conn.execute(sa.select(pack_configs).where(pack_configs.c.pack == pack))).first()
    if row is None:
        return {}, []
    return dict(row.values), list(row.secret_paths)


def _content_row(kind: str, doc: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": doc["id"],
        "ref": doc["ref"],
        "pack": doc["pack"],
        "name": doc["name"],
        "doc": dict(doc),
        "team": None,
        "created_at": now,
        "updated_at": now,
    }
    if kind == "actions":
        row["runner_type"] = doc["runner_type"]
        row["enabled"] = bool(doc.get("enabled", True))
        row["snapshot"] = doc_hash(doc)
    elif kind == "rules":
        row["trigger_type"] = doc.get("trigger", {}).get("type", "")
        row["enabled"] = bool(doc.get("enabled", False))
    elif kind == "policies":
        row["resource_ref"] = doc.get("resource_ref", "")
        row["policy_type"] = doc.get("policy_type", "")
        row["enabled"] = bool(doc.get("enabled", True))
    elif kind in ("sensors", "aliases"):
        row["enabled"] = bool(doc.get("enabled", True))
    return row


def replace_pack(
    conn: Connection,
    *,
    pack: Mapping[str, Any],
    content: Mapping[str, Sequence[dict[str, Any]]],
    config: tuple[dict[str, Any], dict[str, Any] | None, list[str]] | None,
    now: datetime,
) -> dict[str, int]:
    """Replace everything registered for ``pack['ref']`` with ``content``.

    ``content`` maps a kind (see :data:`CONTENT_TABLES`) to documents that carry ``ref``,
    ``pack``, ``name``; an ``id`` is assigned (kept stable for an existing ref) and written
    into each document. Returns how many objects of each kind were registered.
    """
    ref = pack["ref"]
    existing = get_pack(conn, ref)
    pack_row = {
        "ref": ref,
        "name": pack.get("name", ref),
        "description": pack.get("description", ""),
        "version": str(pack.get("version", "")),
        "path": pack["path"],
        "doc": dict(pack["doc"]),
        "content_hash": pack.get("content_hash", ""),
        "origin": pack.get("origin", "user"),
        "team": None,
        "created_at": existing.created_at if existing else now,
        "updated_at": now,
    }
    upsert(conn, packs, [pack_row], keys=["ref"])
    counts: dict[str, int] = {}
    for kind, table in CONTENT_TABLES.items():
        docs = list(content.get(kind, ()))
        old = {
            r.ref: (r.id, r.created_at)
            for r in (
                conn.execute(
                    sa.select(table.c.ref, table.c.id, table.c.created_at).where(
                        table.c.pack == ref
                    )
                )
            ).all()
        }
        rows = []
        for doc in docs:
            prior = old.get(doc["ref"])
            doc["id"] = prior[0] if prior else new_id()
            row = _content_row(kind, doc, now)
            if prior:
                row["created_at"] = prior[1]
            rows.append(row)
        gone = set(old) - {d["ref"] for d in docs}
        if gone:
            conn.execute(table.delete().where(table.c.ref.in_(sorted(gone))))
        if kind == "actions" and rows:
            upsert(
                conn,
                action_snapshots,
                [{"hash": r["snapshot"], "doc": r["doc"]} for r in rows],
                keys=["hash"],
                update=[],
            )
        upsert(conn, table, rows, keys=["id"])
        counts[kind] = len(rows)
    conn.execute(pack_configs.delete().where(pack_configs.c.pack == ref))
    if config is not None:
        values, schema, secret_paths = config
        conn.execute(
            pack_configs.insert().values(
                pack=ref, values=values, schema=schema, secret_paths=secret_paths, updated_at=now
            )
        )
    return counts


def remove_pack(conn: Connection, ref: str) -> bool:
    """Unregister a pack and all its content (execution history is kept)."""
    for table in CONTENT_TABLES.values():
        conn.execute(table.delete().where(table.c.pack == ref))
    conn.execute(pack_configs.delete().where(pack_configs.c.pack == ref))
    res = conn.execute(packs.delete().where(packs.c.ref == ref))
    return bool(res.rowcount)
