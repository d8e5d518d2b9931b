"""Encryption of datastore secrets (AES-256-GCM, authenticated) and the key file.

The key file is created on first start (mode 0600). Ciphertexts are hex strings:
``version byte (1) | nonce (12) | ciphertext+tag``, so they travel through JSON and the
``st2`` CLI like StackStorm's hex ciphertexts do.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from squall.errors import ValidationError

__all__ = ["Cipher", "load_or_create_key"]

_VERSION = b"\x01"


def load_or_create_key(path: Path) -> bytes:
    """Read the 32-byte key at ``path``, creating it (0600) if it does not exist."""
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
        return key
    try:
        key = bytes.fromhex(raw)
    except ValueError as exc:
        raise ValidationError(f"{path}: the datastore key file is not hex") from exc
    if len(key) != 32:
        raise ValidationError(f"{path}: the datastore key must be 32 bytes (64 hex digits)")
    return key


class Cipher:
    """Encrypts and decrypts datastore values with one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return (_VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)).hex()

    def decrypt(self, ciphertext: str) -> str:
        try:
            raw = bytes.fromhex(ciphertext)
        except ValueError as exc:
            raise ValidationError("the value is not an encrypted datastore value") from exc
        if len(raw) < 29 or raw[:1] != _VERSION:
            raise ValidationError("the value is not an encrypted datastore value")
        try:
            return self._aead.decrypt(raw[1:13], raw[13:], None).decode()
        except InvalidTag as exc:
            raise ValidationError(
                "cannot decrypt the value: it was encrypted with another key or altered"
            ) from exc
