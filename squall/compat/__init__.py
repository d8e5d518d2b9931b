"""Import names StackStorm packs expect, for Python actions and sensors.

This directory is put on ``PYTHONPATH`` of the Python worker and sensor processes, so that
``from st2common.runners.base_action import Action`` resolves inside a pack's virtualenv.
Everything under it is standard library only: pack virtualenvs do not have Squall's
dependencies. Squall itself never imports ``st2common``; this package only tells where the
directory is.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["COMPAT_PATH"]

#: The directory to put on ``PYTHONPATH`` of action processes.
COMPAT_PATH: Path = Path(__file__).resolve().parent
