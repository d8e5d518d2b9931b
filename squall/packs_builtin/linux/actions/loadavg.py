"""linux.loadavg: load averages, CPU count and uptime as a dict."""

import os

from st2common.runners.base_action import Action


def cpu_count():
    """CPUs this process may run on (honours cgroup/affinity limits when visible)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_proc_loadavg(path="/proc/loadavg"):
    """Runnable/total scheduling entities from /proc/loadavg, or None."""
    try:
        with open(path) as handle:
            fields = handle.read().split()
        running, total = fields[3].split("/")
        return {"running": int(running), "total": int(total)}
    except (OSError, IndexError, ValueError):
        return None


def uptime_seconds(path="/proc/uptime"):
    try:
        with open(path) as handle:
            return round(float(handle.read().split()[0]), 1)
    except (OSError, IndexError, ValueError):
        return None


class LoadAverage(Action):
    def run(self, max_load_per_cpu=None, window=5):
        try:
            load1, load5, load15 = os.getloadavg()
        except OSError:
            raise RuntimeError("load averages are not available on this system")
        cpus = cpu_count()
        loads = {1: load1, 5: load5, 15: load15}
        result = {
            "load1": round(load1, 2),
            "load5": round(load5, 2),
            "load15": round(load15, 2),
            "cpu_count": cpus,
            "load_per_cpu": {
                "load1": round(load1 / cpus, 2),
                "load5": round(load5 / cpus, 2),
                "load15": round(load15 / cpus, 2),
            },
            "uptime_seconds": uptime_seconds(),
            "processes": read_proc_loadavg(),
        }
        if max_load_per_cpu is None:
            return result
        if window not in loads:
            raise ValueError("window must be 1, 5 or 15, got %r" % (window,))
        per_cpu = loads[window] / cpus
        result["threshold"] = {"max_load_per_cpu": max_load_per_cpu, "window": window}
        result["exceeded"] = per_cpu > max_load_per_cpu
        if result["exceeded"]:
            result["message"] = "%s-minute load per CPU is %.2f, above %s" % (
                window,
                per_cpu,
                max_load_per_cpu,
            )
            return (False, result)
        return result
