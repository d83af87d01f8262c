"""Ed25519 message signatures: every sender signs what it writes, so the audit trail can
prove who said what.

Keys are 32 raw bytes (RFC 8032 seed) in key files; public keys are 32 raw bytes in the
directory; signatures are 64 bytes. Ed25519 signing is deterministic.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from renkei.errors import CryptoError, SignatureError

__all__ = ["PUBLIC_KEY_LENGTH", "SIGNATURE_LENGTH", "SigningKey", "verify"]

PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64


class SigningKey:
    """An Ed25519 private key. ``repr()`` shows only a fingerprint of the public key.

    :param key: the ``cryptography`` private key; use :meth:`generate` or
        :meth:`from_bytes` instead of calling this directly.
    """

    __slots__ = ("_key", "_public_bytes")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public_bytes = key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> Self:
        """A new random signing key."""
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a key from :meth:`to_bytes`.

        :raises CryptoError: ``data`` is not a 32-byte Ed25519 private key.
        """
        try:
            return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(data)))
        except ValueError as exc:
            raise CryptoError(f"not an Ed25519 private key ({len(data)} bytes)") from exc

    def to_bytes(self) -> bytes:
        """The 32-byte private key, to store in a key file. Never log it."""
        return self._key.private_bytes_raw()

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte public key, to publish in the directory."""
        return self._public_bytes

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature of ``data``."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        fingerprint = hashlib.sha256(self._public_bytes).hexdigest()[:16]
        return f"SigningKey(public_sha256={fingerprint})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a SigningKey cannot be pickled; store to_bytes() in a key file")


@lru_cache(maxsize=4096)
def _public_key(data: bytes) -> ed25519.Ed25519PublicKey:
    # Cached: the hub verifies messages from a few hundred senders, again and again.
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(data)
    except ValueError as exc:
        raise SignatureError(f"not an Ed25519 public key ({len(data)} bytes)") from exc


def verify(public_key_bytes: bytes, data: bytes, signature: bytes) -> None:
    """Check that ``signature`` is the signature of ``data`` by ``public_key_bytes``.

    :raises SignatureError: it is not, or the key or signature is malformed.
    """
    key = _public_key(bytes(public_key_bytes))
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc
