"""Workflow runs: definitions, the per-run header, incremental conductor state, and the inbox.

A run's conductor state (``WorkflowState.to_dict``) is stored in pieces so that one state
change writes a few small rows whatever the size of the history:

* ``workflow_executions`` — the header (status, errors, output …), the static part (inputs,
  parent context) and a version counter bumped by every processing transaction;
* ``workflow_parts`` — one row per route (``r``), context snapshot (``c``), task entry
  (``s``), staged task (``g``), with-items values (``v``), items meta (``m``) and item
  (``i``), keyed by index or ``task__rN`` (items: ``task__rN#idx``).

:func:`save_changes` writes a ``pop_changes()`` change set; :func:`load_state` rebuilds the
``to_dict`` document for ``WorkflowConductor.from_state``.

The inbox of events is :mod:`squall.store.workflow_inbox`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from squall.store.schema import (
    workflow_definitions,
    workflow_executions,
    workflow_parts,
)
from squall.store.util import upsert

__all__ = [
    "WorkflowRow",
    "definition_hash",
    "get_definition",
    "get_workflow",
    "insert_workflow",
    "load_state",
    "lock_workflows",
    "put_definition",
    "save_changes",
    "save_document",
    "save_header",
]

_W = workflow_executions.c
_P = workflow_parts.c


# --- definitions ------------------------------------------------------------------------------


def definition_hash(text: str) -> str:
    """Content hash of a definition text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def put_definition(conn: Connection, kind: str, text: str, *, now: datetime) -> str:
    """Store a definition once; returns its hash."""
    digest = definition_hash(text)
    upsert(
        conn,
        workflow_definitions,
        [{"hash": digest, "kind": kind, "text": text, "created_at": now}],
        keys=["hash"],
        update=[],
    )
    return digest


def get_definition(conn: Connection, digest: str) -> str | None:
    """The text of a stored definition."""
    row = conn.execute(
        sa.select(workflow_definitions.c.text).where(workflow_definitions.c.hash == digest)
    ).first()
    return str(row.text) if row else None


# --- runs -------------------------------------------------------------------------------------


@dataclass
class WorkflowRow:
    """The header row of one workflow run."""

    id: str
    kind: str
    status: str
    definition_hash: str
    header: dict[str, Any]
    static: dict[str, Any]
    meta: dict[str, Any]
    version: int

    @classmethod
    def from_row(cls, row: Any) -> WorkflowRow:
        m = row._mapping
        return cls(
            id=m["id"],
            kind=m["kind"],
            status=m["status"],
            definition_hash=m["definition_hash"],
            header=dict(m["header"] or {}),
            static=dict(m["static"] or {}),
            meta=dict(m["meta"] or {}),
            version=int(m["version"]),
        )


def insert_workflow(
    conn: Connection,
    *,
    id: str,
    kind: str,
    status: str,
    definition_hash: str,
    header: Mapping[str, Any],
    static: Mapping[str, Any],
    meta: Mapping[str, Any],
    now: datetime,
) -> None:
    """Create the header row of a new run (version 0)."""
    conn.execute(
        workflow_executions.insert().values(
            id=id,
            kind=kind,
            status=status,
            definition_hash=definition_hash,
            header=dict(header),
            static=dict(static),
            meta=dict(meta),
            version=0,
            created_at=now,
            updated_at=now,
        )
    )


def get_workflow(conn: Connection, workflow_id: str) -> WorkflowRow | None:
    """The header row of a run, or None."""
    row = conn.execute(sa.select(workflow_executions).where(_W.id == workflow_id)).first()
    return WorkflowRow.from_row(row) if row else None


def lock_workflows(
    conn: Connection, ids: Sequence[str], *, skip_locked: bool = True
) -> list[WorkflowRow]:
    """Lock the header rows of ``ids`` (rows another engine holds are skipped by default)."""
    if not ids:
        return []
    stmt = _LOCK[skip_locked]
    return [WorkflowRow.from_row(r) for r in conn.execute(stmt, {"ids": list(ids)}).all()]


# Built once: this runs in every workflow transition.
_LOCK = {
    skip: sa.select(workflow_executions)
    .where(_W.id.in_(sa.bindparam("ids", expanding=True)))
    .with_for_update(skip_locked=skip)
    for skip in (True, False)
}


def _header_statement(header: bool, static: bool) -> Any:
    key = (header, static)
    stmt = _HEADER.get(key)
    if stmt is None:
        values: dict[str, Any] = {
            "status": sa.bindparam("b_status"),
            "version": sa.bindparam("b_version"),
            "updated_at": sa.bindparam("b_now"),
        }
        if header:
            values["header"] = sa.bindparam("b_header")
        if static:
            values["static"] = sa.bindparam("b_static")
        stmt = _HEADER[key] = (
            workflow_executions.update().where(_W.id == sa.bindparam("b_id")).values(**values)
        )
    return stmt


_HEADER: dict[tuple[bool, bool], Any] = {}


def save_header(
    conn: Connection,
    workflow_id: str,
    *,
    status: str,
    header: Mapping[str, Any] | None,
    version: int,
    now: datetime,
    static: Mapping[str, Any] | None = None,
) -> None:
    """Write the status (and header/static when given) and the new version."""
    params: dict[str, Any] = {
        "b_id": workflow_id,
        "b_status": status,
        "b_version": version,
        "b_now": now,
    }
    if header is not None:
        params["b_header"] = dict(header)
    if static is not None:
        params["b_static"] = dict(static)
    conn.execute(_header_statement(header is not None, static is not None), params)


def _upsert_parts(conn: Connection) -> Any:
    """The prebuilt ``INSERT … ON CONFLICT DO UPDATE`` for parts, per dialect."""
    name = conn.dialect.name
    stmt = _UPSERT.get(name)
    if stmt is None:
        base: Any = (
            postgresql.insert(workflow_parts)
            if name == "postgresql"
            else sqlite.insert(workflow_parts)
        )
        stmt = _UPSERT[name] = base.on_conflict_do_update(
            index_elements=["workflow_id", "kind", "key"], set_={"doc": base.excluded.doc}
        )
    return stmt


_UPSERT: dict[str, Any] = {}


def save_changes(
    conn: Connection,
    workflow_id: str,
    changes: Mapping[str, Any],
    *,
    staged_rows: set[str] | None = None,
    item_keys: set[str] | None = None,
) -> None:
    """Write the parts of a ``pop_changes()`` change set (the header is the caller's).

    Args:
        staged_rows: staged keys that have a row (updated here); a task staged and started
            within one transaction then costs no write at all. None: unknown, delete always.
        item_keys: staged keys that have item rows (updated here).
    """
    rows: list[dict[str, Any]] = []

    def put(kind: str, key: Any, doc: Any) -> None:
        rows.append({"workflow_id": workflow_id, "kind": kind, "key": str(key), "doc": doc})

    for idx, details in changes.get("routes", {}).items():
        put("r", idx, details)
    for idx, snapshot in changes.get("contexts", {}).items():
        put("c", idx, snapshot)
    for idx, entry in changes.get("sequence", {}).items():
        put("s", idx, entry)
    removed: list[str] = []
    for key, staged in changes.get("staged", {}).items():
        if staged is None:
            if staged_rows is None or key in staged_rows:
                removed.append(key)
        else:
            put("g", key, staged)
            if staged_rows is not None:
                staged_rows.add(key)
    fresh: list[str] = []
    for key, items in changes.get("items", {}).items():
        put("m", key, items["meta"])
        if "values" in items:
            put("v", key, items["values"])
            fresh.append(key)
        for idx, item in items["items"].items():
            put("i", f"{key}#{idx}", item)
    if removed:
        with_items = [k for k in removed if item_keys is None or k in item_keys]
        conn.execute(
            workflow_parts.delete().where(
                _P.workflow_id == workflow_id,
                _P.kind.in_(["g", "m", "v"]),
                _P.key.in_(removed),
            )
        )
        _drop_items(conn, workflow_id, with_items)
        for key in removed:
            if staged_rows is not None:
                staged_rows.discard(key)
            if item_keys is not None:
                item_keys.discard(key)
    restarted = [k for k in fresh if item_keys is None or k in item_keys]
    _drop_items(conn, workflow_id, restarted)
    if item_keys is not None:
        item_keys.update(fresh)
    if rows:
        # One statement for the batch; a change set never names the same part twice.
        conn.execute(_upsert_parts(conn), rows)


def save_document(conn: Connection, workflow_id: str, document: Mapping[str, Any]) -> None:
    """Write a whole ``WorkflowState.to_dict`` document as parts (a re-run's first state)."""
    items: dict[str, Any] = {}
    staged: dict[str, Any] = {}
    for raw in document.get("staged", []):
        key = f"{raw['id']}__r{raw['route']}"
        value = dict(raw)
        tracker = value.get("items")
        if isinstance(tracker, dict):
            meta = {k: tracker[k] for k in ("count", "concurrency", "max_reported") if k in tracker}
            value["items"] = meta
            results = tracker.get("results", {})
            entries: dict[int, dict[str, Any]] = {}
            for idx, status in enumerate(tracker.get("statuses", [])):
                if status != "null" or str(idx) in results:
                    entries[idx] = {"status": status}
                    if str(idx) in results:
                        entries[idx]["result"] = results[str(idx)]
            items[key] = {"meta": meta, "values": tracker.get("values", []), "items": entries}
        staged[key] = value
    changes = {
        "routes": dict(enumerate(document.get("routes", []))),
        "contexts": dict(enumerate(document.get("contexts", []))),
        "sequence": dict(enumerate(document.get("sequence", []))),
        "staged": staged,
        "items": items,
    }
    save_changes(conn, workflow_id, changes)


def _drop_items(conn: Connection, workflow_id: str, keys: Iterable[str]) -> None:
    """Delete the item rows of ``keys`` (``task__rN#…``; LIKE, as PostgreSQL collations do
    not order punctuation bytewise)."""
    for key in keys:
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conn.execute(
            workflow_parts.delete().where(
                _P.workflow_id == workflow_id,
                _P.kind == "i",
                _P.key.like(escaped + "#%", escape="\\"),
            )
        )


def load_state(conn: Connection, row: WorkflowRow) -> dict[str, Any]:
    """Rebuild the conductor document (``WorkflowState.to_dict`` shape) of a run."""
    routes: dict[int, Any] = {}
    contexts: dict[int, Any] = {}
    sequence: dict[int, Any] = {}
    staged: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    values: dict[str, list[Any]] = {}
    items: dict[str, dict[int, dict[str, Any]]] = {}
    rows = conn.execute(sa.select(_P.kind, _P.key, _P.doc).where(_P.workflow_id == row.id)).all()
    for kind, key, doc in rows:
        if kind == "r":
            routes[int(key)] = doc
        elif kind == "c":
            contexts[int(key)] = doc
        elif kind == "s":
            sequence[int(key)] = doc
        elif kind == "g":
            staged[key] = dict(doc)
        elif kind == "m":
            meta[key] = doc
        elif kind == "v":
            values[key] = doc
        elif kind == "i":
            task_key, _, idx = key.rpartition("#")
            items.setdefault(task_key, {})[int(idx)] = doc
    for key, doc in staged.items():
        if key not in meta and not isinstance(doc.get("items"), dict):
            continue
        info = {**(doc.get("items") or {}), **meta.get(key, {})}
        count = int(info.get("count", 0))
        statuses = ["null"] * count
        results: dict[str, Any] = {}
        for idx, item in items.get(key, {}).items():
            if 0 <= idx < count:
                statuses[idx] = item["status"]
                if "result" in item:
                    results[str(idx)] = item["result"]
        info.update(values=values.get(key, []), statuses=statuses, results=results)
        doc["items"] = info
    document: dict[str, Any] = {**row.header, **row.static}
    document["routes"] = [routes[i] for i in sorted(routes)]
    document["contexts"] = [contexts[i] for i in sorted(contexts)]
    document["sequence"] = [sequence[i] for i in sorted(sequence)]
    document["staged"] = sorted(staged.values(), key=lambda s: s.get("order", 0))
    return document
