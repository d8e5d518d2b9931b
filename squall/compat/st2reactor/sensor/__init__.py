"""``st2reactor.sensor``: ``base.Sensor`` and ``base.PollingSensor`` arrive with sensors."""
