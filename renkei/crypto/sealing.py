"""Attribute values sealed end to end from provider to requester (HPKE, RFC 9180).

A provider seals the values to the requester's public key; the hub routes the sealed bytes
and never holds a key that opens them. Two suites, both HPKE Base mode, single shot:

=================== ==================== ============ =========== ========= =========
suite name          KEM                  KDF          AEAD        ``enc``   public key
=================== ==================== ============ =========== ========= =========
``X25519``          DHKEM(X25519)        HKDF-SHA256  AES-128-GCM 32 bytes  32 bytes
``MLKEM768_X25519`` ML-KEM-768 + X25519  HKDF-SHA256  AES-256-GCM 1120 bytes 1216 bytes
=================== ==================== ============ =========== ========= =========

The hybrid suite stays safe if either ML-KEM-768 or X25519 holds, and is meant for data
that must stay confidential for decades. Its keys are stored as the concatenation of the
parts: public = ML-KEM-768 encapsulation key (1184) ‖ X25519 public key (32); private =
ML-KEM-768 seed (64) ‖ X25519 private key (32).

**Binding to the exchange.** ``cryptography`` 50 exposes HPKE's ``info`` but not its
per-message ``aad``, so the exchange binding goes into ``info``::

    HPKE info = len(info) (2 bytes, big-endian) ‖ info ‖ aad        HPKE aad = empty

``info`` is bound into the key schedule, so a wrong label or ``aad`` derives another key
and the AEAD tag fails, exactly as a wrong ``aad`` would. For one message per context that
is the same guarantee; any HPKE library in another language reproduces it with its
ordinary ``info`` argument. Use :func:`exchange_aad` to build ``aad`` from the exchange's
identifiers; :func:`renkei.crypto.context.attributes_aad` is the one for attribute answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from renkei.errors import SealingError

__all__ = [
    "ATTRIBUTES_INFO",
    "DEFAULT_SUITE",
    "SUITES",
    "SealingKeyPair",
    "SuiteName",
    "check_public_key",
    "decode_attributes",
    "encode_attributes",
    "exchange_aad",
    "open",
    "seal",
]

SuiteName = Literal["X25519", "MLKEM768_X25519"]
SUITES: tuple[SuiteName, ...] = get_args(SuiteName)
DEFAULT_SUITE: SuiteName = "X25519"
ATTRIBUTES_INFO = b"renkei/attributes/v2"
"""HPKE ``info`` label of sealed attribute values: version 2 of their binding to the
exchange (:func:`renkei.crypto.context.attributes_aad`). Version 1 (``renkei/v1/attributes``,
four parts, no request id) is withdrawn: it let answers under one reply key be swapped."""

_PublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
_PrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey

_HPKE = {
    "X25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM),
    "MLKEM768_X25519": hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}
_ENC_LENGTH = {"X25519": hpke.KEM.X25519.enc_length(), "MLKEM768_X25519": 1120}
_X25519_LENGTH = 32
_MLKEM_PUBLIC_LENGTH = 1184
_MLKEM_SEED_LENGTH = 64


def _check_suite(suite: str) -> SuiteName:
    if suite not in _HPKE:
        raise SealingError(f"unknown sealing suite {suite!r}; known: {', '.join(SUITES)}")
    return suite  # type: ignore[return-value]  # membership in _HPKE is membership in SuiteName


def _context_info(info: bytes, aad: bytes) -> bytes:
    if len(info) > 0xFFFF:
        raise SealingError("info label longer than 65535 bytes")
    return len(info).to_bytes(2, "big") + info + aad


@lru_cache(maxsize=4096)
def _load_public(suite: SuiteName, data: bytes) -> _PublicKey:
    # Cached: a provider seals to the same few requesters over and over, and parsing an
    # ML-KEM key is the costly part of sealing to it.
    try:
        if suite == "X25519":
            return x25519.X25519PublicKey.from_public_bytes(data)
        if len(data) != _MLKEM_PUBLIC_LENGTH + _X25519_LENGTH:
            raise ValueError("wrong length")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(data[:_MLKEM_PUBLIC_LENGTH]),
            x25519.X25519PublicKey.from_public_bytes(data[_MLKEM_PUBLIC_LENGTH:]),
        )
    except ValueError as exc:
        raise SealingError(f"not a {suite} public key ({len(data)} bytes)") from exc


def check_public_key(suite: SuiteName, data: bytes) -> None:
    """Check that ``data`` is a usable public key of ``suite``, e.g. when an agency registers
    it, so a bad key is refused then rather than when a provider first seals to it.

    Any 32 bytes parse as an X25519 key, so this also seals an empty message to it, which
    fails for the low-order points that would make every seal to it fail.

    :raises SealingError: it is not.
    """
    seal(suite, data, b"", aad=b"")


class SealingKeyPair:
    """A recipient's HPKE key pair. ``repr()`` shows the suite and a public-key fingerprint.

    Build one with :meth:`generate` or :meth:`from_private_bytes`.
    """

    __slots__ = ("_private", "_private_bytes", "_public_bytes", "suite")

    def __init__(
        self, suite: SuiteName, private: _PrivateKey, private_bytes: bytes, public_bytes: bytes
    ) -> None:
        self.suite: SuiteName = suite
        self._private = private
        self._private_bytes = private_bytes
        self._public_bytes = public_bytes

    @classmethod
    def generate(cls, suite: SuiteName = DEFAULT_SUITE) -> SealingKeyPair:
        """A new random key pair for ``suite``."""
        suite = _check_suite(suite)
        dh = x25519.X25519PrivateKey.generate().private_bytes_raw()
        if suite == "X25519":
            return cls.from_private_bytes(suite, dh)
        seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
        return cls.from_private_bytes(suite, seed + dh)

    @classmethod
    def from_private_bytes(cls, suite: SuiteName, data: bytes) -> SealingKeyPair:
        """Rebuild a key pair from :meth:`private_bytes`.

        :raises SealingError: ``data`` is not a private key of ``suite``.
        """
        suite = _check_suite(suite)
        data = bytes(data)
        private: _PrivateKey
        try:
            if suite == "X25519":
                private = x25519.X25519PrivateKey.from_private_bytes(data)
                public = private.public_key().public_bytes_raw()
            else:
                if len(data) != _MLKEM_SEED_LENGTH + _X25519_LENGTH:
                    raise ValueError("wrong length")
                kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(data[:_MLKEM_SEED_LENGTH])
                dh = x25519.X25519PrivateKey.from_private_bytes(data[_MLKEM_SEED_LENGTH:])
                private = hpke.MLKEM768X25519PrivateKey(kem, dh)
                public = kem.public_key().public_bytes_raw() + dh.public_key().public_bytes_raw()
        except ValueError as exc:
            raise SealingError(f"not a {suite} private key ({len(data)} bytes)") from exc
        return cls(suite, private, data, public)

    def private_bytes(self) -> bytes:
        """The private key, to store in a key file. Never log it."""
        return self._private_bytes

    @property
    def public_bytes(self) -> bytes:
        """The public key, to publish in the directory so providers can seal to it."""
        return self._public_bytes

    def open(
        self, enc: bytes, ciphertext: bytes, *, aad: bytes, info: bytes = ATTRIBUTES_INFO
    ) -> bytes:
        """Open what :func:`seal` sealed to this key pair's public key.

        :raises SealingError: wrong key, ``info`` or ``aad``, or altered bytes.
        """
        if len(enc) != _ENC_LENGTH[self.suite]:
            raise SealingError(f"{self.suite} enc must be {_ENC_LENGTH[self.suite]} bytes")
        try:
            return _HPKE[self.suite].decrypt(
                bytes(enc) + bytes(ciphertext), self._private, info=_context_info(info, aad)
            )
        except (InvalidTag, ValueError) as exc:
            raise SealingError("sealed payload does not open with this key and context") from exc

    def __repr__(self) -> str:
        fingerprint = hashlib.sha256(self._public_bytes).hexdigest()[:16]
        return f"SealingKeyPair(suite={self.suite!r}, public_sha256={fingerprint})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a SealingKeyPair cannot be pickled; store private_bytes() in a key file")


def seal(
    suite: SuiteName,
    recipient_public_key_bytes: bytes,
    plaintext: bytes,
    *,
    aad: bytes,
    info: bytes = ATTRIBUTES_INFO,
) -> tuple[bytes, bytes]:
    """Seal ``plaintext`` to a recipient; return ``(enc, ciphertext)``.

    ``enc`` is the KEM's encapsulated key; both travel to the recipient. Each call uses a
    fresh ephemeral key, so sealing the same values twice gives different bytes.

    :param aad: binds the payload to its exchange (see :func:`exchange_aad`); the recipient
        must pass the same bytes to open it.
    :raises SealingError: the public key is not one of ``suite``.
    """
    suite = _check_suite(suite)
    public = _load_public(suite, bytes(recipient_public_key_bytes))
    try:
        sealed = _HPKE[suite].encrypt(plaintext, public, info=_context_info(info, aad))
    except ValueError as exc:  # e.g. a low-order X25519 point
        raise SealingError(f"cannot seal to this {suite} public key") from exc
    n = _ENC_LENGTH[suite]
    return sealed[:n], sealed[n:]


def open(  # shadows the builtin here only; callers write sealing.open
    suite: SuiteName,
    recipient_private_key: SealingKeyPair | bytes,
    enc: bytes,
    ciphertext: bytes,
    *,
    aad: bytes,
    info: bytes = ATTRIBUTES_INFO,
) -> bytes:
    """Open a payload sealed by :func:`seal`.

    :param recipient_private_key: the recipient's key pair, or its :meth:`private_bytes
        <SealingKeyPair.private_bytes>` (parsed on every call; keep the key pair instead).
    :raises SealingError: wrong suite, key, ``info`` or ``aad``, or altered bytes.
    """
    suite = _check_suite(suite)
    if isinstance(recipient_private_key, SealingKeyPair):
        pair = recipient_private_key
        if pair.suite != suite:
            raise SealingError(f"key pair is {pair.suite}, payload is {suite}")
    else:
        pair = SealingKeyPair.from_private_bytes(suite, recipient_private_key)
    return pair.open(enc, ciphertext, aad=aad, info=info)


def exchange_aad(*parts: str) -> bytes:
    """Unambiguous ``aad`` from the identifiers of an exchange, e.g. scenario and request id.

    Each part is UTF-8 with a 4-byte big-endian length before it, so ``("ab", "c")`` and
    ``("a", "bc")`` give different bytes.
    """
    out = bytearray()
    for part in parts:
        encoded = part.encode("utf-8")
        out += len(encoded).to_bytes(4, "big") + encoded
    return bytes(out)


def encode_attributes(attributes: Mapping[str, Any]) -> bytes:
    """Attribute values as canonical JSON (sorted keys, no spaces, UTF-8) ready to seal.

    :raises SealingError: a key is not a string, or a value is not JSON (dates must be
        turned into ISO 8601 strings first).
    """
    if not all(isinstance(key, str) for key in attributes):
        raise SealingError("attribute names must be strings")
    try:
        text = json.dumps(
            dict(attributes),
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise SealingError(f"attribute values are not JSON: {exc}") from exc
    return text.encode("utf-8")


def decode_attributes(data: bytes) -> dict[str, Any]:
    """The attribute dict from :func:`encode_attributes` bytes (after opening them).

    :raises SealingError: not UTF-8 JSON, or not a JSON object.
    """
    try:
        value = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SealingError("opened payload is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise SealingError("opened payload is not a JSON object")
    return value
