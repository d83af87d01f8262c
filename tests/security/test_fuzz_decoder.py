"""Fuzzing the decoder: whatever the bytes, a message or a typed DecodeError, and the
signature splice (schemas/wire.py) agrees with the full decode.

The seeds are every sample message and variant (``tests/samples.py``), signed. For every
input: :meth:`Codec.decode` returns a message or raises :class:`DecodeError` (or one of its
kinds), nothing else; :meth:`Codec.split_signature` likewise; and when the message decodes,
the splice finds exactly its signature and the bytes without it are what was signed, so
the hub can never verify one span and act on another. A strict prefix of a genuine
encoding never decodes.
"""

from __future__ import annotations

import random

from hypothesis import given, note

from renkei.crypto import SigningKey
from renkei.envelope import encode_signed, verify_bytes
from renkei.errors import DecodeError, SignatureError
from schemas.codec import default_codec
from schemas.models import Message
from tests.samples import sample_messages, sample_variants
from tests.security.fuzzing import BUDGET, TOTAL, entropy, fuzz_settings, hostile

CODEC = default_codec()
KEY = SigningKey.generate()
SEEDS = [encode_signed(m, KEY, CODEC) for m in sample_messages() + sample_variants()]


def test_the_budget_is_at_least_the_total() -> None:
    assert sum(BUDGET.values()) >= TOTAL


def decode(data: bytes) -> Message | None:
    try:
        return CODEC.decode(data)
    except DecodeError:
        return None


@fuzz_settings("decoder")
@given(entropy())
def test_any_bytes_decode_to_a_message_or_a_decode_error(rng: random.Random) -> None:
    data = hostile(rng, SEEDS)
    note(data.hex())
    message = decode(data)
    try:
        signed, signature = CODEC.split_signature(data)
    except DecodeError:
        assert message is None, "decoded, but its signature cannot be found"
        return
    if message is None:
        return
    assert signature == message.header.signature
    # What the splice calls signed is what the sender signed: only the genuine key
    # verifies it, and only when nothing but the signature's own bytes changed.
    if data in SEEDS:
        verify_bytes(data, KEY.public_bytes, CODEC)
    else:
        try:
            verify_bytes(data, KEY.public_bytes, CODEC)
        except SignatureError:
            pass
        else:
            assert signed in {CODEC.split_signature(s)[0] for s in SEEDS}
    assert type(message) is CODEC.message_type_of(data)
    assert CODEC.decode(CODEC.encode(message)) == message


def test_no_strict_prefix_of_a_message_decodes() -> None:
    for seed in SEEDS:
        for end in range(len(seed)):
            assert decode(seed[:end]) is None, f"{len(seed)}-byte message cut at {end} decodes"
