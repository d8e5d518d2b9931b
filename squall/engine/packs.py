"""Pack registration: load packs from disk, check them against the runner catalog, build the
API documents, prepare virtualenvs and replace each pack's content in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from squall.config import Settings
from squall.engine.pack_install import PackInstaller, public_record, read_install_record
from squall.engine.policies import check_policy
from squall.engine.virtualenvs import ensure_virtualenv
from squall.engine.workflows_check import action_issues
from squall.errors import (
    DomainError,
    Issue,
    NotFoundError,
    PackError,
    RuleError,
    ValidationError,
)
from squall.model.ids import new_id
from squall.packs import (
    LoadedPack,
    YamlFileError,
    find_packs,
    load_pack,
    load_yaml_file,
    read_pack_ref,
)
from squall.params import merge_parameter_specs, validate_parameter_specs
from squall.rules.rule import trigger_key, trigger_ref
from squall.rules.validate import check_rule
from squall.runners.catalog import RUNNER_TYPES
from squall.store import content, events
from squall.store.db import Database
from squall.store.schema import packs as packs_table
from squall.store.util import utcnow

__all__ = ["BUILTIN_PACKS_DIR", "PackRegistration", "PackService"]

log = logging.getLogger(__name__)

BUILTIN_PACKS_DIR = Path(__file__).resolve().parent.parent / "packs_builtin"


@dataclass
class PackRegistration:
    """What registering one pack did."""

    ref: str
    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    error: str | None = None
    unchanged: bool = False
    virtualenv_built: bool = False
    removed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.issues

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "path": str(self.path),
            "ok": self.ok,
            "unchanged": self.unchanged,
            "counts": self.counts,
            "issues": [str(i) for i in self.issues],
            "warnings": [str(i) for i in self.warnings],
            "error": self.error,
            "virtualenv_built": self.virtualenv_built,
            "removed": self.removed,
        }


def _uid(kind: str, pack: str, name: str) -> str:
    return f"{kind}:{pack}:{name}"


def _action_doc(pack: LoadedPack, action: Any) -> dict[str, Any]:
    meta = action.metadata
    return {
        "name": action.name,
        "pack": pack.ref,
        "ref": action.ref,
        "uid": _uid("action", pack.ref, action.name),
        "description": meta.get("description", ""),
        "enabled": bool(meta.get("enabled", True)),
        "entry_point": meta.get("entry_point", "") or "",
        "runner_type": meta["runner_type"],
        "parameters": dict(meta.get("parameters") or {}),
        "output_schema": dict(meta.get("output_schema") or {}),
        "tags": list(meta.get("tags") or []),
        "notify": dict(meta.get("notify") or {}),
        "metadata_file": action.source,
    }


def _generic_doc(kind: str, pack: LoadedPack, item: Any) -> dict[str, Any]:
    doc = dict(item.metadata)
    doc.update(
        {
            "name": item.name,
            "pack": pack.ref,
            "ref": item.ref,
            "uid": _uid(kind, pack.ref, item.name),
            "metadata_file": item.source,
        }
    )
    return doc


@dataclass
class _Known:
    actions: set[str]
    trigger_types: dict[str, dict[str, Any]]


def trigger_row(trigger: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """The triggers-table row for a rule's trigger."""
    ttype = trigger["type"]
    params = dict(trigger.get("parameters") or {})
    ref = trigger_ref(ttype, params)
    pack, _, name = ref.partition(".")
    return {
        "id": new_id(),
        "ref": ref,
        "type": ttype,
        "key": trigger_key(ttype, params),
        "parameters": params,
        "doc": {
            "ref": ref,
            "uid": f"trigger:{pack}:{name}",
            "name": name,
            "pack": pack,
            "type": ttype,
            "parameters": params,
        },
        "created_at": now,
    }


def _yaml_path(data: Any, parts: list[str]) -> tuple[str | int, ...]:
    """Map a dotted field path onto the document's keys, which may contain dots themselves
    (criteria keys such as ``trigger.body.host``): the longest matching key wins."""
    out: list[str | int] = []
    node = data
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            break
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                out.append(key)
                node = node[key]
                i = j
                break
        else:
            break
    return tuple(out)


def _locate(pack: LoadedPack, source: str, exc: DomainError) -> list[Issue]:
    """Attach file and line to issues that only carry a field path."""
    issues = exc.issues or [Issue(message=exc.message)]
    try:
        doc = load_yaml_file(pack.path / source, display_name=source)
    except YamlFileError:
        doc = None
    located = []
    for issue in issues:
        line = issue.line
        if line is None and doc is not None and issue.path:
            line = doc.line_of(_yaml_path(doc.data, issue.path.split(".")))
        located.append(Issue(message=issue.message, file=source, line=line, path=issue.path))
    return located


def _install_info(path: Path) -> dict[str, Any] | None:
    """Where an installed pack came from (its install record, as the API shows it)."""
    record = read_install_record(path)
    return public_record(record) if record is not None else None


class PackService:
    """Registers packs found on the configured search paths."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.on_change = on_change
        #: Installs packs (from git or a directory) through this service's registration.
        self.installer = PackInstaller(self)

    def search_paths(self) -> list[Path]:
        """Built-in packs first (they cannot be shadowed), then the configured directories."""
        return [BUILTIN_PACKS_DIR, *self.settings.pack_dirs]

    def discover(self) -> dict[str, Path]:
        found = find_packs(self.search_paths())
        for shadow in found.shadowed:
            log.warning(
                "pack %s at %s is shadowed by %s", shadow.ref, shadow.path, shadow.shadowed_by
            )
        out: dict[str, Path] = {}
        for path in found.packs:
            out[path.name] = path
        return out

    async def register_changed(self) -> list[PackRegistration]:
        """Start-up registration: register every pack unless no file of any pack (or its
        config) changed since the last registration, which costs only a directory walk.

        Any change anywhere falls back to :meth:`register_all`, so cross-pack checks (a rule
        using another pack's action) stay right.
        """
        restored = self.installer.recover_interrupted()
        if restored:
            log.warning("undid an interrupted installation of %s", ", ".join(restored))
        found = find_packs(self.search_paths())
        records = {r.ref: r for r in await self.db.read(content.list_packs)}
        by_path = {r.path: r for r in records.values()}
        for path in found.packs:
            record = by_path.get(str(path.absolute()))
            if record is None or record.doc.get("fingerprint") != self._fingerprint(path):
                return await self.register_all()
        current = {str(p.absolute()) for p in found.packs}
        if any(r.path not in current for r in records.values() if r.origin != "system"):
            return await self.register_all()  # a pack disappeared: unregister it
        return [
            PackRegistration(ref=by_path[str(p.absolute())].ref, path=p, unchanged=True)
            for p in found.packs
        ]

    def _fingerprint(self, path: Path) -> str:
        """Sizes and modification times of every file of a pack, and of its site config."""
        entries: list[str] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
            for name in sorted(files):
                try:
                    st = os.stat(os.path.join(root, name))
                except OSError:
                    continue
                rel = os.path.relpath(os.path.join(root, name), path)
                entries.append(f"{rel}:{st.st_size}:{st.st_mtime_ns}")
        ref = read_pack_ref(path)
        config = self.settings.configs_dir / f"{ref}.yaml"
        try:
            st = config.stat()
            entries.append(f"@config:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            pass
        return hashlib.sha256("\n".join(entries).encode()).hexdigest()

    async def register_all(
        self,
        only: Sequence[str] | None = None,
        *,
        progress: Callable[[PackRegistration], None] | None = None,
    ) -> list[PackRegistration]:
        """Register every discovered pack (or those named in ``only``, by ref or dir name).

        All packs are loaded first, so a rule may use an action or trigger type of a pack
        that registers after its own.
        """
        found = find_packs(self.search_paths())
        wanted = set(only or ())
        loaded: list[tuple[Path, LoadedPack | PackError]] = []
        for path in found.packs:
            try:
                loaded.append(
                    (
                        path,
                        load_pack(
                            path,
                            known_runners=RUNNER_TYPES.keys(),
                            config_dir=self.settings.configs_dir,
                        ),
                    )
                )
            except PackError as exc:
                loaded.append((path, exc))
        known = await self._known(loaded)
        results: list[PackRegistration] = []
        seen: set[str] = set()
        for path, pack in loaded:
            ref = pack.ref if isinstance(pack, LoadedPack) else path.name
            if wanted and ref not in wanted and path.name not in wanted:
                continue
            seen.update({ref, path.name})
            if isinstance(pack, PackError):
                reg = PackRegistration(
                    ref=path.name, path=path, error=pack.message, issues=list(pack.issues)
                )
            else:
                reg = await self._register(path, pack, known)
            results.append(reg)
            if progress:
                progress(reg)
        if not wanted:
            for reg in await self._unregister_stale(seen):
                results.append(reg)
                if progress:
                    progress(reg)
        for missing in sorted(wanted - seen):
            reg = PackRegistration(ref=missing, path=Path(missing))
            reg.error = (
                f"no pack {missing!r} on the pack search path "
                f"({':'.join(str(p) for p in self.search_paths())})"
            )
            results.append(reg)
            if progress:
                progress(reg)
        return results

    async def remove(self, ref: str) -> dict[str, Any]:
        """Unregister a pack (its actions, rules …; history stays). Its directory is deleted
        only when it lives in ``$SQUALL_HOME/packs`` (where installed packs go); elsewhere
        it is left alone and would be registered again by the next registration."""
        record = await self.db.read(lambda conn: content.get_pack(conn, ref))
        if record is None:
            raise NotFoundError(f"pack {ref!r} is not registered")
        if record.origin == "system":
            raise ValidationError(f"pack {ref!r} ships with Squall and cannot be removed")

        def _remove(conn: Connection) -> None:
            content.remove_pack(conn, ref)
            events.bump_version(conn, "packs")
            events.bump_version(conn, "rules")

        await self.db.write(_remove)
        if self.on_change is not None:
            self.on_change()
        path = Path(record.path)
        installed = (self.settings.home / "packs").resolve()
        deleted = False
        by_install = (
            path.parent.resolve() == self.installer.install_dir.resolve()
            and read_install_record(path) is not None
        )
        if (path.resolve().is_relative_to(installed) or by_install) and path.exists():
            shutil.rmtree(path)
            deleted = True
        venv = self.settings.home / "virtualenvs" / ref
        if venv.exists():
            shutil.rmtree(venv, ignore_errors=True)
        return {"ref": ref, "path": str(path), "files_deleted": deleted}

    async def _unregister_stale(self, found: set[str]) -> list[PackRegistration]:
        """Packs still registered whose directory is gone from the search path."""
        records = await self.db.read(content.list_packs)
        out = []
        for record in records:
            if record.origin == "system" or record.ref in found:
                continue
            await self.remove(record.ref)
            reg = PackRegistration(ref=record.ref, path=Path(record.path), removed=True)
            reg.warnings.append(
                Issue(message="its directory is no longer on the pack search path: unregistered")
            )
            out.append(reg)
        return out

    async def _known(self, loaded: Sequence[tuple[Path, LoadedPack | PackError]]) -> _Known:
        """Action refs and trigger types that exist or are being registered."""

        def _read(conn: Connection) -> tuple[list[str], list[dict[str, Any]]]:
            actions, _total = content.list_actions(conn, limit=1_000_000)
            return [a.ref for a in actions], content.list_content(conn, "triggers")

        action_refs, trigger_docs = await self.db.read(_read)
        known = _Known(set(action_refs), {d["ref"]: d for d in trigger_docs})
        for _path, pack in loaded:
            if isinstance(pack, LoadedPack):
                known.actions.update(a.ref for a in pack.actions)
                for t in pack.trigger_types:
                    known.trigger_types[t.ref] = dict(t.metadata)
        return known

    async def _register(self, path: Path, pack: LoadedPack, known: _Known) -> PackRegistration:
        reg = PackRegistration(
            ref=pack.ref, path=path, issues=list(pack.issues), warnings=list(pack.warnings)
        )
        docs = self._build_docs(pack, reg, known)
        if pack.requirements_file is not None:
            try:
                _python, built = await ensure_virtualenv(
                    self.settings.home, pack.ref, pack.requirements_file
                )
                reg.virtualenv_built = built
            except PackError as exc:
                # Without its dependencies no Python action of the pack can run: do not
                # register a pack that would fail at every execution.
                reg.error = str(exc)
                return reg
        install = _install_info(path)
        hashed: dict[str, Any] = {
            "pack": pack.meta,
            "docs": docs,
            "config": pack.config,
            "path": str(pack.path),
        }
        if install is not None:  # only then: hashes of other packs stay as they were
            hashed["install"] = install
        content_hash = content.doc_hash(hashed)
        origin = "system" if path.resolve().is_relative_to(BUILTIN_PACKS_DIR) else "user"
        pack_doc = self._pack_doc(pack, origin)
        if install is not None:
            pack_doc["install"] = install
        if not reg.issues:
            # Only a pack that registered cleanly may be skipped at the next start.
            pack_doc["fingerprint"] = self._fingerprint(path)
        config = (
            (pack.config, pack.config_schema, pack.secret_config_paths)
            if (pack.config_schema is not None or pack.config)
            else None
        )
        trigger_rows = [trigger_row(r["trigger"], now=utcnow()) for r in docs["rules"]]
        now = utcnow()

        def _replace(conn: Connection) -> dict[str, int] | None:
            existing = content.get_pack(conn, pack.ref)
            if existing is not None and existing.content_hash == content_hash:
                if existing.doc.get("fingerprint") != pack_doc.get("fingerprint"):
                    # Same content, files touched: remember the files' new state.
                    conn.execute(
                        packs_table.update()
                        .where(packs_table.c.ref == pack.ref)
                        .values(doc={**existing.doc, "fingerprint": pack_doc.get("fingerprint")})
                    )
                return None
            events.bump_version(conn, "packs")
            events.bump_version(conn, "rules")
            events.upsert_triggers(conn, trigger_rows)
            return content.replace_pack(
                conn,
                pack={
                    "ref": pack.ref,
                    "name": pack.meta.get("name", pack.ref),
                    "description": pack.meta.get("description", ""),
                    "version": pack.version,
                    "path": str(pack.path),
                    "doc": pack_doc,
                    "content_hash": content_hash,
                    "origin": origin,
                },
                content=docs,
                config=config,
                now=now,
            )

        counts = await self.db.write(_replace)
        if self.on_change is not None:
            self.on_change()
        if counts is None:
            reg.unchanged = True
            reg.counts = {kind: len(items) for kind, items in docs.items()}
        else:
            reg.counts = counts
        return reg

    def _pack_doc(self, pack: LoadedPack, origin: str) -> dict[str, Any]:
        meta = pack.meta
        return {
            "ref": pack.ref,
            "uid": f"pack:{pack.ref}",
            "name": meta.get("name", pack.ref),
            "description": meta.get("description", ""),
            "version": pack.version,
            "author": meta.get("author", ""),
            "email": meta.get("email", ""),
            "keywords": list(meta.get("keywords") or []),
            "contributors": list(meta.get("contributors") or []),
            "dependencies": list(meta.get("dependencies") or []),
            "python_versions": [str(v) for v in meta.get("python_versions") or []],
            "stackstorm_version": meta.get("stackstorm_version", ""),
            "path": str(pack.path),
            "origin": origin,
        }

    def _build_docs(
        self, pack: LoadedPack, reg: PackRegistration, known: _Known
    ) -> dict[str, list[dict[str, Any]]]:
        docs: dict[str, list[dict[str, Any]]] = {k: [] for k in content.CONTENT_TABLES}
        for action in pack.actions:
            runner = RUNNER_TYPES[action.runner_type]
            try:
                merged = merge_parameter_specs(
                    runner.runner_parameters, action.parameters, action_ref=action.ref
                )
            except DomainError as exc:
                reg.issues.extend(_locate(pack, action.source, exc))
                continue
            problems = validate_parameter_specs(merged, source=action.source)
            # Only the action's own parameters can be wrong here (the runner's are ours).
            problems = [
                p
                for p in problems
                if (p.path or "").split(".")[1:2]
                and (p.path or "").split(".")[1] in action.parameters
            ]
            if problems:
                reg.issues.extend(
                    _locate(
                        pack, action.source, ValidationError("invalid parameters", issues=problems)
                    )
                )
                continue
            workflow_issues = action_issues(action, pack.path)
            if workflow_issues:  # an invalid workflow definition is rejected with its errors
                reg.issues.extend(workflow_issues)
                continue
            docs["actions"].append(_action_doc(pack, action))
        for rule in pack.rules:
            doc = _generic_doc("rule", pack, rule)
            _compiled, issues = check_rule(
                doc, actions=known.actions, trigger_types=known.trigger_types, pack=pack.ref
            )
            if issues:
                reg.issues.extend(
                    _locate(pack, rule.source, RuleError(f"invalid rule {rule.ref}", issues=issues))
                )
                continue
            doc.setdefault("criteria", {})
            doc.setdefault("type", {"ref": "standard", "parameters": {}})
            doc["trigger"] = dict(doc["trigger"])
            doc["trigger"].setdefault("parameters", {})
            doc["trigger"]["ref"] = trigger_ref(
                doc["trigger"]["type"], doc["trigger"]["parameters"]
            )
            docs["rules"].append(doc)
        for policy in pack.policies:
            doc = _generic_doc("policy", pack, policy)
            problems = check_policy(doc)
            if problems:
                reg.issues.extend(
                    _locate(
                        pack,
                        policy.source,
                        ValidationError(f"invalid policy {policy.ref}", issues=problems),
                    )
                )
                continue
            docs["policies"].append(doc)
        for kind, items, uid_kind in (
            ("sensors", pack.sensors, "sensor_type"),
            ("aliases", pack.aliases, "action_alias"),
            ("triggers", pack.trigger_types, "trigger_type"),
        ):
            docs[kind] = [_generic_doc(uid_kind, pack, item) for item in items]
        return docs
