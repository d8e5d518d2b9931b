"""The ``git`` binary, run as an asyncio subprocess, for installing packs from git.

Every call passes an argument list (never a shell), puts ``--`` before URLs and paths, has a
timeout after which git's whole process group is killed, and runs with prompts off
(``GIT_TERMINAL_PROMPT=0``, ssh in batch mode) and only the transports of
:data:`~squall.packs.sources.GIT_PROTOCOLS`, so a request can neither hang on a password
prompt nor make git run a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from squall.errors import PackError
from squall.packs.sources import GIT_PROTOCOLS, redact_url, strip_userinfo

__all__ = ["DEFAULT_TIMEOUT", "GitCheckout", "GitRepo", "clone", "is_git_repository"]

#: Seconds one git command may take (a clone of a large pack over a slow link).
DEFAULT_TIMEOUT = 600.0

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ABBREV_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
# StackStorm also tries "v<version>" for a semver-looking version (PACK_VERSION_REGEX).
_SEMVER_ISH = re.compile(r"\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": ":".join(GIT_PROTOCOLS),
            # Messages are shown to users and matched by nobody: keep them in one language.
            "LC_ALL": "C",
            "LANGUAGE": "C",
        }
    )
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        # No password or host-key questions: they would wait for a terminal that is not there.
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


@dataclass(frozen=True)
class _Result:
    code: int
    stdout: str
    stderr: str

    def last_line(self) -> str:
        """git's verdict: its last ``fatal:``/``error:`` line, after the line before it
        when that says why (ssh's "Connection refused"); else its last line."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        if not lines:
            return f"git exited with status {self.code}"
        verdicts = [i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))]
        if not verdicts:
            return lines[-1]
        i = verdicts[-1]
        before = lines[i - 1] if i > 0 else ""
        if before and not before.startswith(("fatal:", "error:", "hint:", "warning:")):
            return f"{before}; {lines[i]}"
        return lines[i]


async def _git(
    args: Sequence[str], *, cwd: Path | None = None, timeout: float, secret: str | None = None
) -> _Result:
    """Run ``git ARGS``; ``secret`` (a URL with user info) is masked in its messages."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=str(cwd) if cwd else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
            # Its own process group: a timeout kills git's helpers (ssh, remote-https) too,
            # and without a controlling terminal nothing can prompt.
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PackError(
            "cannot install from git: the git program is not installed",
            hint="install git on the machine running the Squall API",
        ) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as exc:  # timeout or cancellation: leave no git behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, TimeoutError):
            command = " ".join(a for a in args[:2] if not a.startswith("-"))
            raise PackError(
                f"git {command} took longer than {timeout:g}s and was stopped",
                hint="check the URL and the network, or give a longer timeout",
            ) from None
        raise
    stderr = err.decode(errors="replace")
    if secret:
        stderr = stderr.replace(secret, redact_url(secret))
    return _Result(proc.returncode or 0, out.decode(errors="replace"), stderr)


def is_git_repository(path: Path) -> bool:
    """Whether ``path`` is the top of a git work tree or a bare repository (not merely a
    directory inside someone else's repository)."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


@dataclass(frozen=True)
class GitCheckout:
    """What was checked out: the commit, and how the version named it."""

    commit: str
    #: ``branch``, ``tag``, ``commit`` or ``default branch``.
    kind: str
    #: The branch or tag name (``None`` for a commit sha).
    name: str | None


class GitRepo:
    """A clone being prepared for installation."""

    def __init__(self, path: Path, url: str, *, timeout: float, name: str | None = None) -> None:
        self.path = path
        self.url = url
        self.timeout = timeout
        #: How messages name the repository (the URL with its user info masked by default).
        self.name = name or redact_url(url)

    async def _run(self, *args: str) -> _Result:
        return await _git(args, cwd=self.path, timeout=self.timeout, secret=self.url)

    async def _commit_of(self, rev: str) -> str | None:
        result = await self._run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        sha = result.stdout.strip()
        return sha if result.code == 0 and _SHA.fullmatch(sha) else None

    async def resolve(self, version: str | None) -> GitCheckout:
        """The commit ``version`` names, looked up as StackStorm does: a branch, a tag or a
        commit, then ``v<version>`` for a version number.

        Raises:
            PackError: No branch, tag or commit has that name (the message lists the
                repository's tags and branches).
        """
        if version is None:
            sha = await self._commit_of("HEAD")
            if sha is None:
                raise PackError(f"{self.name} has no commits")
            head = await self._run("symbolic-ref", "--quiet", "--short", "HEAD")
            return GitCheckout(sha, "default branch", head.stdout.strip() or None)
        # Full ref names: the version is never read as an option or a revision expression.
        candidates: list[tuple[str, str, str | None]] = [
            ("branch", f"refs/remotes/origin/{version}", version),
            ("tag", f"refs/tags/{version}", version),
        ]
        if _ABBREV_SHA.fullmatch(version):
            candidates.append(("commit", version.lower(), None))
        if _SEMVER_ISH.fullmatch(version):
            candidates.append(("tag", f"refs/tags/v{version}", f"v{version}"))
        for kind, rev, name in candidates:
            sha = await self._commit_of(rev)
            if sha is not None:
                return GitCheckout(sha, kind, name)
        tags, branches = await self.versions()
        available = ""
        if tags:
            available += f" Tags: {', '.join(tags[:20])}{' …' if len(tags) > 20 else ''}."
        if branches:
            available += f" Branches: {', '.join(branches[:20])}."
        raise PackError(
            f'"{version}" is not a valid version, hash, tag or branch in {self.name}.{available}'
        )

    async def versions(self) -> tuple[list[str], list[str]]:
        """The repository's tags (newest version first) and branches."""
        tags = await self._run("tag", "--list", "--sort=-version:refname")
        heads = await self._run(
            "for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/origin/"
        )
        branches = [b for b in heads.stdout.split() if b and b != "HEAD"]
        return tags.stdout.split(), branches

    async def checkout(self, commit: str) -> None:
        if not _SHA.fullmatch(commit):
            raise ValueError(f"not a commit sha: {commit!r}")
        result = await self._run(
            "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit
        )
        if result.code != 0:
            raise PackError(f"cannot check out {commit[:12]}: {result.last_line()}")

    async def forget_credentials(self) -> None:
        """Store the origin URL without any user info: a user name can be a token as well
        as a password can (the clone keeps its remote, read by ``git log`` users)."""
        safe = strip_userinfo(self.url)
        if safe != self.url:
            result = await self._run("remote", "set-url", "origin", "--", safe)
            if result.code != 0:
                raise PackError(
                    f"cannot remove the credentials from the clone of {self.name}: "
                    f"{result.last_line()}"
                )


async def clone(
    url: str, dest: Path, *, timeout: float = DEFAULT_TIMEOUT, name: str | None = None
) -> GitRepo:
    """Clone ``url`` into ``dest`` (which must not exist) without checking out files.
    ``name`` is how messages call the repository (default: the URL, user info masked).

    Raises:
        PackError: git failed (unreachable URL, no such repository, authentication); the
            message ends with git's last line of error output.
    """
    result = await _git(
        ["clone", "--quiet", "--no-checkout", "--", url, str(dest)], timeout=timeout, secret=url
    )
    repo = GitRepo(dest, url, timeout=timeout, name=name)
    if result.code != 0:
        raise PackError(
            f"cannot clone {repo.name}: {result.last_line()}",
            hint="check the URL, that the repository exists and that this server may read it",
        )
    return repo
