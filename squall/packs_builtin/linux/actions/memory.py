"""linux.memory: memory and swap usage from /proc/meminfo."""

from st2common.runners.base_action import Action


def read_meminfo(path="/proc/meminfo"):
    """{field: KiB} from /proc/meminfo."""
    values = {}
    try:
        with open(path) as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[name.strip()] = int(parts[0])
    except OSError:
        raise RuntimeError("%s is not readable: linux.memory needs a Linux /proc" % path)
    return values


def percent(used, total):
    return round(used * 100.0 / total, 1) if total else 0.0


def summarize(info):
    total = info.get("MemTotal", 0)
    if "MemAvailable" in info:
        available = info["MemAvailable"]
    else:  # kernels before 3.14
        available = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
    swap_total = info.get("SwapTotal", 0)
    swap_used = swap_total - info.get("SwapFree", 0)
    return {
        "total_kb": total,
        "available_kb": available,
        "used_kb": total - available,
        "used_percent": percent(total - available, total),
        "free_kb": info.get("MemFree", 0),
        "cached_kb": info.get("Cached", 0) + info.get("Buffers", 0),
        "swap_total_kb": swap_total,
        "swap_used_kb": swap_used,
        "swap_used_percent": percent(swap_used, swap_total),
    }


class Memory(Action):
    def run(self, threshold=None):
        result = summarize(read_meminfo())
        if threshold is None:
            return result
        result["threshold"] = threshold
        result["exceeded"] = result["used_percent"] > threshold
        if result["exceeded"]:
            result["message"] = "memory is %.1f%% used, above %d%%" % (result["used_percent"], threshold)
            return (False, result)
        return result
