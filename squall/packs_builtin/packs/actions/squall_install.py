"""packs.squall_install: install packs through Squall's API, as the execution's user.

The installation itself (git, validation, registration, roll-back) runs in the API process;
this action asks for it with the execution's token, so the permissions are the user's
(installing needs an administrator; rules run as the system user, which is one).
"""

import json
import os
import urllib.error
import urllib.request

from st2common.runners.base_action import Action


class SquallInstall(Action):
    def run(self, packs, force=False, git_timeout=600):
        url = os.environ["ST2_ACTION_API_URL"].rstrip("/") + "/packs/install"
        body = json.dumps({"packs": list(packs), "force": bool(force), "timeout": int(git_timeout)})
        request = urllib.request.Request(
            url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Auth-Token": os.environ.get("ST2_ACTION_AUTH_TOKEN", ""),
                # This execution records the installation: the API need not record another.
                "X-Squall-Execution-Id": os.environ.get("ST2_ACTION_EXECUTION_ID", ""),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=3600) as resp:
                result = json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                result = json.loads(exc.read() or b"null")
            except ValueError:
                result = None
            if not isinstance(result, dict):
                result = {"faultstring": "HTTP %s from %s" % (exc.code, url)}
        except urllib.error.URLError as exc:
            result = {"faultstring": "cannot reach Squall's API at %s: %s" % (url, exc.reason)}
        if not isinstance(result, dict):
            result = {"faultstring": "unexpected answer from %s: %r" % (url, result)}
        ok = bool(result.get("ok"))
        packs_ok = [p["ref"] for p in result.get("packs", []) if p.get("ok")]
        warnings = [
            "%s: %s" % (p["ref"], w) for p in result.get("packs", []) for w in p.get("warnings", [])
        ]
        output = {
            "packs_list": packs_ok if ok else [],
            "warning_list": warnings,
            "packs": result.get("packs", []),
        }
        if not ok:
            output["error"] = result.get("faultstring") or "the installation failed"
            self.logger.error(output["error"])
        return ok, output
