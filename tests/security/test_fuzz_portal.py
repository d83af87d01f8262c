"""Fuzzing the portal's reader of ``hub.audit``: hostile values among a genuine chain.

A genuine partition (six records and the checkpoint the hub signs over them, as
``tests/unit/test_portal_trail.py`` builds it) is fed to a fresh
:class:`renkei.portal.trail.TrailVerifier`, with hostile values anywhere in it: mutations
of the genuine records and checkpoint, records with one field rewritten (a fork, an edit,
a made-up link), checkpoints signed by a key nobody pinned or for another partition,
random bytes, empty values. Whatever they are: no exception; exactly the genuine records
are shown, in order, none lost; and every hostile value is accounted for, rejected,
refused as a bad checkpoint, or still waiting for a checkpoint that will never name it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given, note

from renkei.auditchain import AuditSigner, TrustedKeys
from renkei.crypto import SigningKey
from renkei.envelope import encode_signed, verify_bytes
from renkei.errors import ContractError, SignatureError
from renkei.portal import TrailVerifier
from schemas.codec import default_codec
from schemas.models import AuditCheckpoint, AuditRecord, Header
from tests.security.fuzzing import entropy, fuzz_settings, hostile, quiet, rewrite
from tests.unit.test_portal_trail import Partition

CODEC = default_codec()
SIGNER = AuditSigner(SigningKey.generate())
TRUSTED = TrustedKeys({SIGNER.key_id: SIGNER.key.public_bytes})
MALLORY = AuditSigner(SigningKey.generate())  # a key nobody pinned


def _genuine() -> tuple[list[bytes], bytes]:
    p = Partition(SIGNER)
    p.records(6)
    p.checkpoint()
    return p.values[:-1], p.values[-1]


RECORDS, CHECKPOINT = _genuine()
SHOWN = [CODEC.decode(v) for v in RECORDS]
DECODED_CHECKPOINT = CODEC.decode_as(CHECKPOINT, AuditCheckpoint)
PALETTE: list[object] = ["police", "hub", "jps", "S003", "a" * 32, b"\x00" * 32,
                         *(r.prev_hash for r in SHOWN if isinstance(r, AuditRecord))]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _quiet() -> Iterator[None]:
    with quiet("renkei.portal.trail"):
        yield


def hostile_value(rng: random.Random) -> bytes | None:
    kind = rng.randrange(8)
    if kind <= 3:
        return hostile(rng, [*RECORDS, CHECKPOINT])
    if kind <= 5:  # a schema-valid record: one field of a genuine one rewritten
        record = CODEC.decode_as(rng.choice(RECORDS), AuditRecord)
        return CODEC.encode(rewrite(rng, record, PALETTE) or record.model_copy(
            update={"header": Header.new("hub")}))  # fmt: skip
    if kind == 6:  # a checkpoint over whatever it likes, by a key nobody pinned
        forged = rewrite(rng, DECODED_CHECKPOINT, PALETTE) or DECODED_CHECKPOINT
        return encode_signed(forged.model_copy(update={"key_id": MALLORY.key_id}),
                             MALLORY.key, CODEC)  # fmt: skip
    if rng.random() < 0.5:  # the pinned key's checkpoint, for another partition
        other = DECODED_CHECKPOINT.model_copy(update={"partition": 1})
        return encode_signed(other, SIGNER.key, CODEC)
    return None


def is_genuine_checkpoint(value: bytes | None) -> bool:
    """A copy of the genuine checkpoint (a mutation that changed nothing it signs).

    Its copies can only follow it on the partition (it is signed after the records it
    covers), so one is fed after it: a copy then vouches for nothing new.
    """
    try:
        checkpoint = CODEC.decode_as(value or b"", AuditCheckpoint)
        verify_bytes(value or b"", SIGNER.key.public_bytes, CODEC)
    except (ContractError, SignatureError):
        return False
    return checkpoint == DECODED_CHECKPOINT


@fuzz_settings("portal")
@given(entropy())
def test_only_the_signed_chain_is_shown(rng: random.Random) -> None:
    values: list[bytes | None] = [*RECORDS, CHECKPOINT]
    bad = [hostile_value(rng) for _ in range(rng.randint(1, 3))]
    copies = 0
    for value in bad:
        if is_genuine_checkpoint(value):
            values.append(value)
            copies += 1
        else:
            values.insert(rng.randint(0, len(values)), value)
    note(repr([v.hex() if v else v for v in values]))
    trail = TrailVerifier(TRUSTED, CODEC)
    shown = [r for offset, value in enumerate(values) for r in trail.add(0, offset, offset, value)]
    assert shown == SHOWN
    stats = trail.stats
    assert stats.rejected + stats.bad_checkpoints + trail.waiting + copies == len(bad)
    assert (stats.undecodable, stats.gaps) == (0, 0)
