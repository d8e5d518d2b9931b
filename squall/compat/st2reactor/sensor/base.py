"""``st2reactor.sensor.base``: the base classes of StackStorm sensors.

A pack sensor subclasses :class:`Sensor` (it implements ``run()``, a blocking loop that
dispatches triggers as events arrive) or :class:`PollingSensor` (it implements ``poll()``,
which ``run()`` calls every ``poll_interval`` seconds). Squall's sensor process
(``squall/runners/sensor_worker.py``) instantiates the class with a sensor service whose
``dispatch`` and datastore calls go to the Squall host, calls ``setup()``, then
``add_trigger()`` for each existing trigger of its trigger types, then ``run()``; on stop it
calls ``cleanup()``.

Unlike StackStorm, only ``run`` (:class:`Sensor`) and ``poll`` (:class:`PollingSensor`) are
abstract: the other hooks default to doing nothing, so a sensor need not spell them out.
"""

from __future__ import annotations

import abc
import time
from typing import Any

__all__ = ["BaseSensor", "PollingSensor", "Sensor"]


class BaseSensor(metaclass=abc.ABCMeta):
    """What every sensor has.

    Attributes:
        sensor_service: dispatch (``dispatch``, ``dispatch_with_context``), logging
            (``get_logger``) and the datastore (``list_values``, ``get_value``,
            ``set_value``, ``delete_value``).
        config: the pack's configuration (``configs/<pack>.yaml``), ``{}`` when there is none.
    """

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config = config or {}
        self.config = self._config

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Prepare (connect, open files …); called once before ``run()``."""

    @abc.abstractmethod
    def run(self) -> None:
        """Watch for events and dispatch triggers; blocks for the life of the sensor."""

    def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Release what ``setup()`` took; called when the sensor is stopped."""

    def add_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A trigger of one of this sensor's trigger types was created (a rule uses it)."""

    def update_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A trigger of one of this sensor's trigger types changed."""

    def remove_trigger(self, trigger: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A trigger of one of this sensor's trigger types is gone (no rule uses it)."""


class Sensor(BaseSensor):
    """A sensor that runs its own loop (listens on a socket, tails a queue …)."""

    @abc.abstractmethod
    def run(self) -> None:
        """Watch for events and dispatch triggers; blocks for the life of the sensor."""


class PollingSensor(BaseSensor):
    """A sensor whose ``poll()`` is called every ``poll_interval`` seconds."""

    def __init__(
        self,
        sensor_service: Any,
        config: dict[str, Any] | None = None,
        poll_interval: float = 5,
    ) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self) -> None:
        """Look once for new events and dispatch triggers for them."""

    def run(self) -> None:
        """Call ``poll()`` forever, sleeping ``poll_interval`` seconds between calls."""
        while True:
            self.poll()
            time.sleep(self._poll_interval)

    def get_poll_interval(self) -> float:
        """Seconds between two polls."""
        return self._poll_interval

    def set_poll_interval(self, poll_interval: float) -> None:
        """Change the seconds between two polls (from the next sleep on)."""
        self._poll_interval = poll_interval
