"""Installing packs: from git (StackStorm's ``st2 pack install URL=VERSION``) or a directory.

One install request is one transaction over the pack directory:

1. every spec is parsed, then cloned (or copied) into a hidden staging directory under the
   install directory (the first directory of the pack search path), checked out at its
   version and validated — nothing installed is touched yet;
2. each new copy is swapped into ``<install dir>/<ref>`` by renames (the old copy is moved
   aside into the staging directory, next to a journal of the swaps);
3. the packs are registered through :meth:`PackService.register_all`, the path every
   registration takes (virtualenvs for ``requirements.txt`` included);
4. if any registration fails, the swaps are undone and the previous versions registered
   again; a crash in between is undone from the journal by the next install or start.

Each installed pack carries ``.squall-install.json`` (source URL, version, commit, who and
when), which registration copies into the pack's API document as ``install``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squall.errors import ConflictError, NotFoundError, PackError, ValidationError
from squall.packs import LoadedPack, find_packs, load_pack, read_pack_ref
from squall.packs.git import DEFAULT_TIMEOUT, clone, is_git_repository
from squall.packs.sources import PackSpec, parse_pack_spec, redact_url
from squall.runners.catalog import RUNNER_TYPES
from squall.store.util import utcnow

if TYPE_CHECKING:
    from squall.engine.packs import PackRegistration, PackService

__all__ = [
    "INSTALL_RECORD",
    "InstallOutcome",
    "PackInstaller",
    "public_record",
    "read_install_record",
]

log = logging.getLogger(__name__)

#: The file in an installed pack that says where it came from.
INSTALL_RECORD = ".squall-install.json"
_STAGING_PREFIX = ".squall-install-"
_LOCK_FILE = ".squall-install.lock"
_JOURNAL = "journal.json"
#: Not copied when installing from a plain directory.
_COPY_IGNORE = (".git", "__pycache__", ".venv", "virtualenv", "node_modules", INSTALL_RECORD)

Progress = Callable[[str], None]


def read_install_record(pack_dir: Path) -> dict[str, Any] | None:
    """The install record of a pack directory (``None`` if it was not installed by
    ``pack install`` or the record is unreadable)."""
    try:
        data = json.loads((pack_dir / INSTALL_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically and durably.

    The temporary file gets a fresh random name and is created with ``O_EXCL|O_NOFOLLOW``:
    ``path`` may sit in a directory a git repository filled (the install record of a fresh
    clone), where a planted symlink must never make the server write somewhere else.
    """
    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make the renames and new entries of directory ``path`` durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory; nothing more to do
        pass
    finally:
        os.close(fd)


def _escaping_symlinks(root: Path) -> list[str]:
    """The symlinks under ``root`` (relative paths) whose target lies outside ``root``,
    directories not followed."""
    top = root.resolve()
    out: list[str] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            entry = Path(current) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(top):
                out.append(str(entry.relative_to(root)))
    return sorted(out)


@dataclass
class _Staged:
    spec: PackSpec
    ref: str
    path: Path
    target: Path
    record: dict[str, Any]
    requirements: bool
    version: str
    #: Other copies of the same ref in the install directory (installed earlier under another
    #: directory name) that ``force`` moves away, so they cannot hide the new one.
    displaced: list[Path] = field(default_factory=list)


@dataclass
class _Swap:
    ref: str
    staged: str
    target: str
    previous: str | None
    install_id: str
    #: (where it was, where it was moved in the staging directory) of each displaced copy.
    displaced: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # From a journal: JSON turned the pairs into lists.
        self.displaced = [(str(a), str(b)) for a, b in self.displaced]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class InstallOutcome:
    """What an install request did: the registrations and, per installed pack, its record."""

    results: list[PackRegistration]
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The pack.yaml version of each installed pack.
    versions: dict[str, str] = field(default_factory=dict)
    rolled_back: bool = False

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and not self.rolled_back

    def payload(self) -> dict[str, Any]:
        """The API answer: ``{packs, ok}`` as before, each pack with its ``install`` record,
        and ``faultstring`` when something failed."""
        packs = []
        for reg in self.results:
            doc = reg.as_dict()
            if reg.ref in self.installed:
                doc["version"] = self.versions.get(reg.ref, "")
                doc["install"] = public_record(self.installed[reg.ref])
            packs.append(doc)
        out: dict[str, Any] = {"packs": packs, "ok": self.ok, "rolled_back": self.rolled_back}
        if not self.ok:
            problems = "; ".join(
                f"{r.ref}: {r.error or '; '.join(str(i) for i in r.issues[:3])}"
                for r in self.results
                if not r.ok
            )
            out["faultstring"] = f"some packs failed to install: {problems}" + (
                "; nothing was installed (previous versions restored)" if self.rolled_back else ""
            )
        return out


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of an install record the API shows (``install`` of a pack document)."""
    keys = ("source", "kind", "version", "commit", "resolved", "installed_at", "installed_by")
    return {k: record.get(k) for k in keys}


class PackInstaller:
    """Installs packs into the first directory of the pack search path."""

    def __init__(self, service: PackService) -> None:
        self.service = service
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[InstallOutcome]] = set()

    @property
    def install_dir(self) -> Path:
        return self.service.settings.pack_dirs[0]

    # --- public -----------------------------------------------------------------------------

    async def install(
        self,
        specs: Sequence[str],
        *,
        force: bool = False,
        user: str = "",
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> InstallOutcome:
        """Install ``specs`` (``URL[=VERSION]``, a directory, or a pack name on the search
        path) as one all-or-nothing change, then register them.

        ``force`` replaces a pack directory that ``pack install`` did not create and lets a
        pack shadow one of the same ref further down the search path. ``timeout`` bounds each
        git command (seconds).

        Raises:
            ValidationError: A spec is malformed.
            PackError: Cloning, the version, ``pack.yaml`` or a content file is wrong; the
                message names the spec and what failed. Nothing was changed.
            ConflictError: Another installation kept the install directory locked.
        """
        parsed = [parse_pack_spec(s) for s in specs]
        if not parsed:
            raise ValidationError("packs: give at least one pack to install")
        # Shielded: a client that goes away does not interrupt a swap half-way; the
        # installation finishes (or rolls back) on its own.
        task = asyncio.ensure_future(
            self._install(
                parsed,
                force=force,
                user=user,
                timeout=timeout or DEFAULT_TIMEOUT,
                progress=progress or (lambda _msg: None),
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    def recover_interrupted(self) -> list[str]:
        """Undo the swaps of an installation that was interrupted (a crash between moving a
        new copy in and registering it). Returns the refs restored. Does nothing when another
        process is installing right now."""
        base = self.install_dir
        if not base.is_dir() or not any(base.glob(f"{_STAGING_PREFIX}*")):
            return []
        try:
            fd = os.open(base / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return []
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []
            return self._recover()
        finally:
            os.close(fd)

    # --- the transaction --------------------------------------------------------------------

    async def _install(
        self,
        specs: list[PackSpec],
        *,
        force: bool,
        user: str,
        timeout: float,
        progress: Progress,
    ) -> InstallOutcome:
        base = self.install_dir
        base.mkdir(parents=True, exist_ok=True)
        async with self._locked(base, timeout):
            restored = await asyncio.to_thread(self._recover)
            if restored:
                log.warning("restored packs of an interrupted installation: %s", restored)
                await self._reregister(restored)
            staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=base))
            try:
                staged, register_only = await self._stage_all(
                    specs, staging, force=force, user=user, timeout=timeout, progress=progress
                )
                return await self._swap_and_register(staged, register_only, staging, progress)
            finally:
                state = _journal_state(staging)
                if state == "swapping" or (state != "done" and _has_backups(staging)):
                    log.error(
                        "pack installation could not be undone completely; the previous "
                        "copies are kept in %s and restored by the next installation or start",
                        staging,
                    )
                else:
                    await asyncio.to_thread(shutil.rmtree, staging, True)

    @contextlib.asynccontextmanager
    async def _locked(self, base: Path, timeout: float) -> AsyncIterator[None]:
        """One installation at a time: in this process (asyncio) and on this install
        directory (``flock``, for other processes on the same host)."""
        deadline = time.monotonic() + timeout
        async with self._lock:
            fd = os.open(base / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise ConflictError(
                                "another pack installation is running on this host",
                                hint="try again when it has finished",
                            ) from None
                        await asyncio.sleep(0.2)
                yield
            finally:
                os.close(fd)  # releases the flock

    async def _stage_all(
        self,
        specs: list[PackSpec],
        staging: Path,
        *,
        force: bool,
        user: str,
        timeout: float,
        progress: Progress,
    ) -> tuple[list[_Staged], list[str]]:
        staged: list[_Staged] = []
        register_only: list[str] = []
        search = find_packs(self.service.search_paths())
        on_path = {read_pack_ref(p): p for p in search.packs}
        copies: dict[str, list[Path]] = {}
        for path in [*search.packs, *(s.path for s in search.shadowed)]:
            copies.setdefault(read_pack_ref(path), []).append(path)
        builtin = {read_pack_ref(p) for p in find_packs([self.service.search_paths()[0]]).packs}
        for index, spec in enumerate(specs):
            if spec.kind == "name":
                register_only.append(self._registered_name(spec, on_path))
                continue
            item = await self._stage(
                spec, staging / str(index), user=user, timeout=timeout, progress=progress
            )
            if item is None:  # a directory already in place: just register it
                register_only.append(read_pack_ref(Path(spec.location)))
                continue
            self._check_target(item, copies, builtin, force=force)
            if any(s.ref == item.ref for s in staged) or item.ref in register_only:
                raise ValidationError(f"packs: pack {item.ref!r} is named twice in this request")
            staged.append(item)
        return staged, register_only

    def _registered_name(self, spec: PackSpec, on_path: dict[str, Path]) -> str:
        path = on_path.get(spec.location)
        if path is None:
            raise ValidationError(
                f"packs: {spec.spec!r} is not a pack on the pack search path, and installing "
                "from the StackStorm Exchange is not supported",
                hint="give a git URL (URL or URL=VERSION) or a local directory",
            )
        if spec.version is not None:
            meta_version = str(_pack_version(path))
            if meta_version != spec.version:
                raise ValidationError(
                    f"packs: pack {spec.location!r} on the search path is version "
                    f"{meta_version or '(none)'}, not {spec.version}",
                    hint="install other versions from their git repository (URL=VERSION)",
                )
        return spec.location

    async def _stage(
        self, spec: PackSpec, dest: Path, *, user: str, timeout: float, progress: Progress
    ) -> _Staged | None:
        record: dict[str, Any] = {
            "install_id": uuid.uuid4().hex,
            "spec": spec.display,
            "version": spec.version,
            "installed_at": utcnow().isoformat().replace("+00:00", "Z"),
            "installed_by": user,
        }
        if spec.kind == "local":
            source = Path(spec.location).absolute()
            if not source.is_dir():
                raise PackError(f"cannot install {spec.display!r}: no directory {source}")
            if is_git_repository(source):
                url = str(source)
                record["source"] = spec.source if spec.source.startswith("file://") else url
            else:
                if spec.version is not None:
                    raise PackError(
                        f"cannot install {spec.display!r}: {source} is not a git repository, "
                        "so it has no versions",
                        hint="leave out =VERSION to copy the directory as it is",
                    )
                target = self.install_dir / read_pack_ref(source)
                if target.exists() and target.resolve() == source.resolve():
                    return None
                progress(f"copying {source} …")
                # Symlinks stay symlinks (then checked like a clone's): following them would
                # copy whatever they point at into the pack.
                await asyncio.to_thread(
                    shutil.copytree,
                    source,
                    dest,
                    symlinks=True,
                    ignore=shutil.ignore_patterns(*_COPY_IGNORE),
                )
                self._check_symlinks(spec, dest)
                record.update(source=str(source), kind="directory", commit=None, resolved=None)
                return await self._validated(spec, dest, record, progress)
        else:
            url = spec.location
            record["source"] = redact_url(url)
        progress(f"cloning {record['source']} …")
        repo = await clone(url, dest, timeout=timeout, name=record["source"])
        await repo.forget_credentials()  # at once: nothing below needs the network
        checkout = await repo.resolve(spec.version)
        described = f"{checkout.kind} {checkout.name}" if checkout.name else checkout.kind
        progress(f"checking out {described} ({checkout.commit[:12]}) …")
        await repo.checkout(checkout.commit)
        self._check_symlinks(spec, dest)
        record.update(kind="git", commit=checkout.commit, resolved=described)
        return await self._validated(spec, dest, record, progress)

    async def _validated(
        self, spec: PackSpec, path: Path, record: dict[str, Any], progress: Progress
    ) -> _Staged:
        # A record the repository brought along is not ours: it goes (a symlink is removed,
        # never followed) before anything reads the pack.
        with contextlib.suppress(FileNotFoundError):
            (path / INSTALL_RECORD).unlink()
        pack = await asyncio.to_thread(self._load, spec, path)
        progress(f"validated pack {pack.ref} {pack.version} …")
        _write_json(path / INSTALL_RECORD, record)
        return _Staged(
            spec=spec,
            ref=pack.ref,
            path=path,
            target=self.install_dir / pack.ref,
            record=record,
            requirements=pack.requirements_file is not None,
            version=pack.version,
        )

    @staticmethod
    def _check_symlinks(spec: PackSpec, path: Path) -> None:
        """Refuse a pack with symlinks out of it: reading or writing through them would touch
        files of the server (its secrets, or anything an install writes)."""
        escaping = _escaping_symlinks(path)
        if escaping:
            shown = ", ".join(escaping[:5]) + (" …" if len(escaping) > 5 else "")
            raise PackError(
                f"cannot install {spec.display!r}: symlinks pointing outside the pack: {shown}",
                hint="a pack may only link to its own files; remove those links",
            )

    def _load(self, spec: PackSpec, path: Path) -> LoadedPack:
        what = "repository" if spec.kind == "git" or (path / ".git").exists() else "directory"
        if not (path / "pack.yaml").is_file():
            raise PackError(
                f"cannot install {spec.display!r}: no pack.yaml at the top of the {what}",
                hint="a pack has pack.yaml (name, description, version, author) at its root",
            )
        try:
            pack = load_pack(
                path,
                known_runners=RUNNER_TYPES.keys(),
                config_dir=self.service.settings.configs_dir,
            )
        except PackError as exc:
            reason = exc.message.replace(f"cannot load pack at {path}: ", "")
            raise PackError(
                f"cannot install {spec.display!r}: {reason}", issues=exc.issues, hint=exc.hint
            ) from None
        if pack.issues:
            raise PackError(
                f"cannot install {spec.display!r}: pack {pack.ref} has errors",
                issues=pack.issues,
                hint="fix them in the pack's repository; nothing was installed",
            )
        return pack

    def _check_target(
        self, item: _Staged, copies: dict[str, list[Path]], builtin: set[str], *, force: bool
    ) -> None:
        ref, target = item.ref, item.target
        if ref in builtin:
            raise PackError(
                f"cannot install {item.spec.display!r}: pack {ref!r} ships with Squall and "
                "cannot be replaced"
            )
        install_dir = self.install_dir.resolve()
        for other in copies.get(ref, []):
            if other.resolve() == target.resolve():
                continue
            here = other.parent.resolve() == install_dir
            if not force:
                # In the install directory the first name wins (the new copy may be the one
                # hidden); further down the search path the new copy hides the old.
                raise ConflictError(
                    f"cannot install {item.spec.display!r}: pack {ref!r} is already on the "
                    f"pack search path at {other}, "
                    + (
                        "which would be registered instead of the installed copy or hide it"
                        if here
                        else "which the installed copy would hide"
                    ),
                    hint="remove it from there, or install with force",
                )
            if not here:
                continue  # force: the installed copy comes first and hides it, as asked
            if read_install_record(other) is None:
                raise ConflictError(
                    f"cannot install {item.spec.display!r}: pack {ref!r} is also at {other}, "
                    "which `pack install` did not create (it has no install record), so "
                    "force does not remove it",
                    hint=f"remove or move {other} yourself, then install again",
                )
            item.displaced.append(other)
        if target.exists() and read_install_record(target) is None and not force:
            raise ConflictError(
                f"pack {ref!r} is already installed at {target} and was not installed by "
                "`pack install` (it has no install record)",
                hint="install with force to replace that directory",
            )

    async def _swap_and_register(
        self,
        staged: list[_Staged],
        register_only: list[str],
        staging: Path,
        progress: Progress,
    ) -> InstallOutcome:
        swaps = [
            _Swap(
                ref=s.ref,
                staged=str(s.path),
                target=str(s.target),
                previous=str(staging / f"previous-{s.ref}") if s.target.exists() else None,
                install_id=s.record["install_id"],
                displaced=[
                    (str(d), str(staging / f"previous-{s.ref}-displaced-{i}"))
                    for i, d in enumerate(s.displaced)
                ],
            )
            for s in staged
        ]
        journal = staging / _JOURNAL
        _write_json(journal, {"state": "swapping", "swaps": [s.as_dict() for s in swaps]})
        refs = [s.ref for s in staged] + register_only
        try:
            for swap in swaps:
                for where, aside in swap.displaced:
                    os.rename(where, aside)
                if swap.previous is not None:
                    os.rename(swap.target, swap.previous)
                os.rename(swap.staged, swap.target)
            _fsync_dirs(base for swap in swaps for base in _swap_dirs(swap, staging))
            for s in staged:
                venv = " (and its virtualenv from requirements.txt)" if s.requirements else ""
                progress(f"registering {s.ref}{venv} …")
            for ref in register_only:
                progress(f"registering {ref} …")
            results = await self.service.register_all(refs)
            order = {ref: i for i, ref in enumerate(refs)}
            results.sort(key=lambda r: order.get(r.ref, len(order)))
        except BaseException:
            await self._undo(swaps, staging, progress)
            raise
        outcome = InstallOutcome(
            results,
            installed={s.ref: s.record for s in staged},
            versions={s.ref: s.version for s in staged},
        )
        if all(r.ok for r in results):
            _write_json(journal, {"state": "done"})
            return outcome
        outcome.rolled_back = bool(swaps)
        await self._undo(swaps, staging, progress)
        return outcome

    async def _undo(self, swaps: list[_Swap], staging: Path, progress: Progress) -> None:
        """Put the previous copies back and register them again. If the files cannot be
        restored, the journal stays in ``swapping`` and the staging directory is kept for
        :meth:`_recover`."""
        if not swaps:
            _write_json(staging / _JOURNAL, {"state": "done"})
            return
        try:
            await asyncio.to_thread(self._restore, swaps, staging)
        except OSError:
            log.exception("cannot restore the previous pack copies")
            return
        _write_json(staging / _JOURNAL, {"state": "done"})
        for swap in swaps:
            progress(f"restored the previous state of {swap.ref}")
        await self._reregister([s.ref for s in swaps])

    @staticmethod
    def _restore(swaps: Sequence[_Swap], staging: Path) -> None:
        for swap in reversed(swaps):
            target = Path(swap.target)
            record = read_install_record(target) if target.exists() else None
            if record is not None and record.get("install_id") == swap.install_id:
                os.rename(target, staging / f"discarded-{swap.ref}-{uuid.uuid4().hex[:8]}")
            previous = Path(swap.previous) if swap.previous else None
            if previous is not None and previous.exists() and not target.exists():
                os.rename(previous, target)
            for where, aside in reversed(swap.displaced):
                if Path(aside).exists() and not Path(where).exists():
                    os.rename(aside, where)
        _fsync_dirs(base for swap in swaps for base in _swap_dirs(swap, staging))

    async def _reregister(self, refs: list[str]) -> None:
        """Registration as it was: the restored copies, or no pack where there was none."""
        on_path = {read_pack_ref(p) for p in find_packs(self.service.search_paths()).packs}
        again = [r for r in refs if r in on_path]
        for ref in refs:
            if ref not in on_path:
                with contextlib.suppress(NotFoundError):
                    await self.service.remove(ref)
        if again:
            results = await self.service.register_all(again)
            for reg in results:
                if not reg.ok:
                    log.warning(
                        "pack %s registered again with problems: %s",
                        reg.ref,
                        reg.error or reg.issues,
                    )

    def _recover(self) -> list[str]:
        """Undo interrupted swaps found in leftover staging directories (lock held).

        A staging directory holding previous copies (``previous-*``) is deleted only once a
        journal says the installation is done or its swaps were undone; otherwise it is left
        in place with an error naming it: those copies may be the only ones left. Nothing
        here stops the server from starting.
        """
        restored: list[str] = []
        for entry in sorted(self.install_dir.glob(f"{_STAGING_PREFIX}*")):
            if not entry.is_dir():
                continue
            try:
                state, swaps = _read_journal(entry)
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                log.error(
                    "cannot read the journal of the interrupted pack installation in %s (%s); "
                    "left in place: move any previous-* copies back by hand",
                    entry,
                    exc,
                )
                continue
            if state == "swapping":
                try:
                    self._restore(swaps, entry)
                except OSError:
                    log.exception("cannot undo the interrupted installation in %s", entry)
                    continue
                restored.extend(s.ref for s in swaps)
            elif state != "done" and _has_backups(entry):
                log.error(
                    "%s holds previous copies of packs but no journal says that installation "
                    "finished; left in place: move the previous-* copies back by hand",
                    entry,
                )
                continue
            if state == "swapping" and _has_backups(entry):
                log.error(
                    "the previous copies in %s could not all be put back; left in place", entry
                )
                continue
            shutil.rmtree(entry, ignore_errors=True)
        return restored


def _read_journal(staging: Path) -> tuple[str | None, list[_Swap]]:
    """(state, swaps) of a staging directory's journal; ``(None, [])`` without one.

    Raises:
        OSError, ValueError, TypeError, AttributeError: The journal is unreadable or not
            what an installation writes.
    """
    try:
        text = (staging / _JOURNAL).read_text()
    except FileNotFoundError:
        return None, []
    journal = json.loads(text)
    if not isinstance(journal, dict):
        raise ValueError("the journal is not a JSON object")
    state = journal.get("state")
    if state not in ("swapping", "done"):
        raise ValueError(f"unknown journal state {state!r}")
    swaps = [_Swap(**item) for item in journal.get("swaps", [])] if state == "swapping" else []
    return state, swaps


def _has_backups(staging: Path) -> bool:
    return any(staging.glob("previous-*"))


def _swap_dirs(swap: _Swap, staging: Path) -> list[Path]:
    """The directories whose entries a swap renames."""
    return [staging, Path(swap.target).parent, *(Path(w).parent for w, _ in swap.displaced)]


def _fsync_dirs(dirs: Iterable[Path]) -> None:
    for path in dict.fromkeys(dirs):
        _fsync_dir(path)


def _journal_state(staging: Path) -> str | None:
    try:
        state = json.loads((staging / _JOURNAL).read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        return None
    return str(state) if state else None


def _pack_version(path: Path) -> str:
    try:
        from squall.packs import load_yaml_file

        data = load_yaml_file(path / "pack.yaml").data
    except Exception:  # unreadable: registration reports it
        return ""
    return str(data.get("version") or "") if isinstance(data, dict) else ""
