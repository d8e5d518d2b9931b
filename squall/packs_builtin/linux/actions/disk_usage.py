"""linux.disk_usage: space and inode usage per filesystem, from df (statvfs without df)."""

import os
import shutil
import subprocess

from st2common.runners.base_action import Action

PSEUDO_TYPES = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
        "devtmpfs", "efivarfs", "fusectl", "fuse.lxcfs", "fuse.snapfuse", "hugetlbfs", "mqueue",
        "nsfs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "squashfs", "sysfs",
        "tmpfs", "tracefs", "nfsd",
    }
)


def human(kib):
    value = float(kib) * 1024
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            return "%.1f%s" % (value, unit) if unit != "B" else "%d%s" % (value, unit)
        value /= 1024
    return str(kib)


def _unescape(field):
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 …).
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mounts(path="/proc/mounts"):
    """[(device, mount point, fs type)] from /proc/mounts, or [] when unavailable."""
    mounts = []
    try:
        with open(path) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 3:
                    mounts.append((_unescape(fields[0]), _unescape(fields[1]), fields[2]))
    except OSError:
        pass
    return mounts


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


def parse_df(text):
    """Rows of POSIX `df -P` output: {filesystem: [n1, n2, n3, percent, mount]}."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 6:
            continue
        rows.append(
            {
                "filesystem": parts[0],
                "total": _int(parts[1]),
                "used": _int(parts[2]),
                "free": _int(parts[3]),
                "percent": _int(parts[4].rstrip("%")),
                "mount": " ".join(parts[5:]),
            }
        )
    return rows


def run_df(args, timeout):
    try:
        done = subprocess.run(
            ["df", "-P"] + args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, LC_ALL="C"),
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            "df did not answer within %ss: a network filesystem may be hung "
            "(check `mount -t nfs,cifs` and the server)" % timeout
        )
    if done.returncode != 0 and not done.stdout.strip():
        raise RuntimeError("df failed: %s" % (done.stderr.strip() or "exit %d" % done.returncode))
    return parse_df(done.stdout)


def statvfs_rows(mount_points):
    rows = []
    for mount in mount_points:
        try:
            st = os.statvfs(mount)
        except OSError:
            continue
        total = st.f_blocks * st.f_frsize // 1024
        free = st.f_bavail * st.f_frsize // 1024
        used = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
        rows.append({"filesystem": "-", "total": total, "used": used, "free": free,
                     "percent": _percent(used, used + free), "mount": mount,
                     "inodes_total": st.f_files, "inodes_used": st.f_files - st.f_ffree})
    return rows


def _percent(used, total):
    if not total:
        return 0
    return -(-used * 100 // total)  # rounded up, like df


class DiskUsage(Action):
    def run(self, mount="", threshold=None, include_pseudo=False, df_timeout=20):
        if mount and not os.path.exists(mount):
            raise ValueError("path %r does not exist" % mount)
        types = {point: fstype for _dev, point, fstype in read_mounts()}
        target = ["--", mount] if mount else []

        if shutil.which("df"):
            space = run_df(["-k"] + target, df_timeout)
            try:
                inodes = {row["mount"]: row for row in run_df(["-i"] + target, df_timeout)}
            except RuntimeError:
                inodes = {}  # some df builds (BusyBox without -i) cannot report inodes
        else:
            points = [mount] if mount else sorted(types)
            space = statvfs_rows(points)
            inodes = {row["mount"]: {"total": row["inodes_total"], "used": row["inodes_used"]}
                      for row in space}

        filesystems, seen = [], set()
        for row in space:
            fstype = types.get(row["mount"], "unknown")
            if row["mount"] in seen:
                continue
            if not mount and not include_pseudo and (fstype in PSEUDO_TYPES or not row["total"]):
                continue
            seen.add(row["mount"])
            ino = inodes.get(row["mount"]) or {}
            ino_total, ino_used = ino.get("total"), ino.get("used")
            entry = {
                "mount": row["mount"],
                "filesystem": row["filesystem"],
                "type": fstype,
                "size_kb": row["total"],
                "used_kb": row["used"],
                "available_kb": row["free"],
                "used_percent": row["percent"],
                "size": human(row["total"] or 0),
                "available": human(row["free"] or 0),
                "inodes_total": ino_total,
                "inodes_used": ino_used,
                "inodes_used_percent": _percent(ino_used, ino_total) if ino_total else None,
            }
            filesystems.append(entry)

        result = {"filesystems": filesystems}
        if threshold is None:
            return result
        exceeded = []
        for fs in filesystems:
            for key, what in (("used_percent", "space"), ("inodes_used_percent", "inodes")):
                if fs[key] is not None and fs[key] > threshold:
                    exceeded.append({"mount": fs["mount"], "resource": what, "used_percent": fs[key]})
        result["threshold"] = threshold
        result["exceeded"] = exceeded
        if exceeded:
            result["message"] = "; ".join(
                "%s %s at %d%% (threshold %d%%)" % (e["mount"], e["resource"], e["used_percent"], threshold)
                for e in exceeded
            )
            return (False, result)
        return result
