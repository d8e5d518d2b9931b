"""Local git repositories holding packs, for the pack install tests (no network).

``PackRepo(path, "hello")`` runs the real ``git``: ``init``, commits, tags and branches,
isolated from the developer's git configuration.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["PackRepo", "git_env"]


def git_env(home: Path) -> dict[str, str]:
    """An environment in which git reads no user or system configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Pack Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Pack Author",
        GIT_COMMITTER_EMAIL="author@example.com",
    )
    return env


def pack_yaml(ref: str, version: str, description: str = "a pack from git") -> str:
    return (
        f"---\nref: {ref}\nname: {ref}\ndescription: {description}\nversion: {version}\n"
        "author: tests\n"
    )


def shell_action(name: str, output: str) -> str:
    return (
        f"---\nname: {name}\nrunner_type: local-shell-cmd\nparameters:\n"
        f"  cmd:\n    type: string\n    default: echo {output}\n"
    )


class PackRepo:
    """A git work tree with a pack at its root."""

    def __init__(self, path: Path, ref: str, *, branch: str = "main") -> None:
        self.path = path
        self.ref = ref
        self.env = git_env(path.parent)
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> PackRepo:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def remove(self, rel: str) -> PackRepo:
        self.git("rm", "--quiet", "-r", "--", rel)
        return self

    def commit(self, message: str) -> str:
        """Commit everything; returns the commit sha."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--no-gpg-sign", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", name)

    def branch(self, name: str) -> None:
        """Create ``name`` at HEAD and switch to it."""
        self.git("checkout", "--quiet", "-b", name)

    def switch(self, name: str) -> None:
        self.git("checkout", "--quiet", name)

    def version(self, version: str, actions: dict[str, str], *, tag: str | None = None) -> str:
        """Commit a pack version with ``actions`` (name -> what it echoes); returns the sha.

        Actions not named are removed, so each version has exactly these actions.
        """
        self.write("pack.yaml", pack_yaml(self.ref, version))
        actions_dir = self.path / "actions"
        if actions_dir.exists():
            for old in actions_dir.glob("*.yaml"):
                if old.stem not in actions:
                    old.unlink()
        for name, output in actions.items():
            self.write(f"actions/{name}.yaml", shell_action(name, output))
        sha = self.commit(f"version {version}")
        if tag:
            self.tag(tag)
        return sha
