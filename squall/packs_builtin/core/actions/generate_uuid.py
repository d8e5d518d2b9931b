"""core.uuid: return a new UUID as a string."""

import uuid

from st2common.runners.base_action import Action

_GENERATORS = {"uuid1": uuid.uuid1, "uuid4": uuid.uuid4}


class GenerateUUID(Action):
    def run(self, uuid_type="uuid4"):
        generator = _GENERATORS.get(uuid_type)
        if generator is None:
            raise ValueError(
                "unknown uuid_type %r; expected one of %s" % (uuid_type, ", ".join(sorted(_GENERATORS)))
            )
        return str(generator())
