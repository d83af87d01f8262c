"""Link codes: format, determinism, unlinkability, forgery, rotation; ID codes; audit keys."""

from __future__ import annotations

import base64
import os
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from renkei.crypto import (
    LINK_CODE_LENGTH,
    KeyRing,
    LinkCodes,
    MasterSecret,
    _base32,
    audit_key,
    new_id_code,
)
from renkei.errors import ExpiredLinkCodeError, InvalidLinkCodeError

MASTER_BYTES = bytes(range(100, 132))
NOW = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
PERSON = bytes.fromhex("00112233445566778899aabbccddeeff")
CODE_SHAPE = re.compile(r"[a-z2-7]{53}")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(MasterSecret(MASTER_BYTES))


@pytest.fixture
def codes(ring: KeyRing) -> LinkCodes:
    return LinkCodes(ring)


def to_raw(code: str) -> bytes:
    return base64.b32decode(code.upper() + "===")


def to_text(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


# -- format -------------------------------------------------------------------------------


def test_code_format_byte_by_byte(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    assert CODE_SHAPE.fullmatch(code)
    assert len(code) == LINK_CODE_LENGTH == 53
    raw = to_raw(code)
    assert len(raw) == 33
    assert raw[0] == 1 == codes.version_of(code)
    # An independent implementation of the documented format opens it.
    key = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"renkei/v1/link-code/nta/1"
    ).derive(MASTER_BYTES)
    assert AESSIV(key).decrypt(raw[1:], [b"nta"]) == PERSON
    assert to_text(b"\x01" + AESSIV(key).encrypt(PERSON, [b"nta"])) == code


def test_codes_are_deterministic(ring: KeyRing) -> None:
    first = LinkCodes(ring).mint("nta", PERSON)
    again = LinkCodes(KeyRing(MasterSecret(MASTER_BYTES))).mint("nta", PERSON)
    assert first == again == LinkCodes(ring).mint("nta", bytes(PERSON))


def test_round_trip(codes: LinkCodes) -> None:
    for _ in range(200):
        person = os.urandom(16)
        assert codes.open("nta", codes.mint("nta", person), NOW) == person


def test_distinct_persons_get_distinct_codes(codes: LinkCodes) -> None:
    persons = {os.urandom(16) for _ in range(2000)}
    assert len({codes.mint("nta", p) for p in persons}) == len(persons)


def test_agencies_get_unlinkable_codes_for_one_person(codes: LinkCodes) -> None:
    at_a = codes.mint("nta", PERSON)
    at_b = codes.mint("mhlw", PERSON)
    assert at_a != at_b
    # Nothing but the version byte is shared: the bodies look independent.
    body_a, body_b = to_raw(at_a)[1:], to_raw(at_b)[1:]
    differing_bits = sum(bin(x ^ y).count("1") for x, y in zip(body_a, body_b, strict=True))
    assert 80 < differing_bits < 176  # 256 bits, ~128 expected; 6 sigma bounds
    # A's code opens nothing at B, so a leak of A's codes is useless to B's records.
    with pytest.raises(InvalidLinkCodeError):
        codes.open("mhlw", at_a, NOW)


def test_mint_needs_a_16_byte_id_code(codes: LinkCodes) -> None:
    for bad in (b"", bytes(15), bytes(17)):
        with pytest.raises(ValueError, match="16 bytes"):
            codes.mint("nta", bad)


def test_open_needs_an_aware_time(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    with pytest.raises(ValueError, match="timezone-aware"):
        codes.open("nta", code, datetime(2025, 1, 1))


# -- forgery ------------------------------------------------------------------------------


def test_another_agencys_code_fails_authentication(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    for agency in ("mhlw", "city-13101", "NTA", "nta-"):
        with pytest.raises(InvalidLinkCodeError, match="does not authenticate"):
            codes.open(agency, code, NOW)


def test_every_single_bit_flip_fails(codes: LinkCodes) -> None:
    raw = to_raw(codes.mint("nta", PERSON))
    for bit in range(len(raw) * 8):
        forged = bytearray(raw)
        forged[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(InvalidLinkCodeError):
            codes.open("nta", to_text(bytes(forged)), NOW)


def test_every_character_substitution_fails(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    for i, char in enumerate(code):
        for other in "a7" if char not in "a7" else "b6":
            with pytest.raises(InvalidLinkCodeError):
                codes.open("nta", code[:i] + other + code[i + 1 :], NOW)


def test_random_codes_fail(codes: LinkCodes) -> None:
    rng = random.Random(20250401)
    for _ in range(2000):
        forged = b"\x01" + rng.randbytes(32)
        with pytest.raises(InvalidLinkCodeError, match="does not authenticate"):
            codes.open("nta", to_text(forged), NOW)


def test_truncated_and_extended_codes_fail(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    for length in range(len(code)):
        with pytest.raises(InvalidLinkCodeError, match="not a link code"):
            codes.open("nta", code[:length], NOW)
    for extra in ("a", "=", "===", " ", "\n"):
        with pytest.raises(InvalidLinkCodeError, match="not a link code"):
            codes.open("nta", code + extra, NOW)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "0" * 53,
        "1" * 53,
        "8" * 53,
        "=" * 53,
        "ａ" * 53,  # full-width letters
        "a" * 52 + "é",
        "null",
        "a" * 10_000,
    ],
)
def test_garbage_fails(codes: LinkCodes, garbage: str) -> None:
    with pytest.raises(InvalidLinkCodeError):
        codes.open("nta", garbage, NOW)
    with pytest.raises(InvalidLinkCodeError):
        codes.version_of(garbage)


def test_non_string_fails(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    for value in (code.encode(), None, 42, to_raw(code)):
        with pytest.raises(InvalidLinkCodeError):
            codes.open("nta", value, NOW)  # type: ignore[arg-type]


def test_each_code_has_one_spelling(codes: LinkCodes) -> None:
    code = codes.mint("nta", PERSON)
    with pytest.raises(InvalidLinkCodeError):
        codes.open("nta", code.upper(), NOW)
    # The 53rd character carries one unused bit; setting it is a second spelling.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    odd = alphabet[alphabet.index(code[-1]) | 1]
    with pytest.raises(InvalidLinkCodeError):
        codes.open("nta", code[:-1] + odd, NOW)


def test_unknown_versions_are_invalid_not_expired(codes: LinkCodes) -> None:
    raw = to_raw(codes.mint("nta", PERSON))
    for version in (0, 2, 255):
        with pytest.raises(InvalidLinkCodeError, match="never issued key version"):
            codes.open("nta", to_text(bytes([version]) + raw[1:]), NOW)


# -- rotation -----------------------------------------------------------------------------


def test_rotation_keeps_old_codes_during_grace_then_expires_them(
    ring: KeyRing, codes: LinkCodes
) -> None:
    old = codes.mint("nta", PERSON)
    assert ring.rotate("nta", timedelta(days=30), NOW) == 2
    new = codes.mint("nta", PERSON)
    assert new != old
    assert codes.version_of(new) == 2
    assert codes.version_of(old) == 1

    during = NOW + timedelta(days=29, hours=23)
    assert codes.open("nta", old, during) == PERSON
    assert codes.open("nta", new, during) == PERSON
    assert codes.translate("nta", old, "nta", during) == new  # reissue

    after = NOW + timedelta(days=30)
    with pytest.raises(ExpiredLinkCodeError, match="version 1 is retired"):
        codes.open("nta", old, after)
    assert codes.open("nta", new, after) == PERSON


def test_a_forged_code_of_a_retired_version_is_invalid_not_expired(
    ring: KeyRing, codes: LinkCodes
) -> None:
    old = to_raw(codes.mint("nta", PERSON))
    ring.rotate("nta", timedelta(0), NOW)
    forged = bytearray(old)
    forged[-1] ^= 1
    with pytest.raises(InvalidLinkCodeError):
        codes.open("nta", to_text(bytes(forged)), NOW)
    with pytest.raises(ExpiredLinkCodeError):
        codes.open("nta", to_text(old), NOW)


def test_rotating_one_agency_leaves_the_others_alone(ring: KeyRing, codes: LinkCodes) -> None:
    persons = [os.urandom(16) for _ in range(50)]
    before = {a: [codes.mint(a, p) for p in persons] for a in ("mhlw", "city-13101")}
    ring.rotate("nta", timedelta(0), NOW)
    ring.rotate("nta", timedelta(0), NOW)
    later = NOW + timedelta(days=365)
    for agency, minted in before.items():
        assert [codes.mint(agency, p) for p in persons] == minted
        assert [codes.open(agency, c, later) for c in minted] == persons


def test_translation_needs_no_table(ring: KeyRing, codes: LinkCodes) -> None:
    at_a = codes.mint("nta", PERSON)
    at_b = codes.translate("nta", at_a, "mhlw", NOW)
    assert at_b == codes.mint("mhlw", PERSON)
    assert codes.translate("mhlw", at_b, "nta", NOW) == at_a
    # A fresh LinkCodes over another key ring with the same master translates the same way.
    again = LinkCodes(KeyRing(MasterSecret(MASTER_BYTES)))
    assert again.translate("nta", at_a, "mhlw", NOW) == at_b


def test_translation_refuses_a_foreign_code(codes: LinkCodes) -> None:
    at_b = codes.mint("mhlw", PERSON)
    with pytest.raises(InvalidLinkCodeError):
        codes.translate("nta", at_b, "mhlw", NOW)


def test_translation_mints_under_the_target_current_version(
    ring: KeyRing, codes: LinkCodes
) -> None:
    at_a = codes.mint("nta", PERSON)
    ring.rotate("mhlw", timedelta(days=1), NOW)
    assert codes.version_of(codes.translate("nta", at_a, "mhlw", NOW)) == 2


# -- ID codes and audit keys --------------------------------------------------------------


def test_id_codes_are_reproducible_and_secret_dependent(ring: KeyRing) -> None:
    first = new_id_code(ring, "registry-event-0001")
    assert len(first) == 16
    assert new_id_code(KeyRing(MasterSecret(MASTER_BYTES)), "registry-event-0001") == first
    assert new_id_code(ring, "registry-event-0002") != first
    assert new_id_code(KeyRing(MasterSecret(bytes(32))), "registry-event-0001") != first
    with pytest.raises(ValueError, match="registration event id"):
        new_id_code(ring, "")


def test_id_codes_do_not_collide(ring: KeyRing) -> None:
    assert len({new_id_code(ring, f"ev-{i}") for i in range(20_000)}) == 20_000


def test_audit_keys(ring: KeyRing) -> None:
    key = audit_key(ring, PERSON)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert audit_key(KeyRing(MasterSecret(MASTER_BYTES)), PERSON) == key
    assert audit_key(ring, bytes(16)) != key
    assert audit_key(KeyRing(MasterSecret(bytes(32))), PERSON) != key
    assert PERSON.hex() not in key
    with pytest.raises(ValueError, match="16 bytes"):
        audit_key(ring, bytes(8))


# -- the codec ----------------------------------------------------------------------------


def test_codec_matches_the_standard_library() -> None:
    rng = random.Random(7)
    samples = [bytes(33), b"\xff" * 33, *(rng.randbytes(33) for _ in range(5000))]
    for raw in samples:
        text = _base32.encode(raw)
        assert text == to_text(raw)
        assert _base32.decode(text) == raw
    with pytest.raises(ValueError, match="33 bytes"):
        _base32.encode(bytes(32))
