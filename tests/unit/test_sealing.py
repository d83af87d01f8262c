"""Sealed attribute values (HPKE): round trips, wrong key, wrong context, tampering."""

from __future__ import annotations

import base64
import json
import pickle

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from renkei.crypto import (
    ATTRIBUTES_INFO,
    SUITES,
    SealingKeyPair,
    SuiteName,
    check_public_key,
    decode_attributes,
    encode_attributes,
    exchange_aad,
    open_sealed,
    seal,
    sealing,
)
from renkei.errors import SealingError

ATTRIBUTES = {"income_2024": 4_200_000, "household": ["世帯主", "配偶者"], "氏名": "山田 太郎"}
AAD = exchange_aad("scenario-0042", "hub-req-7f3a")
SIZES = {"X25519": (32, 32, 32), "MLKEM768_X25519": (1216, 96, 1120)}


@pytest.fixture(params=SUITES)
def suite(request: pytest.FixtureRequest) -> SuiteName:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def pair(suite: SuiteName) -> SealingKeyPair:
    return SealingKeyPair.generate(suite)


def test_suites_are_the_two_documented() -> None:
    assert SUITES == ("X25519", "MLKEM768_X25519")
    assert ATTRIBUTES_INFO == b"renkei/attributes/v2"


def test_round_trip(suite: SuiteName, pair: SealingKeyPair) -> None:
    plaintext = encode_attributes(ATTRIBUTES)
    enc, ciphertext = seal(suite, pair.public_bytes, plaintext, aad=AAD)
    public_length, private_length, enc_length = SIZES[suite]
    assert (len(pair.public_bytes), len(pair.private_bytes()), len(enc)) == (
        public_length,
        private_length,
        enc_length,
    )
    assert len(ciphertext) == len(plaintext) + 16  # the GCM tag
    assert plaintext not in enc + ciphertext
    assert decode_attributes(pair.open(enc, ciphertext, aad=AAD)) == ATTRIBUTES
    assert open_sealed(suite, pair, enc, ciphertext, aad=AAD) == plaintext
    assert sealing.open(suite, pair.private_bytes(), enc, ciphertext, aad=AAD) == plaintext


def test_interoperates_with_plain_hpke(suite: SuiteName, pair: SealingKeyPair) -> None:
    # The documented binding, done by hand with the library's HPKE, opens with our code.
    hpke_suite = {
        "X25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM),
        "MLKEM768_X25519": hpke.Suite(
            hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
        ),
    }[suite]
    info = len(ATTRIBUTES_INFO).to_bytes(2, "big") + ATTRIBUTES_INFO + AAD
    enc, ciphertext = seal(suite, pair.public_bytes, b"values", aad=AAD)
    private = pair.private_bytes()
    library_key: x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
    if suite == "X25519":
        library_key = x25519.X25519PrivateKey.from_private_bytes(private)
    else:  # the documented layout: ML-KEM-768 seed ‖ X25519 private key
        library_key = hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:64]),
            x25519.X25519PrivateKey.from_private_bytes(private[64:]),
        )
    assert hpke_suite.decrypt(enc + ciphertext, library_key, info=info) == b"values"


def test_sealing_twice_gives_different_bytes(suite: SuiteName, pair: SealingKeyPair) -> None:
    first = seal(suite, pair.public_bytes, b"same", aad=AAD)
    second = seal(suite, pair.public_bytes, b"same", aad=AAD)
    assert first[0] != second[0]
    assert first[1] != second[1]


def test_private_key_round_trips(suite: SuiteName, pair: SealingKeyPair) -> None:
    restored = SealingKeyPair.from_private_bytes(suite, pair.private_bytes())
    assert restored.public_bytes == pair.public_bytes
    enc, ciphertext = seal(suite, pair.public_bytes, b"x", aad=AAD)
    assert restored.open(enc, ciphertext, aad=AAD) == b"x"


def test_wrong_key_fails(suite: SuiteName, pair: SealingKeyPair) -> None:
    enc, ciphertext = seal(suite, pair.public_bytes, b"secret", aad=AAD)
    with pytest.raises(SealingError, match="does not open"):
        SealingKeyPair.generate(suite).open(enc, ciphertext, aad=AAD)


@pytest.mark.parametrize(
    "aad",
    [
        b"",
        exchange_aad("scenario-0042", "hub-req-7f3b"),
        exchange_aad("scenario-0043", "hub-req-7f3a"),
        exchange_aad("scenario-0042"),
        AAD + b"\x00",
    ],
)
def test_wrong_aad_fails(suite: SuiteName, pair: SealingKeyPair, aad: bytes) -> None:
    enc, ciphertext = seal(suite, pair.public_bytes, b"secret", aad=AAD)
    with pytest.raises(SealingError):
        pair.open(enc, ciphertext, aad=aad)


def test_wrong_info_fails(suite: SuiteName, pair: SealingKeyPair) -> None:
    enc, ciphertext = seal(suite, pair.public_bytes, b"secret", aad=AAD)
    with pytest.raises(SealingError):
        pair.open(enc, ciphertext, aad=AAD, info=b"renkei/v1/other")
    # Moving bytes between info and aad changes the context too.
    enc, ciphertext = seal(suite, pair.public_bytes, b"secret", aad=b"xy", info=b"label")
    with pytest.raises(SealingError):
        pair.open(enc, ciphertext, aad=b"y", info=b"labelx")


def test_every_tampered_byte_fails(suite: SuiteName, pair: SealingKeyPair) -> None:
    enc, ciphertext = seal(suite, pair.public_bytes, b"a short value", aad=AAD)
    for i in range(len(ciphertext)):
        bad = bytearray(ciphertext)
        bad[i] ^= 0x01
        with pytest.raises(SealingError):
            pair.open(enc, bytes(bad), aad=AAD)
    positions = range(len(enc)) if suite == "X25519" else range(0, len(enc), 37)
    for i in positions:
        bad = bytearray(enc)
        bad[i] ^= 0x01
        with pytest.raises(SealingError):
            pair.open(bytes(bad), ciphertext, aad=AAD)


def test_truncated_payloads_fail(suite: SuiteName, pair: SealingKeyPair) -> None:
    enc, ciphertext = seal(suite, pair.public_bytes, b"value", aad=AAD)
    with pytest.raises(SealingError):
        pair.open(enc[:-1], ciphertext, aad=AAD)
    with pytest.raises(SealingError):
        pair.open(enc, ciphertext[:-1], aad=AAD)
    with pytest.raises(SealingError):
        pair.open(enc, b"", aad=AAD)


def test_suite_mismatch_fails() -> None:
    classic = SealingKeyPair.generate("X25519")
    hybrid = SealingKeyPair.generate("MLKEM768_X25519")
    with pytest.raises(SealingError, match="not a MLKEM768_X25519 public key"):
        seal("MLKEM768_X25519", classic.public_bytes, b"x", aad=AAD)
    with pytest.raises(SealingError, match="not a X25519 public key"):
        seal("X25519", hybrid.public_bytes, b"x", aad=AAD)
    enc, ciphertext = seal("X25519", classic.public_bytes, b"x", aad=AAD)
    with pytest.raises(SealingError, match="key pair is MLKEM768_X25519"):
        open_sealed("X25519", hybrid, enc, ciphertext, aad=AAD)
    with pytest.raises(SealingError, match="unknown sealing suite"):
        seal("P256", classic.public_bytes, b"x", aad=AAD)  # type: ignore[arg-type]


def test_bad_key_bytes_fail(suite: SuiteName) -> None:
    public_length, private_length, _ = SIZES[suite]
    low_order = bytes(public_length)  # all zero: for X25519 a low-order point
    for bad in (b"", bytes(public_length - 1), b"\xff" * (public_length + 1), low_order):
        with pytest.raises(SealingError):
            check_public_key(suite, bad)
    check_public_key(suite, SealingKeyPair.generate(suite).public_bytes)
    for bad in (b"", bytes(private_length - 1), bytes(private_length + 1)):
        with pytest.raises(SealingError, match="private key"):
            SealingKeyPair.from_private_bytes(suite, bad)


def test_a_low_order_x25519_key_is_refused() -> None:
    with pytest.raises(SealingError):
        seal("X25519", bytes(32), b"x", aad=AAD)


def test_repr_hides_the_private_key(pair: SealingKeyPair) -> None:
    private = pair.private_bytes()
    for text in (repr(pair), str(pair)):
        assert pair.suite in text
        for spelling in (private.hex(), base64.b64encode(private).decode(), repr(private)[2:-1]):
            assert spelling not in text
        assert private[:8].hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(pair)


def test_key_pair_matches_the_library_key() -> None:
    pair = SealingKeyPair.generate("X25519")
    library = x25519.X25519PrivateKey.from_private_bytes(pair.private_bytes())
    assert library.public_key().public_bytes_raw() == pair.public_bytes


# -- attributes ---------------------------------------------------------------------------


def test_attributes_are_canonical_json() -> None:
    encoded = encode_attributes({"b": 1, "a": "住所", "c": {"z": None, "y": True}})
    assert encoded == '{"a":"住所","b":1,"c":{"y":true,"z":null}}'.encode()
    assert encode_attributes({"a": "住所", "b": 1}) == encode_attributes({"b": 1, "a": "住所"})
    assert decode_attributes(encoded) == json.loads(encoded)


@pytest.mark.parametrize(
    "attributes", [{"when": object()}, {"x": float("nan")}, {1: "not a string key"}]
)
def test_unencodable_attributes_fail(attributes: dict[object, object]) -> None:
    with pytest.raises(SealingError):
        encode_attributes(attributes)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"\xff\xfe", b"{", b"[1, 2]", b'"text"', b"null"])
def test_undecodable_attributes_fail(data: bytes) -> None:
    with pytest.raises(SealingError):
        decode_attributes(data)


def test_exchange_aad_is_unambiguous() -> None:
    assert exchange_aad("ab", "c") != exchange_aad("a", "bc")
    assert exchange_aad("a", "") != exchange_aad("a")
    assert exchange_aad("制度", "x") == b"\x00\x00\x00\x06" + "制度".encode() + b"\x00\x00\x00\x01x"
