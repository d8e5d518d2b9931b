from st2common.runners.base_action import Action


class Trivial(Action):
    def run(self, n):
        return {"n": n}
