"""demo.flaky: fails on demand (or at random) with a structured error."""

import random

from st2common.runners.base_action import Action


class Flaky(Action):
    def run(self, fail=False, failure_rate=0.5, message="the demo service did not answer"):
        if not 0 <= failure_rate <= 1:
            raise ValueError("failure_rate must be between 0 and 1, got %r" % (failure_rate,))
        roll = random.random()
        failed = bool(fail) or roll < failure_rate
        result = {"failed": failed, "forced": bool(fail), "roll": round(roll, 3), "failure_rate": failure_rate}
        if failed:
            self.logger.error("demo.flaky failing: %s", message)
            result["error"] = message
            return (False, result)
        result["message"] = "it worked this time"
        return result
