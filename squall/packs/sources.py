"""What ``pack install`` accepts: StackStorm's ``<name or URL>[=<version>]`` specs.

Pure: parsing touches neither the filesystem nor the network. A spec is one of

* a git URL: ``https://…``, ``http://…``, ``ssh://…``, ``git://…`` or the scp-like
  ``user@host:path`` form;
* a local pack: a ``file://`` URL or an absolute or ``./``-relative path (a git repository
  is cloned, a plain directory is copied);
* ``owner/repo``, GitHub's short form (StackStorm's ``eval_repo_url``);
* a bare pack name, which Squall can only *register* from its pack search path (it has no
  StackStorm Exchange).

The optional version follows the first ``=`` as in StackStorm (``st2 pack install
https://github.com/x/y.git=v1.2.0``): a branch, a tag (``1.2.0`` also finds ``v1.2.0``) or a
commit sha.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from squall.errors import ValidationError
from squall.packs.metadata import REF_PATTERN

__all__ = [
    "GIT_PROTOCOLS",
    "PackSpec",
    "SpecKind",
    "parse_pack_spec",
    "redact_spec",
    "redact_url",
    "strip_userinfo",
]

SpecKind = Literal["git", "local", "name"]

#: URL schemes cloned with git; ``git+ssh``/``ssh+git`` are git's aliases of ``ssh``.
_GIT_SCHEMES = frozenset({"https", "http", "ssh", "git", "git+ssh", "ssh+git"})
#: What git itself may use (``GIT_ALLOW_PROTOCOL``): never ``ext::`` (runs commands) nor
#: ``fd::``, also not through submodules or redirects.
GIT_PROTOCOLS = ("file", "git", "http", "https", "ssh")

_SCP_LIKE = re.compile(r"[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:(?!//)\S+")
_GITHUB_SHORT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")
_NAME = re.compile(REF_PATTERN)
# Branch, tag or sha: git ref characters only, and never an option (leading "-").
_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}")

_SPEC_HINT = (
    "give a git URL (https://…, ssh://…, git@host:owner/repo.git, file:///path), a local "
    "directory, or a pack name on the pack search path, each optionally followed by "
    "=VERSION (a branch, tag or commit)"
)


@dataclass(frozen=True)
class PackSpec:
    """One parsed install spec.

    ``location`` is the URL to clone (``git``), the local filesystem path (``local``) or the
    pack ref (``name``).
    """

    spec: str
    kind: SpecKind
    location: str
    version: str | None = None

    @property
    def source(self) -> str:
        """Where the pack comes from as the spec wrote it (``file://`` URLs stay URLs),
        with any user info masked: for messages and install records."""
        given = self.spec.strip().partition("=")[0]
        return redact_url(given) if self.kind != "git" else redact_url(self.location)

    @property
    def display(self) -> str:
        """The spec with any user info in the URL masked."""
        return f"{self.source}={self.version}" if self.version else self.source


def _split_userinfo(url: str) -> tuple[str, str, str] | None:
    """(before the netloc, user info, the rest) of a URL with user info, else ``None``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or "@" not in parts.netloc:
        return None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    # The host part is kept as written, so an IPv6 host keeps its brackets.
    return f"{parts.scheme}://", userinfo, urlunsplit(parts._replace(scheme="", netloc=hostport))


def redact_url(url: str) -> str:
    """``url`` with its whole user info masked (``https://***@host/…``): a user name can be
    a token (``https://ghp_…@github.com``) as well as a password can. The scp-like
    ``git@host:path`` form has no place for a secret and stays as it is."""
    split = _split_userinfo(url)
    if split is None:
        return url
    scheme, _userinfo, rest = split
    return f"{scheme}***@{rest.removeprefix('//')}"


def strip_userinfo(url: str) -> str:
    """``url`` without any user info (``https://host/…``), for a clone's ``origin``."""
    split = _split_userinfo(url)
    if split is None:
        return url
    scheme, _userinfo, rest = split
    return f"{scheme}{rest.removeprefix('//')}"


def redact_spec(spec: str) -> str:
    """A ``pack install`` spec as it may be shown or stored: the URL's user info masked,
    the ``=VERSION`` kept."""
    location, sep, version = str(spec).partition("=")
    return f"{redact_url(location)}{sep}{version}"


def _bad(spec: str, reason: str, hint: str = _SPEC_HINT) -> ValidationError:
    return ValidationError(f"packs: {redact_spec(spec)!r}: {reason}", hint=hint)


def _check_version(spec: str, version: str) -> str:
    if not version:
        raise _bad(
            spec, "nothing after '='", "write URL=VERSION, or leave out '=' for the default branch"
        )
    if version.startswith("-"):
        raise _bad(spec, "a version cannot begin with '-'", "name a branch, tag or commit")
    if not _VERSION.fullmatch(version) or ".." in version or version.endswith((".", "/", ".lock")):
        raise _bad(
            spec,
            f"{version!r} is not a valid branch, tag or commit name",
            "versions are made of letters, digits and . _ / + -",
        )
    return version


def parse_pack_spec(spec: str) -> PackSpec:
    """Parse one ``pack install`` spec.

    Args:
        spec: ``<URL, path or name>[=<version>]`` as StackStorm's ``st2 pack install`` takes.

    Raises:
        ValidationError: The spec is empty, looks like a command-line option, uses a URL
            scheme git must not use, or has an invalid version.
    """
    text = spec.strip()
    if not text:
        raise _bad(spec, "empty pack spec")
    if text.startswith("-"):
        # Passed to git after "--" anyway; refused so no reading of it can be an option.
        raise _bad(spec, "a pack spec cannot begin with '-'")
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise _bad(spec, "a pack spec cannot contain spaces or control characters")
    location, sep, raw_version = text.partition("=")
    version = _check_version(spec, raw_version) if sep else None
    if not location:
        raise _bad(spec, "nothing before '='")
    if "#" in location and not sep:
        raise _bad(
            spec,
            "'#' does not select a version",
            "StackStorm's form is URL=VERSION (a branch, tag or commit)",
        )

    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    if scheme == "file":
        path = location[len("file://") :]
        if not path.startswith("/"):
            raise _bad(spec, "a file:// URL needs an absolute path (file:///path/to/pack)")
        return PackSpec(spec, "local", path, version)
    if scheme in _GIT_SCHEMES:
        netloc = urlsplit(location).netloc
        if not netloc:
            raise _bad(spec, "the URL has no host")
        if netloc.startswith("-") or "@-" in netloc:
            raise _bad(spec, "a user or host name cannot begin with '-'")
        return PackSpec(spec, "git", location, version)
    if scheme:
        raise _bad(spec, f"unsupported URL scheme {scheme + '://'!r}")
    if "::" in location:
        # git's "<transport>::<address>" form (ext::, fd::) can run commands.
        raise _bad(spec, "git transport syntax ('::') is not accepted")
    if location.startswith(("/", "./", "../")) or location in (".", ".."):
        return PackSpec(spec, "local", location, version)
    if _SCP_LIKE.fullmatch(location):
        if "@-" in location.split(":", 1)[0]:
            raise _bad(spec, "a host name cannot begin with '-'")
        return PackSpec(spec, "git", location, version)
    if _GITHUB_SHORT.fullmatch(location):
        return PackSpec(spec, "git", f"https://github.com/{location}", version)
    if _NAME.fullmatch(location):
        return PackSpec(spec, "name", location, version)
    raise _bad(spec, "not a git URL, a local path or a pack name")
