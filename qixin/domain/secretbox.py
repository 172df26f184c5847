"""Secrets kept recoverable but not readable at rest (API app secrets: HMAC keys must be recoverable).

Rules:
- AES-256-GCM with a random 96-bit nonce per value; the stored form is ``enc1:`` + base64url(nonce ||
  ciphertext || tag). Anything else is a value stored before encryption existed, returned as it is.
- The key (32 bytes) comes from the ``secret_key`` setting, or from a key file the composition root
  creates once under the data directory; losing it makes the stored secrets unusable, so it is never
  rotated silently.
- Pure: no I/O here; the caller brings the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc1:"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key = key

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        """A key written as base64 (url-safe or standard)."""
        raw = base64.urlsafe_b64decode(text.strip().replace("+", "-").replace("/", "_") + "==")
        return cls(raw)

    @staticmethod
    def new_key_text() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")

    def seal(self, plain: str) -> str:
        nonce = os.urandom(12)
        return PREFIX + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain.encode(), None)).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored before secrets were encrypted
        raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def mac(self, label: str, value: str) -> str:
        """A keyed hash of ``value`` (HMAC-SHA256 under a key derived from this key for ``label``), hex:
        equal values give equal hashes, so a sealed value can be found without opening every row."""
        sub = hmac.new(self._key, label.encode(), hashlib.sha256).digest()
        return hmac.new(sub, value.encode(), hashlib.sha256).hexdigest()
