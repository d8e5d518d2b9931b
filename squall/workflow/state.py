"""The conductor's state: plain data, indexed for constant-cost events, serializable.

Layout (every part JSON-able; see :meth:`WorkflowState.to_dict`):

* ``contexts`` — append-only list of context snapshots ``{"merged", "delta"}``: the full
  context a task sees, and what was published since the workflow's initial context (joins
  and the terminal context merge deltas, as Orquesta merges context lists minus the root).
* ``sequence`` — append-only list of task entries (a task re-entered through a cycle or a
  rerun gets a new entry); entries change in place while the task runs.
* ``staged`` — tasks waiting to run (or with-items tasks with items left), keyed by
  ``task__r<route>``.
* the header — status, routes, error log, output, inputs, parent context, reruns.

An engine can persist all of it as one document, or incrementally: :meth:`pop_changes`
returns only what changed since the last call (header, new contexts, touched entries,
upserted/removed staged tasks), and :func:`apply_changes` folds such a change set into a
stored document. Per event that is a few small rows, whatever the workflow's history.

Derived indexes (latest entry per task/route, status counts, join tallies) are rebuilt from
the data and never stored.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from squall.workflow import statuses as st
from squall.workflow.entries import StagedTask, TaskEntry, merge_dicts, route_key
from squall.workflow.items import ItemsTracker

__all__ = [
    "StagedTask",
    "TaskEntry",
    "WorkflowState",
    "apply_changes",
    "merge_dicts",
    "route_key",
]


class WorkflowState:
    """All mutable conductor state, with the indexes that keep events cheap."""

    def __init__(self) -> None:
        self.status = st.UNSET
        self.routes: list[list[str]] = []
        self.contexts: list[dict[str, Any]] = []
        self.sequence: list[TaskEntry] = []
        self.staged: dict[tuple[str, int], StagedTask] = {}
        self.errors: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.reruns: list[list[int]] = []
        self.output: dict[str, Any] | None = None
        self.inputs: dict[str, Any] = {}
        self.parent_context: dict[str, Any] = {}
        # derived indexes
        self.latest: dict[tuple[str, int], TaskEntry] = {}
        self.counts: Counter[str] = Counter()
        self.active: dict[int, TaskEntry] = {}
        self.staged_ready = 0
        self._staged_counter = 0
        self.terms: set[int] = set()
        self._error_keys: set[str] = set()
        # change tracking
        self._dirty_entries: set[int] = set()
        self._dirty_staged: set[tuple[str, int]] = set()
        self._dirty_items: dict[tuple[str, int], ItemsTracker] = {}
        self._contexts_saved = 0
        self._routes_saved = 0
        self._static_saved = False
        self._header_dirty = True

    # --- entries --------------------------------------------------------------------------

    def add_entry(self, task_id: str, route: int, ctx: int, prev: dict[str, int]) -> TaskEntry:
        """Append a task entry; it becomes the latest for its task and route."""
        entry = TaskEntry(len(self.sequence), task_id, route, ctx, dict(prev))
        self.sequence.append(entry)
        old = self.latest.get((task_id, route))
        if old is not None:
            self._uncount(old)
        self.latest[(task_id, route)] = entry
        self.counts[entry.status] += 1
        self._dirty_entries.add(entry.idx)
        return entry

    def set_status(self, entry: TaskEntry, status: str) -> None:
        """Change an entry's status, keeping the counters right."""
        if entry.status == status:
            return
        is_latest = self.latest.get((entry.task_id, entry.route)) is entry
        if is_latest:
            self._uncount(entry)
        entry.status = status
        if is_latest:
            self.counts[status] += 1
            if status in st.ACTIVE_STATUSES:
                self.active[entry.idx] = entry
        self._dirty_entries.add(entry.idx)

    def _uncount(self, entry: TaskEntry) -> None:
        self.counts[entry.status] -= 1
        self.active.pop(entry.idx, None)

    def set_term(self, entry: TaskEntry, term: bool) -> None:
        """Mark or unmark an entry as terminal."""
        if entry.term != term:
            entry.term = term
            (self.terms.add if term else self.terms.discard)(entry.idx)
            self._dirty_entries.add(entry.idx)

    def touch(self, entry: TaskEntry) -> None:
        """Record that ``entry`` changed in place (``next``, ``retry``, result)."""
        self._dirty_entries.add(entry.idx)

    def has_active_tasks(self) -> bool:
        """Any latest entry in an active status."""
        return bool(self.active)

    def has_status(self, *statuses: str) -> bool:
        """Any latest entry in one of ``statuses``."""
        return any(self.counts[s] > 0 for s in statuses)

    # --- staging --------------------------------------------------------------------------

    def add_staged(
        self,
        task_id: str,
        route: int,
        ctx: int,
        prev: dict[str, int],
        *,
        ready: bool,
        retry: dict[str, Any] | None = None,
    ) -> StagedTask:
        """Stage a task (replacing nothing: callers check :attr:`staged` first)."""
        staged = StagedTask(task_id, route, ctx, dict(prev), ready, retry)
        self._staged_counter += 1
        self._header_dirty = True
        staged.order = self._staged_counter
        self.staged[(task_id, route)] = staged
        if ready:
            self.staged_ready += 1
        self._dirty_staged.add((task_id, route))
        return staged

    def set_staged_flags(
        self, staged: StagedTask, *, ready: bool | None = None, completed: bool | None = None
    ) -> None:
        """Update ``ready``/``completed`` keeping :attr:`staged_ready` right."""
        before = staged.ready and not staged.completed
        if ready is not None:
            staged.ready = ready
        if completed is not None:
            staged.completed = completed
        after = staged.ready and not staged.completed
        self.staged_ready += int(after) - int(before)
        self.touch_staged(staged)

    def touch_staged(self, staged: StagedTask) -> None:
        """Record that a staged task changed in place."""
        self._dirty_staged.add((staged.task_id, staged.route))

    def touch_items(self, staged: StagedTask) -> None:
        """Record that item statuses or results of a staged with-items task changed."""
        if staged.items is not None:
            self._dirty_items[(staged.task_id, staged.route)] = staged.items

    def remove_staged(self, task_id: str, route: int) -> None:
        """Unstage a task, unless some of its items are still active."""
        staged = self.staged.get((task_id, route))
        if staged is None or (staged.items is not None and staged.items.active > 0):
            return
        del self.staged[(task_id, route)]
        if staged.ready and not staged.completed:
            self.staged_ready -= 1
        self._dirty_staged.add((task_id, route))

    # --- contexts, errors -------------------------------------------------------------------

    def add_context(self, merged: dict[str, Any], delta: dict[str, Any]) -> int:
        """Append a context snapshot; returns its index."""
        self.contexts.append({"merged": merged, "delta": delta})
        return len(self.contexts) - 1

    def log_entry(self, entry: dict[str, Any]) -> None:
        """Append to the error log (``type: error``) or the info log; duplicates are ignored."""
        target = self.errors if entry["type"] == "error" else self.log
        key = json.dumps(entry, sort_keys=True, default=str)
        if entry["type"] == "error":
            if key in self._error_keys:
                return
            self._error_keys.add(key)
        elif entry in target:
            return
        target.append(entry)
        self._header_dirty = True

    def remove_errors(self, task_id: str) -> None:
        """Drop every error logged for ``task_id`` (before a rerun)."""
        self.errors = [e for e in self.errors if e.get("task_id") != task_id]
        self._error_keys = {json.dumps(e, sort_keys=True, default=str) for e in self.errors}
        self._header_dirty = True

    def mark_header(self) -> None:
        """Record that a header field (status, routes, output, reruns) changed."""
        self._header_dirty = True

    # --- serialization ----------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """The small part that is rewritten when it changes (status, errors, output...)."""
        return {
            "status": self.status,
            "errors": list(self.errors),
            "log": list(self.log),
            "reruns": [list(r) for r in self.reruns],
            "output": self.output,
            "staged_order": self._staged_counter,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole state as plain data (JSON-able when results and contexts are)."""
        return {
            **self.header(),
            "input": self.inputs,
            "context": self.parent_context,
            "routes": [list(r) for r in self.routes],
            "contexts": list(self.contexts),
            "sequence": [e.to_dict() for e in self.sequence],
            "staged": [s.to_dict() for s in self.staged.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowState:
        """Rebuild a state (and its indexes) from :meth:`to_dict` output."""
        state = cls()
        state.status = data.get("status", st.UNSET)
        state.routes = [list(r) for r in data.get("routes", [])]
        state.errors = list(data.get("errors", []))
        state._error_keys = {json.dumps(e, sort_keys=True, default=str) for e in state.errors}
        state.log = list(data.get("log", []))
        state.reruns = [list(r) for r in data.get("reruns", [])]
        state.output = data.get("output")
        state.inputs = data.get("input") or {}
        state.parent_context = data.get("context") or {}
        state._staged_counter = int(data.get("staged_order", 0))
        state.contexts = list(data.get("contexts", []))
        for idx, raw in enumerate(data.get("sequence", [])):
            entry = TaskEntry.from_dict(idx, raw)
            state.sequence.append(entry)
            state.latest[(entry.task_id, entry.route)] = entry
            if entry.term:
                state.terms.add(idx)
        for entry in state.latest.values():
            state.counts[entry.status] += 1
            if entry.status in st.ACTIVE_STATUSES:
                state.active[entry.idx] = entry
        for raw in sorted(data.get("staged", []), key=lambda s: s.get("order", 0)):
            staged = StagedTask.from_dict(raw)
            state.staged[(staged.task_id, staged.route)] = staged
            state._staged_counter = max(state._staged_counter, staged.order)
            if staged.ready and not staged.completed:
                state.staged_ready += 1
        state.pop_changes()
        return state

    def pop_changes(self) -> dict[str, Any]:
        """What changed since the last call, for incremental persistence.

        Returns:
            ``{"header": {...} | None, "static": {"input", "context"} (first call only),
            "routes": {idx: details}, "contexts": {idx: snapshot}, "sequence": {idx: entry},
            "staged": {"task__rN": staged-or-None}, "items": {"task__rN": item changes}}``
            — routes, contexts and sequence entries by index (new or changed ones only);
            ``None`` = removed; staged tasks come without their item arrays, item statuses
            and results come per item under ``items``.
        """
        items = {
            route_key(*key): tracker.pop_changes()
            for key, tracker in self._dirty_items.items()
            if key in self.staged and self.staged[key].items is tracker
        }
        changes: dict[str, Any] = {
            "header": self.header() if self._header_dirty else None,
            "routes": {
                i: list(self.routes[i]) for i in range(self._routes_saved, len(self.routes))
            },
            "contexts": {
                i: self.contexts[i] for i in range(self._contexts_saved, len(self.contexts))
            },
            "sequence": {i: self.sequence[i].to_dict() for i in sorted(self._dirty_entries)},
            "staged": {
                route_key(*key): (
                    self.staged[key].to_dict(full=False) if key in self.staged else None
                )
                for key in self._dirty_staged
            },
            "items": items,
        }
        if not self._static_saved:
            changes["static"] = {"input": self.inputs, "context": self.parent_context}
            self._static_saved = True
        self._dirty_items.clear()
        self._dirty_entries.clear()
        self._dirty_staged.clear()
        self._contexts_saved = len(self.contexts)
        self._routes_saved = len(self.routes)
        self._header_dirty = False
        return changes


def apply_changes(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Fold a :meth:`WorkflowState.pop_changes` result into a :meth:`~WorkflowState.to_dict`
    document (modified in place and returned); a reference for storage adapters."""
    if changes.get("header") is not None:
        document.update(changes["header"])
    if "static" in changes:
        document.update(changes["static"])
    routes = document.setdefault("routes", [])
    for idx, details in sorted(changes.get("routes", {}).items()):
        while len(routes) <= idx:
            routes.append(None)
        routes[idx] = details
    contexts = document.setdefault("contexts", [])
    for idx, snapshot in sorted(changes.get("contexts", {}).items()):
        while len(contexts) <= idx:
            contexts.append(None)
        contexts[idx] = snapshot
    sequence = document.setdefault("sequence", [])
    for idx, entry in sorted(changes.get("sequence", {}).items()):
        while len(sequence) <= idx:
            sequence.append(None)
        sequence[idx] = entry
    staged = {route_key(s["id"], s["route"]): s for s in document.get("staged", [])}
    for key, value in changes.get("staged", {}).items():
        if value is None:
            staged.pop(key, None)
            continue
        old_items = (staged.get(key) or {}).get("items")
        value = dict(value)
        if "items" in value:
            kept = old_items if isinstance(old_items, dict) and "statuses" in old_items else {}
            value["items"] = {**kept, **value["items"]}
        staged[key] = value
    for key, item_changes in changes.get("items", {}).items():
        entry = staged.get(key)
        if entry is None:
            continue
        items = entry.setdefault("items", {})
        items.update(item_changes["meta"])
        if "values" in item_changes:
            items["values"] = item_changes["values"]
        statuses = items.setdefault("statuses", ["null"] * items["count"])
        results = items.setdefault("results", {})
        for idx, item in item_changes["items"].items():
            statuses[int(idx)] = item["status"]
            if "result" in item:
                results[str(idx)] = item["result"]
            else:
                results.pop(str(idx), None)
    document["staged"] = sorted(staged.values(), key=lambda s: s.get("order", 0))
    return document
