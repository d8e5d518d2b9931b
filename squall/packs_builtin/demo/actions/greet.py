"""demo.greet: a Python action using the pack config and the datastore."""

import re

from st2common.runners.base_action import Action


def key_part(name):
    """A datastore-friendly form of a name: lowercase letters, digits and underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "anonymous"


class Greet(Action):
    def run(self, name="world"):
        greeting = self.config.get("greeting") or "Hello"
        prefix = self.config.get("counter_prefix") or "greetings"
        key = "%s.%s" % (prefix, key_part(name))

        previous = self.action_service.get_value(key)
        try:
            count = int(previous or 0) + 1
        except ValueError:
            self.logger.warning("key %s held %r, not a number; starting again", key, previous)
            count = 1
        self.action_service.set_value(key, str(count))

        times = "once" if count == 1 else "%d times" % count
        self.logger.info("greeted %s %s", name, times)
        return {"message": "%s, %s!" % (greeting, name), "count": count, "key": key,
                "summary": "%s has been greeted %s" % (name, times)}
