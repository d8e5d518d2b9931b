"""core.inject_trigger: emit a trigger instance from an action or workflow."""

from st2common.runners.base_action import Action


class InjectTrigger(Action):
    def run(self, trigger=None, trigger_name=None, payload=None, trace_tag=None):
        ref = trigger_name or trigger
        if not ref:
            raise ValueError("a trigger is required: set trigger_name (e.g. mypack.my_trigger)")
        if payload is not None and not isinstance(payload, dict):
            raise ValueError("payload must be an object, got %s" % type(payload).__name__)

        dispatch = getattr(self.action_service, "dispatch", None)
        if not callable(dispatch):
            raise RuntimeError(
                "this action service cannot dispatch triggers; send the event to "
                "POST /api/v1/webhooks/st2 instead"
            )
        dispatched = dispatch(ref, payload or {}, trace_tag)
        result = {"trigger": ref, "payload": payload or {}}
        if trace_tag:
            result["trace_tag"] = trace_tag
        if dispatched is not None:
            result["trigger_instance"] = dispatched
        return result
