"""The portal believes only what a pinned checkpoint key vouches for: forgeries, forks,
garbage, edits and unsigned tails on a synthetic partition, and what /healthz says."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from renkei.auditchain import GENESIS, AuditSigner, TrustedKeys, chain_hash
from renkei.crypto import SigningKey
from renkei.envelope import sign_message
from renkei.portal import PortalIndex, TrailVerifier
from schemas.codec import default_codec
from schemas.models import AuditCheckpoint, AuditRecord, AuditStep, Header

CODEC = default_codec()
ALICE = "a" * 32


def audit_record(prev: bytes, n: int, audit_key: str = ALICE, **fields: Any) -> bytes:
    record = AuditRecord(
        header=Header.new("hub"),
        audit_key=audit_key,
        step=AuditStep.FORWARDED,
        actor=fields.pop("actor", "city-shinagawa"),
        requester="city-shinagawa",
        provider="jps",
        scenario_id="S003",
        items=("pension.benefit_status",),
        hub_request_id=f"{n:032x}",
        occurred_at=datetime(2026, 4, 1, 1, 2, tzinfo=UTC),
        prev_hash=prev,
        **fields,
    )
    return CODEC.encode(record)


class Partition:
    """One partition as the hub writes it, with a pen for the forger."""

    def __init__(self, signer: AuditSigner, partition: int = 0) -> None:
        self.signer = signer
        self.partition = partition
        self.values: list[bytes] = []
        self.head = GENESIS
        self.count = 0
        self.signed = 0

    def records(self, n: int, **fields: Any) -> None:
        for _ in range(n):
            value = audit_record(self.head, self.count, **fields)
            self.values.append(value)
            self.head = chain_hash(value)
            self.count += 1

    def checkpoint(self, signer: AuditSigner | None = None, **changes: Any) -> None:
        signer = signer or self.signer
        checkpoint = AuditCheckpoint(
            header=Header.new("hub"),
            partition=self.partition,
            first_offset=self.signed,
            last_offset=self.count - 1,
            record_count=self.count - self.signed,
            chain_hash=self.head,
            key_id=signer.key_id,
        ).model_copy(update=changes)
        self.values.append(CODEC.encode(sign_message(checkpoint, signer.key, CODEC)))
        self.signed = self.count

    def forge(self, prev: bytes, n: int = 999) -> None:
        """A record anyone who can read the trail can write: it names the current head."""
        self.values.append(audit_record(prev, n, actor="police"))


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner(SigningKey.generate())


def feed(signer: AuditSigner, values: list[bytes]) -> PortalIndex:
    index = PortalIndex(TrailVerifier(TrustedKeys({signer.key_id: signer.key.public_bytes}), CODEC))
    assert index.trail is not None
    for offset, value in enumerate(values):
        for record in index.trail.add(0, offset, 1_775_000_000_000 + offset, value):
            index.add(record)
    return index


def shown(index: PortalIndex) -> list[str | None]:
    return [r.hub_request_id for r in reversed(index.history(ALICE))]


def test_records_wait_for_their_checkpoint(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(3)
    p.checkpoint()
    p.records(2)  # the unsigned tail
    index = feed(signer, p.values)
    assert shown(index) == [f"{n:032x}" for n in range(3)]
    assert index.trail is not None
    assert index.trail.waiting == 2
    p.checkpoint()
    index = feed(signer, p.values)
    assert len(shown(index)) == 5
    assert index.trail is not None
    assert (index.trail.waiting, index.trail.stats.rejected) == (0, 0)


def test_a_forged_record_naming_the_head_is_never_shown(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(2)
    p.forge(p.head)  # a fork: it links to the genuine last record
    p.records(2)
    p.checkpoint()
    index = feed(signer, p.values)
    assert index.trail is not None
    assert len(shown(index)) == 4
    assert all(r.actor != "police" for r in index.history(ALICE))
    assert index.trail.stats.rejected == 1


def test_a_forged_record_after_the_last_checkpoint_is_never_shown(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(2)
    p.checkpoint()
    p.forge(p.head)
    index = feed(signer, p.values)
    assert all(r.actor != "police" for r in index.history(ALICE))  # not while it waits...
    p.records(1)
    p.checkpoint()
    index = feed(signer, p.values)
    assert all(r.actor != "police" for r in index.history(ALICE))  # ...nor after
    assert len(shown(index)) == 3


def test_forged_checkpoints_vouch_for_nothing(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(1)
    p.forge(p.head)
    mallory = AuditSigner(SigningKey.generate())  # not pinned
    p.checkpoint(signer=mallory, chain_hash=chain_hash(p.values[-1]), last_offset=1)
    index = feed(signer, p.values)
    assert index.trail is not None
    assert shown(index) == []
    assert index.trail.stats.bad_checkpoints == 1


def test_a_checkpoint_with_a_broken_signature_is_ignored(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(2)
    p.checkpoint()
    value = bytearray(p.values[-1])
    value[-1] ^= 1  # the signature's last byte
    p.values[-1] = bytes(value)
    index = feed(signer, p.values)
    assert index.trail is not None
    assert shown(index) == []
    assert index.trail.stats.bad_checkpoints == 1


def test_garbage_and_copies_are_skipped_and_indexing_goes_on(
    signer: AuditSigner, caplog: pytest.LogCaptureFixture
) -> None:
    p = Partition(signer)
    p.records(1)
    p.values.append(b"\xc3\x01 not a record at all")
    p.values.append(p.values[0])  # a replayed copy
    p.records(1)
    p.checkpoint()
    with caplog.at_level(logging.WARNING, logger="renkei.portal.trail"):
        index = feed(signer, p.values)
    assert index.trail is not None
    assert len(shown(index)) == 2
    assert index.trail.stats.rejected == 2
    assert [r.getMessage() for r in caplog.records] == [
        "hub.audit 0:1 not shown: its prev_hash names no record of the chain",
        "hub.audit 0:2 not shown: a copy of a record already read",
    ]


def test_a_verified_record_that_does_not_decode_is_skipped(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(1)
    # What a newer schema's record looks like to this codec: unknown fingerprint, and
    # prev_hash still its last field.
    unknown = b"\xc3\x01" + bytes(8) + b"new fields" + b"\x40" + p.head
    p.values.append(unknown)
    p.head, p.count = chain_hash(unknown), p.count + 1
    p.records(1)
    p.checkpoint()
    index = feed(signer, p.values)
    assert index.trail is not None
    assert len(shown(index)) == 2
    assert index.trail.stats.undecodable == 1
    assert index.trail.stats.rejected == 0


def test_after_an_edit_the_portal_continues_from_the_next_checkpoint(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(2)
    p.checkpoint()
    p.records(2)
    p.checkpoint()
    p.records(1)
    p.checkpoint()
    edited = CODEC.decode_as(p.values[3], AuditRecord).model_copy(update={"actor": "police"})
    p.values[3] = CODEC.encode(edited)  # position 2, between the first two checkpoints
    index = feed(signer, p.values)
    assert index.trail is not None
    assert shown(index) == [f"{n:032x}" for n in (0, 1, 4)]
    assert index.trail.stats.gaps == 1


def test_health_tells_the_truth(signer: AuditSigner) -> None:
    p = Partition(signer)
    p.records(2)
    p.checkpoint()
    p.records(1)
    index = feed(signer, p.values)
    replaying = index.health(now=1_775_000_000)
    assert (replaying["status"], replaying["caught_up"]) == ("replaying", False)
    index.caught_up.set()
    index.lag = 0
    fresh = index.health(stale_after_s=300, now=1_775_000_010)
    assert (fresh["status"], fresh["caught_up"], fresh["unverified"]) == ("ok", True, 1)
    stuck = index.health(stale_after_s=300, now=1_775_000_400)
    assert (stuck["status"], stuck["caught_up"]) == ("stuck", False)
    index.lag = 5
    p.checkpoint()
    index = feed(signer, p.values)
    index.caught_up.set()
    index.lag = 5
    assert index.health(now=1_775_000_400)["status"] == "behind"


def test_checkpoints_of_other_partitions_do_not_count(signer: AuditSigner) -> None:
    p = Partition(signer, partition=1)  # fed as partition 0
    p.records(1)
    p.checkpoint()
    index = feed(signer, p.values)
    assert index.trail is not None
    assert shown(index) == []
    assert index.trail.stats.bad_checkpoints == 1
