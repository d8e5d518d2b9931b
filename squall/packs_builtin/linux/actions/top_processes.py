"""linux.top_processes: the top N processes by CPU or memory, read from /proc."""

import os
import pwd
import time

from st2common.runners.base_action import Action

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_KB = (os.sysconf("SC_PAGE_SIZE") // 1024) if hasattr(os, "sysconf") else 4


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def read_stat(pid):
    """(name, state, cpu ticks, start ticks, rss KiB) from /proc/<pid>/stat, or None."""
    try:
        raw = _read("/proc/%d/stat" % pid).decode("utf-8", "replace")
    except OSError:
        return None
    # The name is in parentheses and may itself contain spaces and parentheses.
    left, right = raw.find("("), raw.rfind(")")
    fields = raw[right + 2 :].split()
    try:
        ticks = int(fields[11]) + int(fields[12])
        return raw[left + 1 : right], fields[0], ticks, int(fields[19]), int(fields[21]) * _PAGE_KB
    except (IndexError, ValueError):
        return None


def command_line(pid, limit=200):
    try:
        raw = _read("/proc/%d/cmdline" % pid)
    except OSError:
        return ""
    text = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


_users = {}


def owner(pid):
    try:
        uid = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None
    if uid not in _users:
        try:
            _users[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _users[uid] = str(uid)
    return _users[uid]


def snapshot():
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


def uptime():
    with open("/proc/uptime") as handle:
        return float(handle.read().split()[0])


def mem_total_kb():
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


class TopProcesses(Action):
    def run(self, sort_by="cpu", count=10, sample_seconds=1):
        if not os.path.isdir("/proc/self"):
            raise RuntimeError("linux.top_processes needs a Linux /proc filesystem")
        if sort_by not in ("cpu", "memory"):
            raise ValueError("sort_by must be cpu or memory, got %r" % (sort_by,))
        first, t0 = snapshot(), time.monotonic()
        if sample_seconds and sample_seconds > 0:
            time.sleep(sample_seconds)
            second, elapsed = snapshot(), time.monotonic() - t0
        else:
            second, elapsed = first, None
        boot_uptime = uptime()
        total_kb = mem_total_kb()
        me = os.getpid()

        rows = []
        for pid, (name, state, ticks, start, rss_kb) in second.items():
            if pid == me:
                continue
            if elapsed:
                before = first.get(pid)
                used = ticks - (before[2] if before and before[3] == start else 0)
                cpu = used / _TICKS / elapsed * 100
            else:
                lifetime = boot_uptime - start / _TICKS
                cpu = (ticks / _TICKS) / lifetime * 100 if lifetime > 0 else 0.0
            rows.append(
                {
                    "pid": pid,
                    "name": name,
                    "state": state,
                    "cpu_percent": round(cpu, 1),
                    "rss_kb": rss_kb,
                    "memory_percent": round(rss_kb * 100.0 / total_kb, 1) if total_kb else None,
                    "running_seconds": int(boot_uptime - start / _TICKS),
                }
            )
        key = "cpu_percent" if sort_by == "cpu" else "rss_kb"
        rows.sort(key=lambda row: (row[key], row["pid"]), reverse=True)
        top = rows[:count]
        for row in top:  # only the few shown are worth the extra reads
            row["user"] = owner(row["pid"])
            row["command"] = command_line(row["pid"]) or "[%s]" % row["name"]
        return {
            "sort_by": sort_by,
            "sample_seconds": round(elapsed, 2) if elapsed else 0,
            "process_count": len(rows) + 1,
            "processes": top,
        }
