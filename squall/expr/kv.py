"""The ``st2kv`` template namespace, with a two-pass prefetch.

Rendering is pure and synchronous, but datastore values live in the database. So a render reads
from a :class:`KVSnapshot` of already-fetched values, and the snapshot records every key the
render asked for but did not have. :func:`render_with_kv` renders, fetches the missed keys,
and renders again until a render misses nothing new::

    result = await render_with_kv(
        lambda kv: render_value(params, {**ctx, "st2kv": kv.root}),
        fetch=store.fetch_keys,
        user="alice",
        decrypt=crypto.decrypt,
    )

Template behaviour (StackStorm's):

* ``st2kv.system.foo`` reads system key ``foo``; ``st2kv.user.foo`` reads the acting user's
  key ``foo``.
* Dotted access extends the key name: ``st2kv.system.a.b`` reads key ``a.b``. Item access
  ``st2kv.system['my-key']`` reads keys whose names are not identifiers.
* A key that does not exist renders as the empty string (not an error), as in StackStorm.
* A secret value renders as its ciphertext unless passed through ``| decrypt_kv``, which uses
  the snapshot's ``decrypt`` callable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from squall.errors import DomainError, ExpressionError

__all__ = [
    "DynamicLookup",
    "KVEntry",
    "KVRoot",
    "KVScope",
    "KVSnapshot",
    "KVValue",
    "KeyRef",
    "render_with_kv",
]

T = TypeVar("T")

SYSTEM_SCOPE = "system"
USER_SCOPE = "user"


class KeyRef(NamedTuple):
    """A datastore key: ``scope`` (``system`` or ``user``), owning ``user`` (None for system)."""

    scope: str
    user: str | None
    name: str


@dataclass(frozen=True)
class KVEntry:
    """A fetched datastore value; ``value`` is the ciphertext when ``secret`` is true."""

    value: str
    secret: bool = False


class DynamicLookup:
    """An object that resolves template attribute and item access itself.

    The sandboxed environment calls :meth:`lookup_attr` for ``obj.name`` and
    :meth:`lookup_item` for ``obj['name']``; raising ``KeyError`` makes the access undefined.
    """

    def lookup_attr(self, name: str) -> Any:
        raise KeyError(name)

    def lookup_item(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.lookup_attr(key)
        raise KeyError(key)


class KVSnapshot:
    """Datastore values fetched so far, plus the keys renders asked for and did not find.

    Args:
        entries: Already-fetched values.
        user: The acting user (``st2kv.user`` reads this user's keys).
        decrypt: Turns a secret's ciphertext into plain text (used by ``decrypt_kv``).
    """

    def __init__(
        self,
        entries: Mapping[KeyRef, KVEntry] | None = None,
        *,
        user: str | None = None,
        decrypt: Callable[[str], str] | None = None,
    ) -> None:
        self.user = user
        self._decrypt = decrypt
        self._entries: dict[KeyRef, KVEntry] = {KeyRef(*k): v for k, v in (entries or {}).items()}
        self._absent: set[KeyRef] = set()
        self._missed: set[KeyRef] = set()
        self.root = KVRoot(self)

    @property
    def missed(self) -> frozenset[KeyRef]:
        """Keys asked for since the last :meth:`clear_missed` that are neither known nor absent."""
        return frozenset(self._missed)

    def clear_missed(self) -> None:
        """Forget the recorded misses (before a new render pass)."""
        self._missed.clear()

    def add(self, fetched: Mapping[KeyRef, KVEntry], requested: Iterable[KeyRef] = ()) -> None:
        """Record fetched values; keys in ``requested`` but not in ``fetched`` are absent."""
        for ref, entry in fetched.items():
            self._entries[KeyRef(*ref)] = entry
        for ref in requested:
            ref = KeyRef(*ref)
            if ref not in self._entries:
                self._absent.add(ref)

    def get(self, ref: KeyRef) -> KVEntry | None:
        """Return the entry for ``ref``; record a miss when it was never fetched."""
        entry = self._entries.get(ref)
        if entry is None and ref not in self._absent:
            self._missed.add(ref)
        return entry

    def ref(self, scope: str, name: str) -> KeyRef:
        """The key ``name`` in ``scope`` for the acting user."""
        if scope == USER_SCOPE:
            if not self.user:
                raise ValueError(f"st2kv.user.{name}: no acting user to read user-scoped keys for")
            return KeyRef(USER_SCOPE, self.user, name)
        return KeyRef(SYSTEM_SCOPE, None, name)

    def value(self, scope: str, name: str) -> KVValue:
        """The template value of a key: its (cipher)text, or ``""`` when it does not exist."""
        ref = self.ref(scope, name)
        entry = self.get(ref)
        if entry is None:
            return KVValue("", self, ref, secret=False)
        return KVValue(entry.value, self, ref, secret=entry.secret)

    def decrypt_value(self, ciphertext: str) -> str:
        """Decrypt with the snapshot's ``decrypt`` callable.

        Raises:
            ValueError: no decrypt callable was given.
        """
        if self._decrypt is None:
            raise ValueError("decrypt_kv: decryption is not available in this context")
        if ciphertext == "":
            return ""
        return self._decrypt(ciphertext)


class KVRoot(DynamicLookup):
    """``st2kv`` itself: ``st2kv.system`` and ``st2kv.user``."""

    def __init__(self, snapshot: KVSnapshot) -> None:
        self.snapshot = snapshot
        self._scopes = {
            SYSTEM_SCOPE: KVScope(snapshot, SYSTEM_SCOPE),
            USER_SCOPE: KVScope(snapshot, USER_SCOPE),
        }

    def lookup_attr(self, name: str) -> Any:
        return self._scopes[name]

    def __str__(self) -> str:
        return ""


class KVScope(DynamicLookup):
    """``st2kv.system`` or ``st2kv.user``: attribute and item access read keys."""

    def __init__(self, snapshot: KVSnapshot, scope: str) -> None:
        self.snapshot = snapshot
        self.scope = scope

    def lookup_attr(self, name: str) -> Any:
        return self.snapshot.value(self.scope, name)

    def __str__(self) -> str:
        return ""


class KVValue(str, DynamicLookup):
    """A datastore value in a template: a ``str`` whose dotted access extends the key name."""

    snapshot: KVSnapshot
    ref: KeyRef
    secret: bool

    def __new__(cls, text: str, snapshot: KVSnapshot, ref: KeyRef, *, secret: bool) -> KVValue:
        obj = super().__new__(cls, text)
        obj.snapshot = snapshot
        obj.ref = ref
        obj.secret = secret
        return obj

    def lookup_attr(self, name: str) -> Any:
        return self.snapshot.value(self.ref.scope, f"{self.ref.name}.{name}")

    def lookup_item(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.lookup_attr(key)
        return str.__getitem__(self, key)  # indexing and slicing work as on any string

    def decrypted(self) -> str:
        """Plain text of this value (decrypting it when it is a secret)."""
        text = str.__str__(self)
        return self.snapshot.decrypt_value(text) if self.secret else text


async def render_with_kv(
    render: Callable[[KVSnapshot], T],
    fetch: Callable[[set[KeyRef]], Awaitable[Mapping[KeyRef, KVEntry]]],
    *,
    max_rounds: int = 5,
    user: str | None = None,
    decrypt: Callable[[str], str] | None = None,
    snapshot: KVSnapshot | None = None,
) -> T:
    """Render with ``st2kv`` values, fetching the keys each pass misses.

    ``render`` is called with the snapshot; every key it reads that the snapshot does not know
    is recorded, fetched with ``fetch`` (which returns the entries that exist), and ``render``
    runs again, until a pass misses nothing. A pass that missed keys may fail (an empty
    placeholder can break a filter such as ``from_json_string``); such a failure is retried
    after the fetch and only raised when the pass missed nothing.

    Args:
        render: Pure rendering function of the snapshot.
        fetch: Loads the given keys; keys it does not return do not exist.
        max_rounds: Upper bound on render passes (keys named by other keys need several).
        user: The acting user for ``st2kv.user`` (ignored when ``snapshot`` is given).
        decrypt: Decrypts secrets for ``decrypt_kv`` (ignored when ``snapshot`` is given).
        snapshot: Start from this snapshot instead of an empty one.

    Returns:
        The result of the last, complete, render.

    Raises:
        ExpressionError: keys were still missing after ``max_rounds`` passes.
    """
    snap = snapshot if snapshot is not None else KVSnapshot(user=user, decrypt=decrypt)
    for _ in range(max_rounds):
        snap.clear_missed()
        try:
            result = render(snap)
        except DomainError:
            if not snap.missed:
                raise
            missed = set(snap.missed)
        else:
            missed = set(snap.missed)
            if not missed:
                return result
        snap.add(await fetch(missed), requested=missed)
    raise ExpressionError(
        f"datastore keys still missing after {max_rounds} render passes: "
        + ", ".join(sorted(f"{r.scope}:{r.name}" for r in snap.missed))
    )
