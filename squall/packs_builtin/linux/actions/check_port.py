"""linux.check_port: does host:port accept TCP connections?"""

import socket
import time

from st2common.runners.base_action import Action


def probe(host, port, timeout):
    """Try to connect; return a result dict (never raises for network errors)."""
    result = {"host": host, "port": port, "open": False, "address": None, "latency_ms": None, "error": None}
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            result["open"] = True
            result["address"] = conn.getpeername()[0]
            result["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
    except socket.gaierror as exc:
        result["error"] = "cannot resolve %s: %s" % (host, exc.strerror or exc)
    except socket.timeout:
        result["error"] = "no answer within %ss (filtered by a firewall, or the host is down)" % timeout
    except ConnectionRefusedError:
        result["error"] = "connection refused (nothing listens on port %d)" % port
    except OSError as exc:
        result["error"] = exc.strerror or str(exc)
    return result


class CheckPort(Action):
    def run(self, port, host="127.0.0.1", connect_timeout=3, expect="open"):
        if expect not in ("open", "closed"):
            raise ValueError("expect must be open or closed, got %r" % (expect,))
        result = probe(host, int(port), float(connect_timeout))
        result["expect"] = expect
        ok = result["open"] == (expect == "open")
        return result if ok else (False, result)
