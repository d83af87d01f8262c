"""Ed25519 through libsodium (PyNaCl) for the hub's hot path, with ``cryptography``'s verdicts.

The hub verifies every inbound signature and signs every outbound message in ``strict``
mode. Measured on the project's 2-core machine (``docs/benchmarks.md``), libsodium's
verify takes about 0.6 of the time of ``cryptography``'s (OpenSSL) and its sign about 0.7;
both release the GIL, so verifying in threads scales with the cores.

The verdicts stay :func:`renkei.crypto.verify`'s, byte for byte:

* Signing: Ed25519 is deterministic (RFC 8032); libsodium's signature of a message under
  a key is OpenSSL's (a unit test checks).
* Verifying: libsodium accepts a subset of what OpenSSL accepts (the same cofactorless
  equation, with more checks before it: canonical encodings, no small-order points). So a
  signature libsodium accepts is accepted, and anything else is handed to
  :func:`renkei.crypto.verify`, which decides — and raises its own error with its own text.
  A genuine signature never takes that second path.
"""

from __future__ import annotations

from typing import Self

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric import ed25519

from renkei.crypto.signing import SigningKey
from renkei.crypto.signing import verify as reference_verify

__all__ = ["SodiumSigningKey", "sodium_accepts", "verify"]

_open = nacl.bindings.crypto_sign_open
_sign = nacl.bindings.crypto_sign
_BAD = (nacl.exceptions.CryptoError, ValueError, TypeError)


def sodium_accepts(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Whether libsodium accepts ``signature`` of ``data`` by ``public_key``.

    ``False`` is not a refusal: ask :func:`verify` (or :func:`renkei.crypto.verify`).
    Releases the GIL while libsodium computes.
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        _open(signature + data, public_key)
    except _BAD:
        return False
    return True


def verify(public_key: bytes, data: bytes, signature: bytes) -> None:
    """:func:`renkei.crypto.verify`, libsodium first.

    :raises SignatureError: as :func:`renkei.crypto.verify`.
    """
    if not sodium_accepts(public_key, data, signature):
        reference_verify(public_key, data, signature)


class SodiumSigningKey(SigningKey):
    """A :class:`~renkei.crypto.SigningKey` that signs through libsodium.

    The same key and the same signatures; build it with :meth:`of`.
    """

    __slots__ = ("_secret",)

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        super().__init__(key)
        # libsodium's secret key: the RFC 8032 seed followed by the public key.
        _, self._secret = nacl.bindings.crypto_sign_seed_keypair(key.private_bytes_raw())

    @classmethod
    def of(cls, key: SigningKey) -> Self:
        """``key``, signing through libsodium."""
        return cls.from_bytes(key.to_bytes())

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature of ``data`` (releases the GIL while it computes)."""
        return _sign(data, self._secret)[:64]
