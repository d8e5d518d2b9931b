"""The st2kv namespace and the two-pass prefetch, with an in-memory datastore."""

from __future__ import annotations

from typing import Any

import pytest

from squall.errors import ExpressionError
from squall.expr.jinja import render_native, render_template, render_value
from squall.expr.kv import KeyRef, KVEntry, KVSnapshot, render_with_kv


class FakeStore:
    """An in-memory datastore that counts fetch calls."""

    def __init__(self, entries: dict[KeyRef, KVEntry]) -> None:
        self.entries = entries
        self.calls: list[set[KeyRef]] = []

    async def fetch(self, refs: set[KeyRef]) -> dict[KeyRef, KVEntry]:
        self.calls.append(set(refs))
        return {ref: self.entries[ref] for ref in refs if ref in self.entries}


def sys_key(name: str) -> KeyRef:
    return KeyRef("system", None, name)


def user_key(user: str, name: str) -> KeyRef:
    return KeyRef("user", user, name)


def decrypt(ciphertext: str) -> str:
    assert ciphertext.startswith("enc:")
    return ciphertext[4:]


STORE = {
    sys_key("foo"): KVEntry("bar"),
    sys_key("a.b"): KVEntry("dotted"),
    sys_key("my-key"): KVEntry("dashed"),
    sys_key("cfg"): KVEntry('{"hosts": ["h1", "h2"]}'),
    sys_key("which"): KVEntry("foo"),
    sys_key("password"): KVEntry("enc:s3cret", secret=True),
    user_key("alice", "token"): KVEntry("alice-token"),
    user_key("bob", "token"): KVEntry("bob-token"),
}


def render_with(template: str, snap: KVSnapshot, **ctx: Any) -> Any:
    return render_native(template, {**ctx, "st2kv": snap.root})


async def two_pass(template: str, *, user: str | None = "alice", **ctx: Any) -> Any:
    store = FakeStore(STORE)
    result = await render_with_kv(
        lambda snap: render_with(template, snap, **ctx), store.fetch, user=user, decrypt=decrypt
    )
    return result, store


async def test_system_key_two_passes_one_fetch() -> None:
    result, store = await two_pass("{{ st2kv.system.foo }}")
    assert result == "bar"
    assert type(result) is str
    assert store.calls == [{sys_key("foo")}]


async def test_dotted_access_extends_the_key_name() -> None:
    result, _ = await two_pass("{{ st2kv.system.a.b }}")
    assert result == "dotted"


async def test_item_access() -> None:
    result, _ = await two_pass("{{ st2kv.system['my-key'] }}")
    assert result == "dashed"


async def test_user_scope_reads_the_acting_users_key() -> None:
    result, store = await two_pass("{{ st2kv.user.token }}", user="alice")
    assert result == "alice-token"
    assert store.calls == [{user_key("alice", "token")}]
    result, _ = await two_pass("{{ st2kv.user.token }}", user="bob")
    assert result == "bob-token"


async def test_user_scope_without_a_user_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="no acting user"):
        await two_pass("{{ st2kv.user.token }}", user=None)


async def test_missing_key_renders_as_empty_string() -> None:
    result, store = await two_pass("[{{ st2kv.system.nope }}]")
    assert result == "[]"
    assert len(store.calls) == 1  # absent keys are remembered, not fetched again


async def test_filters_apply_after_fetch() -> None:
    # The first pass sees "" and from_json_string fails; the failure is retried after fetch.
    result, _ = await two_pass("{{ (st2kv.system.cfg | from_json_string).hosts }}")
    assert result == ["h1", "h2"]


async def test_real_errors_still_raise_after_fetch() -> None:
    with pytest.raises(ExpressionError, match="JSONDecodeError"):
        await two_pass("{{ st2kv.system.foo | from_json_string }}")


async def test_key_named_by_another_key_needs_a_second_fetch() -> None:
    result, store = await two_pass("{{ st2kv.system[st2kv.system.which] }}")
    assert result == "bar"
    assert store.calls == [{sys_key("which"), sys_key("")}, {sys_key("foo")}]


async def test_secret_renders_ciphertext_unless_decrypted() -> None:
    result, _ = await two_pass("{{ st2kv.system.password }}")
    assert result == "enc:s3cret"
    result, _ = await two_pass("{{ st2kv.system.password | decrypt_kv }}")
    assert result == "s3cret"
    # A non-secret value passes through decrypt_kv unchanged.
    result, _ = await two_pass("{{ st2kv.system.foo | decrypt_kv }}")
    assert result == "bar"


async def test_decrypt_kv_on_plain_ciphertext_uses_context_snapshot() -> None:
    result, _ = await two_pass("{{ s | decrypt_kv }}", s="enc:plain")
    assert result == "plain"


def test_decrypt_without_callable_fails() -> None:
    snap = KVSnapshot(STORE, user="alice")
    with pytest.raises(ExpressionError, match="decryption is not available"):
        render_with("{{ st2kv.system.password | decrypt_kv }}", snap)


def test_snapshot_records_misses_and_known_values() -> None:
    snap = KVSnapshot({sys_key("foo"): KVEntry("bar")}, user="alice")
    assert render_with("{{ st2kv.system.foo }}-{{ st2kv.user.x }}", snap) == "bar-"
    assert snap.missed == {user_key("alice", "x")}
    snap.add({}, requested=snap.missed)
    snap.clear_missed()
    assert render_with("{{ st2kv.user.x }}", snap) == ""
    assert snap.missed == frozenset()


def test_nested_values_become_plain_strings() -> None:
    snap = KVSnapshot({sys_key("foo"): KVEntry("bar")})
    result = render_value({"k": "{{ [st2kv.system.foo, {'x': st2kv.system.foo}] }}"}, {
        "st2kv": snap.root
    })  # fmt: skip
    assert result == {"k": ["bar", {"x": "bar"}]}
    assert type(result["k"][0]) is str and type(result["k"][1]["x"]) is str


def test_kv_values_work_like_strings_in_templates() -> None:
    snap = KVSnapshot({sys_key("foo"): KVEntry("bar"), sys_key("n"): KVEntry("3")})
    ctx = {"st2kv": snap.root}
    assert render_template("{{ st2kv.system.foo | upper }}", ctx) == "BAR"
    assert render_native("{{ st2kv.system.foo == 'bar' }}", ctx) is True
    assert render_native("{{ st2kv.system.n | int + 1 }}", ctx) == 4
    assert render_native("{{ st2kv.system.foo ~ '!' }}", ctx) == "bar!"
    assert render_native("{{ st2kv.system.foo[0] }}{{ st2kv.system.foo[1:] }}", ctx) == "bar"


def test_datastore_objects_expose_no_python_attributes() -> None:
    snap = KVSnapshot({sys_key("foo"): KVEntry("enc:x", secret=True)}, decrypt=decrypt)
    ctx = {"st2kv": snap.root}
    # Attribute access means "key name", never a Python attribute.
    with pytest.raises(ExpressionError, match="no attribute 'snapshot'"):
        render_native("{{ st2kv.snapshot }}", ctx)
    assert render_native("{{ st2kv.system.snapshot }}", ctx) == ""  # the key "snapshot"
    with pytest.raises(ExpressionError):
        render_native("{{ (st2kv.system.foo | attr('snapshot')).decrypt_value('enc:x') }}", ctx)
    # A dunder after a key is just part of a key name, never the Python attribute.
    assert render_native("{{ st2kv.system.foo.__class__ }}", ctx) == ""
    assert KeyRef("system", None, "foo.__class__") in snap.missed


async def test_gives_up_after_max_rounds() -> None:
    calls = 0

    async def fetch(refs: set[KeyRef]) -> dict[KeyRef, KVEntry]:
        nonlocal calls
        calls += 1
        return {}

    counter = iter(range(100))

    def render(snap: KVSnapshot) -> str:
        # Asks for a new key on every pass.
        return str(snap.value("system", f"k{next(counter)}"))

    with pytest.raises(ExpressionError, match="still missing after 3"):
        await render_with_kv(render, fetch, max_rounds=3)
    assert calls == 3
