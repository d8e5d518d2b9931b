"""core.pause: sleep for max_pause seconds, or a random time up to it."""

import random as _random
import time

from st2common.runners.base_action import Action


class Pause(Action):
    def run(self, max_pause, random=False):
        if max_pause is None or max_pause < 0:
            raise ValueError("max_pause must be a number of seconds >= 0, got %r" % (max_pause,))
        seconds = _random.randint(0, int(max_pause)) if random else max_pause
        self.logger.debug("pausing for %s seconds", seconds)
        time.sleep(seconds)
        return {"paused_seconds": seconds}
