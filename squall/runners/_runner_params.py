"""Runner parameter tables of StackStorm's runner types (data for :mod:`catalog`)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ANY_JSON",
    "HTTP_PARAMS",
    "INQUIRER_PARAMS",
    "PYTHON_PARAMS",
    "Params",
    "local_params",
    "remote_params",
]

Params = dict[str, dict[str, Any]]

ANY_JSON: dict[str, Any] = {
    "anyOf": [
        {"type": "object"},
        {"type": "string"},
        {"type": "integer"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array"},
        {"type": "null"},
    ]
}

_TIMEOUT_DESCRIPTION = (
    "Action timeout in seconds. Action will get killed if it doesn't finish in timeout seconds."
)
_SUDO_PASSWORD_DESCRIPTION = "Sudo password. To be used when passwordless sudo is not allowed."
_KWARG_OP_DESCRIPTION = 'Operator to use in front of keyword args i.e. "--" or "-".'
_DEBUG = {
    "description": "Enable runner debug mode.",
    "type": "boolean",
    "required": False,
    "default": False,
}
_CONTENT_VERSION = {
    "description": (
        "Git revision of the pack content to use for this action execution (git commit sha / "
        "tag / branch). Only applies to packs which are git repositories."
    ),
    "type": "string",
    "required": False,
}


def local_params(*, with_cmd: bool) -> Params:
    """Runner parameters shared by ``local-shell-cmd`` and ``local-shell-script``."""
    target = "command" if with_cmd else "script"
    params: Params = {}
    if with_cmd:
        params["cmd"] = {
            "description": "Arbitrary Linux command to be executed on the host.",
            "type": "string",
        }
    else:
        params["debug"] = dict(_DEBUG)
        params["content_version"] = dict(_CONTENT_VERSION)
    params |= {
        "cwd": {
            "description": f"Working directory where the {target} will be executed in",
            "type": "string",
        },
        "env": {
            "description": (
                f"Environment variables which will be available to the {target}"
                "(e.g. key1=val1,key2=val2)"
            ),
            "type": "object",
        },
        "kwarg_op": {"default": "--", "description": _KWARG_OP_DESCRIPTION, "type": "string"},
        "sudo": {
            "default": False,
            "description": "The command will be executed with sudo.",
            "type": "boolean",
        },
        "sudo_password": {
            "default": None,
            "description": _SUDO_PASSWORD_DESCRIPTION,
            "type": "string",
            "secret": True,
            "required": False,
        },
        "timeout": {"default": 60, "description": _TIMEOUT_DESCRIPTION, "type": "integer"},
    }
    return params


def remote_params(*, with_cmd: bool) -> Params:
    """Runner parameters shared by ``remote-shell-cmd`` and ``remote-shell-script``."""
    target = "command" if with_cmd else "script"
    params: Params = {
        "bastion_host": {
            "description": (
                "The host SSH connections will be proxied through. Note: This connection is "
                "made using the same parameters as the final connection."
            ),
            "required": False,
            "type": "string",
        },
    }
    if with_cmd:
        params["cmd"] = {
            "description": "Arbitrary Linux command to be executed on the remote host(s).",
            "type": "string",
        }
    params |= {
        "cwd": {
            "default": "/tmp",
            "description": "Working directory where the script will be executed in",
            "type": "string",
        },
        "dir": {
            "default": "/tmp",
            "description": "The working directory where the script will be copied to on the "
            "remote host.",
            "type": "string",
        },
        "env": {
            "description": (
                f"Environment variables which will be available to the {target}"
                "(e.g. key1=val1,key2=val2)"
            ),
            "type": "object",
        },
        "hosts": {
            "description": (
                "A comma delimited string of a list of hosts where the remote command will be "
                "executed. For example: example1.com,example2.com,example3.com:5555"
            ),
            "required": True,
            "type": "string",
        },
        "kwarg_op": {"default": "--", "description": _KWARG_OP_DESCRIPTION, "type": "string"},
        "parallel": {
            "default": False,
            "description": "Default to parallel execution.",
            "immutable": True,
            "type": "boolean",
        },
        "passphrase": {
            "description": "Passphrase for the private key, if needed.",
            "required": False,
            "secret": True,
            "type": "string",
        },
        "password": {
            "description": (
                "Password used to log in. If not provided, private key from the config file "
                "is used."
            ),
            "required": False,
            "secret": True,
            "type": "string",
        },
        "port": {
            "description": (
                "SSH port. If not specified as part of the hosts list, default port will be "
                "used (22)."
            ),
            "required": False,
            "type": "integer",
        },
        "private_key": {
            "description": (
                "Private key material or path to the private key file on disk used to log in."
                if with_cmd
                else "Private key material to log in. Note: This needs to be actual private "
                "key data and NOT path."
            ),
            "required": False,
            "secret": True,
            "type": "string",
        },
        "sudo": {
            "default": False,
            "description": "The remote command will be executed with sudo.",
            "type": "boolean",
        },
        "sudo_password": {
            "default": None,
            "description": _SUDO_PASSWORD_DESCRIPTION,
            "type": "string",
            "required": False,
            "secret": True,
        },
        "timeout": {"default": 60, "description": _TIMEOUT_DESCRIPTION, "type": "integer"},
        "username": {
            "description": (
                "Username used to log-in. If not provided, default username from config is used."
            ),
            "required": False,
            "type": "string",
        },
    }
    if with_cmd:
        params["dir"]["immutable"] = True
    return params


PYTHON_PARAMS: Params = {
    "debug": dict(_DEBUG),
    "content_version": dict(_CONTENT_VERSION),
    "env": {
        "description": "Environment variables which will be available to the script.",
        "type": "object",
    },
    "timeout": {"default": 600, "description": _TIMEOUT_DESCRIPTION, "type": "integer"},
    "log_level": {
        "description": "Default log level for Python runner actions.",
        "type": "string",
        "default": "DEBUG",
        "enum": ["AUDIT", "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
    },
}

_HOST_LIST_NOTE = "If the action tries to access a host it may not, it fails without sending."
HTTP_PARAMS: Params = {
    "allow_redirects": {
        "default": False,
        "description": "Set to True if POST/PUT/DELETE redirect following is allowed.",
        "type": "boolean",
    },
    "cookies": {"description": "Optional cookies to send with the request.", "type": "object"},
    "headers": {"description": "HTTP headers for the request.", "type": "object"},
    "http_proxy": {
        "description": "URL of HTTP proxy to use (e.g. http://10.10.1.10:3128).",
        "type": "string",
    },
    "https_proxy": {
        "description": "URL of HTTPS proxy to use (e.g. http://10.10.1.10:3128).",
        "type": "string",
    },
    "password": {
        "description": "Password required by basic authentication.",
        "type": "string",
        "secret": True,
    },
    "url": {"description": "URL to the HTTP endpoint.", "required": True, "type": "string"},
    "username": {"description": "Username required by basic authentication.", "type": "string"},
    "verify_ssl_cert": {
        "default": True,
        "description": (
            "Certificate for HTTPS request is verified by default using the system CA bundle. "
            "Set to False to skip verification."
        ),
        "type": "boolean",
    },
    "url_hosts_blacklist": {
        "description": (
            "Optional list of hosts (network locations) to blacklist (e.g. example.com, "
            f"127.0.0.1, ::1, etc.). {_HOST_LIST_NOTE}"
        ),
        "required": False,
        "type": "array",
        "items": {"type": "string"},
    },
    "url_hosts_whitelist": {
        "description": (
            "Optional list of hosts (network locations) to whitelist (e.g. example.com, "
            "127.0.0.1, ::1, etc.). If specified, actions will only be able to hit hosts on "
            "this whitelist."
        ),
        "required": False,
        "type": "array",
        "items": {"type": "string"},
    },
}

INQUIRER_PARAMS: Params = {
    "schema": {
        "default": {
            "title": "response_data",
            "type": "object",
            "properties": {
                "continue": {
                    "type": "boolean",
                    "description": "Would you like to continue the workflow?",
                    "required": True,
                }
            },
        },
        "required": True,
        "description": "A JSON schema that will be used to validate the response data",
        "type": "object",
    },
    "route": {
        "default": "",
        "required": False,
        "description": (
            "An arbitrary value for allowing rules to route to proper notification channel"
        ),
        "type": "string",
    },
    "roles": {
        "default": [],
        "required": False,
        "description": (
            "A list of roles that are permitted to respond to the action (if nothing provided, "
            "all are permitted) - REQUIRES RBAC FEATURES"
        ),
        "type": "array",
    },
    "users": {
        "default": [],
        "required": False,
        "description": (
            "A list of usernames that are permitted to respond to the action (if nothing "
            "provided, all are permitted)"
        ),
        "type": "array",
    },
    "ttl": {
        "default": 1440,
        "required": True,
        "description": (
            "Time (in minutes) to wait before timing out the inquiry if no response is received"
        ),
        "type": "integer",
    },
}
