"""``st2common.runners.base_action.Action``: the base class of StackStorm Python actions.

A pack action subclasses :class:`Action` and implements ``run(self, **parameters)``. It
returns a value (success) or a ``(succeeded, value)`` tuple. The Squall worker instantiates
it with the pack config and an action service whose datastore calls go to the Squall host.
"""

from __future__ import annotations

import abc
import logging
import os
import sys
from typing import Any

__all__ = ["Action"]

#: StackStorm's extra ``AUDIT`` level (above CRITICAL, so audit lines are never filtered).
AUDIT = 60
logging.addLevelName(AUDIT, "AUDIT")

_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [-] %(message)s"


def _level(name: str | None) -> int:
    if not name:
        return logging.DEBUG
    if name.upper() == "AUDIT":
        return AUDIT
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.DEBUG


def _action_logger(name: str) -> logging.Logger:
    """A logger writing to the action's stderr at the execution's ``log_level``."""
    logger = logging.getLogger(f"actions.python.{name}")
    logger.propagate = False
    logger.setLevel(_level(os.environ.get("ST2_ACTION_LOG_LEVEL")))
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    return logger


class Action(metaclass=abc.ABCMeta):
    """Base class of Python actions.

    Attributes:
        config: the pack's configuration (``configs/<pack>.yaml``), ``{}`` when there is none.
        action_service: datastore access (``get_value``, ``set_value``, ``delete_value``,
            ``list_values``).
        logger: a :class:`logging.Logger` writing to the execution's stderr.
    """

    def __init__(self, config: dict[str, Any] | None = None, action_service: Any = None) -> None:
        self.config = config or {}
        self.action_service = action_service
        self.logger = _action_logger(self.__class__.__name__)

    @abc.abstractmethod
    def run(self, **kwargs: Any) -> Any:
        """Do the work; return a value, or ``(succeeded, value)``."""
        raise NotImplementedError
