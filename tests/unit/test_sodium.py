"""libsodium's Ed25519 gives ``cryptography``'s signatures and verdicts, and checking a
strict batch's signatures ahead in threads decides exactly what checking inline does."""

from __future__ import annotations

import os
from typing import Any

import pytest

import hub_stream.hub as hub_module
from benchmarks.profile_hub import PROVIDER, build, run
from hub_stream.preverify import PreVerifier
from renkei.crypto import SigningKey, verify
from renkei.crypto.sodium import SodiumSigningKey, sodium_accepts
from renkei.crypto.sodium import verify as sodium_verify
from renkei.envelope import verify_bytes
from renkei.errors import SignatureError
from schemas.models import ErrorCode, ForwardedRequest, HubError


@pytest.mark.parametrize("size", [0, 1, 300, 5000])
def test_libsodium_signs_what_openssl_signs(size: int) -> None:
    key = SigningKey.generate()
    fast = SodiumSigningKey.of(key)
    data = os.urandom(size)
    assert fast.sign(data) == key.sign(data)
    assert fast.public_bytes == key.public_bytes
    assert fast.to_bytes() == key.to_bytes()


def _verdict(check: object, public: bytes, data: bytes, signature: bytes) -> str:
    try:
        check(public, data, signature)  # type: ignore[operator]  # one of the two verifiers
    except SignatureError as exc:
        return f"refused: {exc}"
    return "accepted"


def test_verdicts_and_errors_are_the_reference_s() -> None:
    key = SigningKey.generate()
    other = SigningKey.generate()
    data = b"a message"
    good = key.sign(data)
    cases = [
        (key.public_bytes, data, good),
        (key.public_bytes, data + b"!", good),
        (key.public_bytes, data, good[:-1] + bytes([good[-1] ^ 1])),
        (other.public_bytes, data, good),
        (key.public_bytes, data, good[:63]),
        (key.public_bytes[:31], data, good),
        (key.public_bytes, data, b""),
    ]
    for public, message, signature in cases:
        assert _verdict(sodium_verify, public, message, signature) == _verdict(
            verify, public, message, signature
        )
    assert sodium_accepts(key.public_bytes, data, good)
    assert not sodium_accepts(other.public_bytes, data, good)


def _forwarded_and_refused(mode: str, forge: set[int], count: int) -> tuple[set[str], set[str]]:
    exchange = build(mode, count)
    hub = exchange.hub
    for i in forge:
        record = exchange.requests[i]
        flipped = bytearray(record.value)
        flipped[-9] ^= 0x01  # inside the deadline: the signature no longer covers the bytes
        record.value = bytes(flipped)
    _, _, outputs = run(hub, exchange.requests)
    forwarded: set[str] = set()
    refused: set[str] = set()
    for out in outputs:
        if out.value is None or out.value[:2] != b"\xc3\x01":
            continue
        kind = hub.codec.message_type_of(out.value)
        if kind is ForwardedRequest and out.topic == exchange.topics.agency_in(PROVIDER):
            forwarded.add(hub.codec.decode_as(out.value, ForwardedRequest).request_id)
        elif kind is HubError:
            error = hub.codec.decode_as(out.value, HubError)
            assert error.code is ErrorCode.BAD_SIGNATURE
            refused.add(error.request_id or "")
    return forwarded, refused


def test_a_forged_signature_in_a_batch_checked_ahead_is_refused_and_only_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inline: list[bytes] = []
    reference = verify_bytes

    def counted(value: bytes, *args: Any) -> None:
        inline.append(value)
        reference(value, *args)

    monkeypatch.setattr(hub_module, "verify_bytes", counted)
    forged = {0, 17, 39}  # the first record, one inside a chunk, the last
    forwarded, refused = _forwarded_and_refused("strict", forged, 40)
    assert refused == {f"r{i}" for i in forged}
    assert forwarded == {f"r{i}" for i in range(40)} - refused
    # The genuine ones were accepted ahead; only what libsodium refused was judged inline.
    assert len(inline) == len(forged)


def test_the_same_forgeries_pass_in_trust_acl_mode() -> None:
    forwarded, refused = _forwarded_and_refused("trust-acl", {0, 17}, 20)
    assert refused == set()
    assert len(forwarded) == 20


def test_small_batches_and_unknown_records_are_checked_inline() -> None:
    exchange = build("strict", 4)
    verifier = PreVerifier(exchange.hub.codec, minimum=16)
    ahead = verifier.start(exchange.requests, lambda topic: b"k" * 32)
    assert not ahead.accepted(exchange.requests[0].value, b"k" * 32)  # not checked ahead
