"""Ed25519 message signatures."""

from __future__ import annotations

import base64
import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from renkei.crypto import SigningKey, verify
from renkei.errors import CryptoError, SignatureError

MESSAGE = b"\xc3\x01" + bytes(8) + "AttributeRequest 住所".encode()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def test_round_trip(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    assert len(signature) == 64
    assert len(key.public_bytes) == 32
    verify(key.public_bytes, MESSAGE, signature)


def test_signatures_are_rfc8032_ed25519(key: SigningKey) -> None:
    library = ed25519.Ed25519PublicKey.from_public_bytes(key.public_bytes)
    library.verify(key.sign(MESSAGE), MESSAGE)


def test_key_round_trips_through_bytes(key: SigningKey) -> None:
    restored = SigningKey.from_bytes(key.to_bytes())
    assert restored.public_bytes == key.public_bytes
    assert restored.sign(MESSAGE) == key.sign(MESSAGE)  # Ed25519 is deterministic


def test_every_tampered_data_byte_fails(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    for i in range(len(MESSAGE)):
        bad = bytearray(MESSAGE)
        bad[i] ^= 0x01
        with pytest.raises(SignatureError):
            verify(key.public_bytes, bytes(bad), signature)
    for bad_data in (b"", MESSAGE[:-1], MESSAGE + b"\x00"):
        with pytest.raises(SignatureError):
            verify(key.public_bytes, bad_data, signature)


def test_every_tampered_signature_byte_fails(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    for i in range(len(signature)):
        bad = bytearray(signature)
        bad[i] ^= 0x80
        with pytest.raises(SignatureError):
            verify(key.public_bytes, MESSAGE, bytes(bad))
    for bad_signature in (b"", signature[:-1], signature + b"\x00", bytes(64)):
        with pytest.raises(SignatureError):
            verify(key.public_bytes, MESSAGE, bad_signature)


def test_another_key_fails(key: SigningKey) -> None:
    with pytest.raises(SignatureError):
        verify(SigningKey.generate().public_bytes, MESSAGE, key.sign(MESSAGE))


def test_malformed_keys_fail(key: SigningKey) -> None:
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(SignatureError, match="not an Ed25519 public key"):
            verify(bad, MESSAGE, key.sign(MESSAGE))
        with pytest.raises(CryptoError, match="not an Ed25519 private key"):
            SigningKey.from_bytes(bad)


def test_repr_hides_the_private_key(key: SigningKey) -> None:
    private = key.to_bytes()
    for text in (repr(key), str(key), f"{[key]}"):
        assert "SigningKey(public_sha256=" in text
        for spelling in (private.hex(), base64.b64encode(private).decode(), repr(private)[2:-1]):
            assert spelling not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
