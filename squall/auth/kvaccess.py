"""Datastore access for templates rendered on a user's behalf (``st2kv`` and ``decrypt_kv``).

When a user's request renders ``{{ st2kv.system.x }}`` or ``{{ st2kv.system.x | decrypt_kv }}``
the read happens on that user's behalf, so the same rules as the keys API apply:

* a system key needs ``key_value_pair_view`` on ``key_value_pair:system:<name>`` (observers
  and admins hold it everywhere); a user's own keys are always readable;
* decrypting a system secret needs an admin; a user may decrypt their own secrets;
* ``decrypt_kv`` on a literal ciphertext (one not read from the datastore in this render)
  needs an admin — otherwise a user could paste another key's ciphertext, which listing keys
  shows, and have it decrypted.

Templates Squall renders for itself (rules, which run as the system user, and pack configs,
which administrators write) use the plain datastore access.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from squall.auth.rbac import Subject, has_permission
from squall.errors import PermissionDenied
from squall.expr.kv import KeyRef, KVEntry

__all__ = ["KVAccess", "KVReferences", "permission_denied_cause", "static_kv_references"]

Fetch = Callable[[set[KeyRef]], Awaitable[Mapping[KeyRef, KVEntry]]]


def _is_admin(subject: Subject) -> bool:
    return bool({"admin", "system_admin"}.intersection(subject.roles))


class KVAccess:
    """``fetch`` and ``decrypt`` callables for :func:`squall.expr.kv.render_with_kv` that
    enforce ``subject``'s permissions.

    Args:
        subject: Who the template is rendered for.
        fetch: The datastore's key fetcher.
        decrypt: The cipher's decrypt function.
    """

    def __init__(self, subject: Subject, fetch: Fetch, decrypt: Callable[[str], str]) -> None:
        self.subject = subject
        self._fetch = fetch
        self._decrypt = decrypt
        #: Ciphertext -> the key it was read from, to decide who may decrypt it.
        self._secrets: dict[str, KeyRef] = {}

    def check_read(self, ref: KeyRef) -> None:
        """Raise 403 unless the subject may read ``ref``."""
        if ref.scope == "user":
            if ref.user == self.subject.user or _is_admin(self.subject):
                return
            uid = f"key_value_pair:user:{ref.name}"
            raise PermissionDenied(
                f"user '{self.subject.user}' lacks permission 'key_value_pair_view' on '{uid}' "
                f"of user '{ref.user}'"
            )
        uid = f"key_value_pair:system:{ref.name}"
        if not has_permission(self.subject, "key_value_pair_view", uid):
            raise PermissionDenied(
                f"user '{self.subject.user}' lacks permission 'key_value_pair_view' on '{uid}'",
                hint="ask an administrator for a role that grants it",
            )

    async def fetch(self, refs: AbstractSet[KeyRef]) -> Mapping[KeyRef, KVEntry]:
        for ref in refs:
            self.check_read(ref)
        found = await self._fetch(set(refs))
        for ref, entry in found.items():
            if entry.secret:
                self._secrets[entry.value] = KeyRef(*ref)
        return found

    def decrypt(self, ciphertext: str) -> str:
        ref = self._secrets.get(ciphertext)
        if not _is_admin(self.subject):
            if ref is None:
                raise PermissionDenied(
                    f"user '{self.subject.user}' may not decrypt a value that was not read "
                    "from the datastore in this template",
                    hint="use {{ st2kv.user.<name> | decrypt_kv }} with a key you own",
                )
            if ref.scope != "user" or ref.user != self.subject.user:
                raise PermissionDenied(
                    f"user '{self.subject.user}' may not decrypt {ref.scope} key '{ref.name}' "
                    "(only admins and the key's owner can decrypt a secret)"
                )
        return self._decrypt(ciphertext)


def permission_denied_cause(exc: BaseException) -> PermissionDenied | None:
    """The :class:`PermissionDenied` a rendering error was caused by, if any (template
    errors wrap the filter's exception)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PermissionDenied):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class KVReferences:
    """The datastore keys a template text names literally.

    Attributes:
        system: ``st2kv.system.<name>`` key names.
        user: ``st2kv.user.<name>`` key names.
        decrypts: The text uses ``decrypt_kv``.
        dynamic: ``st2kv`` is used in another way (item access, aliases, ``st2kv(...)``), so
            the keys read cannot be known before rendering.
    """

    system: frozenset[str]
    user: frozenset[str]
    decrypts: bool
    dynamic: bool


_KV_DOTTED = re.compile(r"st2kv\.(system|user)((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)(\s*\[)?")


def static_kv_references(text: str) -> KVReferences:
    """What ``text`` (templates, or a JSON document holding them) reads from the datastore.

    Used for templates Squall renders later as the system user (rules), where the author's
    permissions cannot be checked at render time.
    """
    system: set[str] = set()
    user: set[str] = set()
    dynamic = False
    matches = 0
    for match in _KV_DOTTED.finditer(text):
        matches += 1
        name = match.group(2)[1:]
        if match.group(3):
            dynamic = True
        (system if match.group(1) == "system" else user).add(name)
    if text.count("st2kv") != matches:
        dynamic = True
    return KVReferences(frozenset(system), frozenset(user), "decrypt_kv" in text, dynamic)
