"""Per-pack Python virtualenvs, created at registration for packs with ``requirements.txt``.

A virtualenv lives at ``$SQUALL_HOME/virtualenvs/<pack>``. It is rebuilt only when the
requirements file changed (its hash is stored inside the venv), so re-registration is quick.
The venv has no access to Squall's own site-packages; Python actions reach the ``st2common``
compatibility layer through ``PYTHONPATH`` set by the python runner.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from pathlib import Path

from squall.errors import PackError

__all__ = ["ensure_virtualenv", "virtualenv_python"]

_STAMP = ".squall-requirements.sha256"


def virtualenv_python(home: Path, pack: str) -> Path | None:
    """The interpreter of ``pack``'s virtualenv, if it has one."""
    python = home / "virtualenvs" / pack / "bin" / "python"
    return python if python.exists() else None


async def _run(*argv: str, cwd: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd) if cwd else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def ensure_virtualenv(
    home: Path, pack: str, requirements: Path, *, python: str | None = None
) -> tuple[Path, bool]:
    """Create or refresh ``pack``'s virtualenv. Returns (interpreter, whether it was built).

    Raises :class:`PackError` naming the requirements file and pip's last lines on failure;
    a failed build leaves no half-built environment behind.
    """
    venv = home / "virtualenvs" / pack
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP
    interpreter = venv / "bin" / "python"
    if interpreter.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return interpreter, False
    # Build in place (console scripts hard-code their path), keeping the previous
    # environment aside until the new one is complete.
    previous = venv.with_name(f".{pack}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if venv.exists():
        venv.rename(previous)

    def _restore() -> None:
        shutil.rmtree(venv, ignore_errors=True)
        if previous.exists():
            previous.rename(venv)

    venv.parent.mkdir(parents=True, exist_ok=True)
    base = python or sys.executable
    code, out = await _run(base, "-m", "venv", "--without-pip", str(venv))
    if code != 0:
        _restore()
        raise PackError(f"{pack}: cannot create a virtualenv: {out.strip()[-500:]}")
    # Use this interpreter's pip to install into the new environment: no pip bootstrap
    # inside it, which keeps creation fast.
    code, out = await _run(
        base,
        "-m",
        "pip",
        "--python",
        str(interpreter),
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "-r",
        str(requirements),
        cwd=requirements.parent,
    )
    if code != 0:
        _restore()
        tail = "\n".join(out.strip().splitlines()[-8:])
        raise PackError(
            f"{requirements}: installing the pack's requirements failed:\n{tail}",
            hint="fix requirements.txt (pip's output above) and register the pack again",
        )
    stamp.write_text(digest + "\n")
    shutil.rmtree(previous, ignore_errors=True)
    return interpreter, True
