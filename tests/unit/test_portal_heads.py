"""Tree heads release records in the portal without waiting for a checkpoint — only when
signed with a pinned key, on the chain, and with the root of the records they cover —
and every record they cover has an inclusion proof against the latest head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renkei.auditchain import AuditSigner, TrustedKeys, chain_hash
from renkei.crypto import SigningKey
from renkei.merkle import Frontier, leaf_hash, verify_inclusion
from renkei.portal import PortalIndex, TrailVerifier
from renkei.treehead import build_head
from renkei.witness import AlarmKind, Witness
from tests.unit.test_portal_trail import CODEC, Partition, shown
from tests.unit.test_witness import alarms_counted


class HeadedPartition(Partition):
    """A partition the way the hub writes it since tree heads: a head after each commit."""

    def __init__(self, signer: AuditSigner, partition: int = 0) -> None:
        super().__init__(signer, partition)
        self.frontier = Frontier()
        self.leaves: list[bytes] = []  # what the frontier has taken
        self.chain: list[bytes] = []  # every genuine record's bytes, in chain order
        self.heads: list[bytes] = []

    def records(self, n: int, **fields: Any) -> None:
        before = len(self.values)
        super().records(n, **fields)
        self.chain += self.values[before:]

    def commit(self, n: int, **fields: Any) -> None:
        """``n`` records and the head over them, as the hub writes one commit."""
        self.records(n, **fields)
        self.tree_head()

    def tree_head(self, signer: AuditSigner | None = None, **changes: Any) -> bytes:
        """Sign the head over every genuine record so far; ``changes`` lie in it."""
        new = [leaf_hash(v) for v in self.chain[len(self.leaves) :]]
        previous = self.frontier.size
        self.frontier, consistency = self.frontier.extend(new)
        self.leaves += new
        fields: dict[str, Any] = {
            "partition": self.partition,
            "tree_size": self.frontier.size,
            "root_hash": self.frontier.root(),
            "chain_hash": self.head,
            "previous_size": previous,
            "consistency": consistency,
            "now_ms": 1_775_000_000_000 + len(self.values),
            "message_id": f"{self.frontier.size:032x}",
        } | changes
        head = build_head(signer or self.signer, CODEC, **fields)
        self.values.append(head)
        self.heads.append(head)
        return head


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner(SigningKey.generate())


def feed(
    signer: AuditSigner, values: list[bytes], partition: int = 0, state: Path | None = None
) -> PortalIndex:
    trusted = TrustedKeys({signer.key_id: signer.key.public_bytes})
    witness = None if state is None else Witness.load(state, trusted, CODEC)
    trail = TrailVerifier(trusted, CODEC, witness=witness)
    index = PortalIndex(trail)
    for offset, value in enumerate(values):
        for verified in trail.add_verified(partition, offset, 1_775_000_000_000 + offset, value):
            index.add_verified(verified)
    return index


def trail_of(index: PortalIndex) -> TrailVerifier:
    assert index.trail is not None
    return index.trail


def test_a_tree_head_releases_its_records_at_once_with_proofs(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.commit(3)
    p.commit(2)
    index = feed(signer, p.values)  # no checkpoint at all
    assert shown(index) == [f"{n:032x}" for n in range(5)]
    trail = trail_of(index)
    assert (trail.waiting, trail.stats.rejected, trail.stats.bad_heads) == (0, 0, 0)
    latest = trail.latest_head(0)
    assert latest is not None
    assert latest.data == p.heads[-1]
    for position, value in enumerate(p.chain):
        found = trail.proof(0, position)
        assert found is not None
        head, proof = found
        assert head is latest
        assert verify_inclusion(leaf_hash(value), position, head.size, proof, head.root)
    assert trail.proof(0, 5) is None


def test_a_forged_record_after_the_last_head_is_never_shown(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.commit(2)
    p.forge(p.head)  # links to the genuine head, after the last tree head
    index = feed(signer, p.values)
    assert len(shown(index)) == 2
    assert trail_of(index).waiting == 1  # it waits for a head that will never name it
    p.records(1)  # the hub goes on from its own head, not from the forgery
    p.tree_head()
    index = feed(signer, p.values)
    assert len(shown(index)) == 3
    assert all(r.actor != "police" for r in index.history("a" * 32))
    assert trail_of(index).stats.rejected == 1


def test_a_signed_head_with_the_wrong_root_releases_nothing(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.records(2)
    p.tree_head(root_hash=bytes(32))  # signed by the pinned key, but not the tree's root
    index = feed(signer, p.values)
    trail = trail_of(index)
    assert shown(index) == []
    assert (trail.stats.bad_heads, trail.waiting, trail.latest_head(0)) == (1, 2, None)
    p.checkpoint()  # the chain is genuine: a checkpoint still vouches for it
    index = feed(signer, p.values)
    assert len(shown(index)) == 2


def test_heads_signed_by_an_unpinned_key_or_of_another_partition_are_ignored(
    signer: AuditSigner,
) -> None:
    p = HeadedPartition(signer)
    p.records(1)
    p.tree_head(signer=AuditSigner(SigningKey.generate()))
    index = feed(signer, p.values)
    assert (shown(index), trail_of(index).stats.bad_checkpoints) == ([], 1)
    q = HeadedPartition(signer, partition=1)  # fed as partition 0
    q.commit(1)
    index = feed(signer, q.values)
    assert (shown(index), trail_of(index).stats.bad_checkpoints) == ([], 1)


def test_a_broken_head_signature_is_ignored(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.records(1)
    head = bytearray(p.tree_head())
    head[-40] ^= 1  # inside the consistency proof or root: covered by the signature
    p.values[-1] = bytes(head)
    index = feed(signer, p.values)
    assert (shown(index), trail_of(index).stats.bad_checkpoints) == ([], 1)


def test_a_checkpoint_then_a_head_of_the_same_records(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.records(2)
    p.checkpoint()  # released by the checkpoint...
    p.tree_head()  # ...and the head over the same records only adds the proofs
    index = feed(signer, p.values)
    trail = trail_of(index)
    assert len(shown(index)) == 2
    assert trail.latest_head(0) is not None
    assert trail.proof(0, 1) is not None
    p.tree_head(root_hash=bytes(32), message_id="f" * 32)  # a second head that lies
    index = feed(signer, p.values)
    assert trail_of(index).stats.witness_alarms == 1  # a split view: the same size, two roots
    latest = trail_of(index).latest_head(0)
    assert latest is not None
    assert latest.data == p.heads[0]


def test_after_an_edit_no_proofs_and_checkpoints_still_count(signer: AuditSigner) -> None:
    p = HeadedPartition(signer)
    p.commit(2)
    p.commit(2)
    p.commit(1)
    edited = CODEC.decode(p.values[3]).model_copy(update={"actor": "police"})
    p.values[3] = CODEC.encode(edited)  # chain position 2
    index = feed(signer, p.values)
    trail = trail_of(index)
    assert shown(index) == [f"{n:032x}" for n in (0, 1, 4)]
    assert trail.stats.gaps == 1
    assert trail.proof(0, 0) is None  # the tree lost positions 2 and 3: no proofs
    assert chain_hash(p.chain[-1]) == p.head


def test_a_portal_restarted_on_a_rewritten_trail_is_caught_by_its_witness(
    signer: AuditSigner, tmp_path: Path
) -> None:
    state = tmp_path / "witness.json"
    p = HeadedPartition(signer)
    p.commit(2)
    p.commit(1)
    assert len(shown(feed(signer, p.values, state=state))) == 3
    fork = HeadedPartition(signer)  # the same first two records and head, another third
    fork.values, fork.chain = p.values[:3], p.chain[:2]
    fork.head, fork.count = chain_hash(p.chain[1]), 2
    fork.leaves = [leaf_hash(v) for v in fork.chain]
    fork.frontier, _ = Frontier().extend(fork.leaves)
    fork.commit(1, actor="police")
    alone = feed(signer, fork.values)  # a portal that remembers nothing believes the fork
    assert "police" in {r.actor for r in alone.history("a" * 32)}
    index = feed(signer, fork.values, state=state)  # restarted with its witness state
    assert trail_of(index).stats.witness_alarms == 1
    assert "police" not in {r.actor for r in index.history("a" * 32)}


def test_a_portal_restarted_on_a_trail_rewritten_shorter_raises_a_rollback(
    signer: AuditSigner, tmp_path: Path
) -> None:
    state = tmp_path / "witness.json"
    p = HeadedPartition(signer)
    p.commit(2)
    first = len(p.values)
    p.commit(3)
    trail_of(feed(signer, p.values, state=state)).check_replayed()
    assert Witness.load(state, TrustedKeys({signer.key_id: signer.key.public_bytes}),
                        CODEC).latest[0].size == 5  # fmt: skip
    before = alarms_counted(AlarmKind.ROLLBACK)
    again = trail_of(feed(signer, p.values, state=state))  # the same trail: nothing to say
    again.check_replayed()
    assert again.stats.witness_alarms == 0
    shorter = trail_of(feed(signer, p.values[:first], state=state))  # the last commit gone
    assert shorter.stats.witness_alarms == 0  # every head read is one it saw grow
    shorter.check_replayed()  # ... but the replay ends before the head it kept
    assert shorter.stats.witness_alarms == 1
    assert alarms_counted(AlarmKind.ROLLBACK) == before + 1
