"""demo.system_report: load, disk and memory of this host as one JSON document."""

import os
import platform
import shutil
import socket

from st2common.runners.base_action import Action


def memory():
    info = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    info[name] = int(parts[0])
    except OSError:
        return None
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    return {
        "total_mb": total // 1024,
        "available_mb": available // 1024,
        "used_percent": round((total - available) * 100.0 / total, 1) if total else None,
    }


class SystemReport(Action):
    def run(self, path="/"):
        usage = shutil.disk_usage(path)
        try:
            load = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            load = None
        return {
            "host": socket.gethostname(),
            "os": "%s %s" % (platform.system(), platform.release()),
            "cpu_count": os.cpu_count(),
            "load": {"1m": load[0], "5m": load[1], "15m": load[2]} if load else None,
            "disk": {
                "path": path,
                "total_gb": round(usage.total / 1e9, 2),
                "free_gb": round(usage.free / 1e9, 2),
                "used_percent": round(usage.used * 100.0 / usage.total, 1) if usage.total else None,
            },
            "memory": memory(),
        }
