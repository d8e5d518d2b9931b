"""linux.service_status: is a service active? systemd first, SysV `service` as a fallback."""

import os
import re
import shutil
import subprocess

from st2common.runners.base_action import Action

_NAME = re.compile(r"^[A-Za-z0-9@._:-]+$")
_PROPERTIES = "ActiveState,SubState,LoadState,MainPID,ActiveEnterTimestamp,Description,UnitFileState"


def _run(argv, timeout=15):
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, LC_ALL="C")
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s did not answer within %ss" % (" ".join(argv), timeout))
    return done.returncode, done.stdout, done.stderr


def systemd_running():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def parse_show(text):
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def systemd_status(service):
    _code, out, err = _run(["systemctl", "show", "--no-pager", "-p", _PROPERTIES, "--", service])
    props = parse_show(out)
    if not props:
        raise RuntimeError("systemctl show %s failed: %s" % (service, err.strip()))
    state = props.get("ActiveState", "unknown")
    main_pid = props.get("MainPID", "0")
    return {
        "service": service,
        "manager": "systemd",
        "active": state == "active",
        "state": state,
        "sub_state": props.get("SubState"),
        "loaded": props.get("LoadState") == "loaded",
        "enabled": props.get("UnitFileState"),
        "main_pid": int(main_pid) if main_pid.isdigit() and main_pid != "0" else None,
        "since": props.get("ActiveEnterTimestamp") or None,
        "description": props.get("Description"),
    }


def sysv_status(service):
    if shutil.which("service"):
        argv = ["service", service, "status"]
    elif os.path.exists("/etc/init.d/%s" % service):
        argv = ["/etc/init.d/%s" % service, "status"]
    else:
        raise RuntimeError(
            "cannot check %r: systemd is not running and neither the `service` command nor "
            "/etc/init.d/%s exists" % (service, service)
        )
    code, out, err = _run(argv)
    # LSB: 0 running, 1-3 not running (3 = stopped), 4 unknown service.
    states = {0: "active", 1: "dead", 2: "dead", 3: "inactive", 4: "unknown"}
    return {
        "service": service,
        "manager": "sysv",
        "active": code == 0,
        "state": states.get(code, "unknown"),
        "exit_code": code,
        "output": (out + err).strip()[-2000:],
    }


class ServiceStatus(Action):
    def run(self, service, fail_if_inactive=True):
        if not service or not _NAME.match(service):
            raise ValueError("invalid service name %r" % (service,))
        status = systemd_status(service) if systemd_running() else sysv_status(service)
        if status["manager"] == "systemd" and not status["loaded"]:
            status["message"] = "unit %s is not loaded (does it exist?)" % service
        elif not status["active"]:
            status["message"] = "%s is %s" % (service, status["state"])
        else:
            status["message"] = "%s is active" % service
        if fail_if_inactive and not status["active"]:
            return (False, status)
        return status
