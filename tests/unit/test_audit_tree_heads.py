"""The hub's signed tree heads: each batch's head is the Merkle tree over exactly the chain."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from hub_stream import enrolment
from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead
from hub_stream.ids import derive_id
from hub_stream.outputs import Output
from hub_stream.state import Table
from hub_stream.treeheads import TreeHeads
from renkei.auditchain import GENESIS, TRUST_FILE, TrustedKeys, chain_hash, load_or_create_signer
from renkei.errors import SignatureError
from renkei.merkle import Frontier, MerkleTree, leaf_hash
from renkei.treehead import SignedHead, build_head, is_tree_head
from schemas.codec import default_codec
from schemas.models import AuditRecord, AuditStep
from tests.unit.hub_world import NUMBERS, World

CODEC = default_codec()


class Trail:
    """What the hub wrote to hub.audit and hub.audit.heads, batch after batch."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.audit: dict[int, list[bytes]] = {}
        self.heads: dict[int, list[bytes]] = {}
        self.batches: list[tuple[set[int], list[int]]] = []
        """Per committed batch: partitions that got records, partitions of its heads."""

    def take(self, outputs: Sequence[Output]) -> None:
        t, batch = self.world.topics, (set[int](), list[int]())
        self.batches.append(batch)
        for out in outputs:
            if out.value is None or out.partition is None:
                continue
            if out.topic == t.audit:
                self.audit.setdefault(out.partition, []).append(out.value)
                if out.value[2:10] == CODEC.fingerprint(AuditRecord):
                    batch[0].add(out.partition)
            elif out.topic == t.audit_heads:
                self.heads.setdefault(out.partition, []).append(out.value)
                batch[1].append(out.partition)

    def run(self, *records: object, commit: bool = True) -> None:
        outputs = self.world.hub.handle(records)
        if commit:
            self.world.hub.commit()
            self.take(outputs)
        else:
            self.world.hub.rollback()

    def check(self) -> int:
        """Every head against the records before it; returns the heads checked."""
        trusted = TrustedKeys.load(self.world.key_dir / TRUST_FILE)
        assert set(self.heads) <= set(self.audit)
        return sum(
            check_heads(p, values, self.heads.get(p, []), trusted)
            for p, values in self.audit.items()
        )


def check_heads(
    partition: int, values: Sequence[bytes], copies: Sequence[bytes], trusted: TrustedKeys
) -> int:
    """Check one committed hub.audit partition's tree heads; returns how many there are.

    Each head is signed by a pinned audit key, its root is the Merkle tree of the
    AuditRecords before it, its chain hash the last one's, it extends the head before it
    with its own consistency proof, no record follows the last head, and ``copies`` (that
    partition of hub.audit.heads) holds the same heads, byte for byte, in order.
    """
    tree, previous, seen = MerkleTree(), None, []
    last = GENESIS
    for value in values:
        if is_tree_head(value, CODEC):
            head = SignedHead.parse(value, CODEC)
            head.check(trusted, CODEC)
            assert head.partition == partition
            assert head.size == tree.size
            assert head.root == tree.root()
            assert head.head.chain_hash == last
            if previous is not None:
                assert head.head.previous_size == previous.size
                assert head.extends(previous)
            previous = head
            seen.append(value)
        elif value[2:10] == CODEC.fingerprint(AuditRecord):
            tree.append(leaf_hash(value))
            last = chain_hash(value)
    # In a committed log no record follows the last head (checkpoints may).
    assert previous is not None
    assert previous.size == tree.size
    assert list(copies) == seen
    return len(seen)


def test_each_batch_writes_a_head_over_exactly_the_chain(tmp_path: Path) -> None:
    world = World(tmp_path)
    trail = Trail(world)
    trail.run(*(world.registration(f"1000000000{i}", n) for i, n in enumerate(NUMBERS)))
    trail.run(*(world.enrolment("jps", n) for n in NUMBERS))
    trail.run(*(world.enrolment("city-shinagawa", n) for n in NUMBERS))
    trail.run(world.move("10000000000", "住所9"))
    assert trail.check() == sum(len(heads) for _, heads in trail.batches)
    # One head per batch and partition that got records, never one without records.
    for written, heads in trail.batches:
        assert written
        assert sorted(written) == heads
    assert world.hub.audit.checkpoints(world.clock) == []  # nothing new: no head


def test_a_failed_input_leaves_no_leaf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(tmp_path)
    trail = Trail(world)
    trail.run(world.registration("10000000000", NUMBERS[0]))
    real = enrolment.enrol

    def enrol_then_fail(*args: object, **kwargs: object) -> list[Output]:
        real(*args, **kwargs)  # type: ignore[arg-type]  # its audit records are staged
        raise RuntimeError("a defect after the audit records")

    monkeypatch.setattr(enrolment, "enrol", enrol_then_fail)
    # In one batch: a good input, the failing one, another good one.
    trail.run(world.registration("10000000001", NUMBERS[1]), world.enrolment("jps", NUMBERS[0]),
              world.registration("10000000002", NUMBERS[2]))  # fmt: skip
    assert trail.check() >= 2
    steps = [
        CODEC.decode_as(v, AuditRecord).step
        for values in trail.audit.values()
        for v in values
        if v[2:10] == CODEC.fingerprint(AuditRecord)
    ]
    assert AuditStep.ENROLLED not in steps  # the failed input's records were dropped


def test_an_aborted_batch_leaves_no_leaf(tmp_path: Path) -> None:
    world = World(tmp_path)
    trail = Trail(world)
    trail.run(world.registration("10000000000", NUMBERS[0]))
    # Two batches in flight, the first aborts: both are forgotten, the input read again.
    first = world.enrolment("jps", NUMBERS[0])
    world.hub.handle([first])
    world.hub.seal()
    world.hub.handle([world.registration("10000000001", NUMBERS[1])])
    world.hub.seal()
    world.hub.rollback()
    trail.run(first)
    assert trail.check() == 2
    assert len(trail.batches) == 2


def test_heads_are_signed_with_the_audit_key(tmp_path: Path) -> None:
    world = World(tmp_path)
    trail = Trail(world)
    trail.run(world.registration("10000000000", NUMBERS[0]))
    (partition, values), *_ = trail.heads.items()
    head = SignedHead.parse(values[0], CODEC)
    assert head.head.key_id == load_or_create_signer(world.key_dir).key_id
    forged = bytearray(values[0])
    forged[-1] ^= 1  # a flipped bit of the signed bytes
    with pytest.raises(SignatureError):
        SignedHead(head.head, bytes(forged)).check(
            TrustedKeys.load(world.key_dir / TRUST_FILE), CODEC
        )
    assert head.partition == partition


def _trail(tmp_path: Path, heads: Table[ChainHead]) -> AuditTrail:
    signer = load_or_create_signer(tmp_path)
    return AuditTrail("audit", 1, CODEC, heads, None, (),
                      TreeHeads("audit", "audit.heads", signer, CODEC))  # fmt: skip


def _record(trail: AuditTrail, n: int) -> bytes:
    out = trail.record(AuditStep.ENROLLED, cause=f"{n:032x}", actor="jps", audit_key="k" * 32)
    assert out.value is not None
    return out.value


def test_the_tree_survives_the_state_table(tmp_path: Path) -> None:
    """A restarted worker's chain head carries the tree on: the next head extends the last."""
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = _trail(tmp_path, heads)
    records = [_record(trail, n) for n in range(5)]
    first = SignedHead.parse(trail.checkpoints(1_000)[0].value or b"", CODEC)
    (row,) = heads.changes()
    assert row.value is not None
    restored: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    restored.load(b"0", row.value)
    trail = _trail(tmp_path, restored)
    records += [_record(trail, n) for n in range(5, 12)]
    second = SignedHead.parse(trail.checkpoints(2_000)[0].value or b"", CODEC)
    assert second.size == 12
    assert second.root == MerkleTree(map(leaf_hash, records)).root()
    assert second.head.previous_size == 5
    assert second.extends(first)


def test_a_chain_head_without_a_tree_gets_no_heads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = ChainHead(b"\x01" * 32, 7, 5, 123)  # written before tree heads
    assert ChainHead.from_bytes(old.to_bytes()) == old
    assert old.frontier is None
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    heads.load(b"0", old.to_bytes())
    trail = _trail(tmp_path, heads)
    _record(trail, 1)
    with caplog.at_level(logging.WARNING):
        assert trail.checkpoints(1_000) == []
    assert "no tree heads" in caplog.text
    tree = Frontier()
    for n in range(3):
        tree.append(leaf_hash(b"%d" % n))
    new = ChainHead(b"\x02" * 32, 3, 0, 0, 3, tuple(tree.nodes), 99)
    assert ChainHead.from_bytes(new.to_bytes()) == new
    assert new.frontier is not None
    assert new.frontier.root() == tree.root()


@pytest.mark.parametrize("now_ms", [1_000, 1_700_000_000_123, 1_764_633_600_999])
def test_the_hub_writes_the_bytes_build_head_makes(tmp_path: Path, now_ms: int) -> None:
    """The hub's compiled writer and libsodium make exactly renkei.treehead's head."""
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = _trail(tmp_path, heads)
    records = [_record(trail, n) for n in range(3)]
    trail.checkpoints(now_ms)
    records += [_record(trail, n) for n in range(3, 8)]
    (out, _) = trail.checkpoints(now_ms)
    tree = MerkleTree(map(leaf_hash, records))
    expected = build_head(
        load_or_create_signer(tmp_path), CODEC, partition=0, tree_size=8,
        root_hash=tree.root(), chain_hash=chain_hash(records[-1]), previous_size=3,
        consistency=tree.consistency_proof(3), now_ms=now_ms,
        message_id=derive_id("audit-tree-head", "0", "8"),
    )  # fmt: skip
    assert out.value == expected


def test_the_hubs_extension_is_the_full_trees() -> None:
    """Frontier.extend (what the hub runs per batch) gives the full tree's frontier and
    consistency proof, for every small tree and some larger ones."""
    leaves = [leaf_hash(b"%d" % i) for i in range(1100)]
    full = MerkleTree(leaves)
    sizes = [(old, added) for old in range(41) for added in range(41)]
    sizes += [(1000, 100), (1024, 1), (1023, 77), (513, 511), (7, 1000)]
    for old, added in sizes:
        frontier = Frontier()
        for leaf in leaves[:old]:
            frontier.append(leaf)
        want = Frontier()
        for leaf in leaves[: old + added]:
            want.append(leaf)
        tree, proof = frontier.extend(leaves[old : old + added])
        want_proof = full.consistency_proof(old, old + added)
        assert (tree.size, tree.nodes, proof) == (want.size, want.nodes, want_proof)
        assert frontier.size == old  # the old frontier as it was


def test_a_tree_behind_its_chain_gets_no_heads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Records the tree lacks cannot be got back in a batch: no head, a warning."""
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    heads.load(b"0", ChainHead(b"\x01" * 32, 5, 0, 0, 0, (), 0).to_bytes())
    trail = _trail(tmp_path, heads)
    _record(trail, 1)
    with caplog.at_level(logging.WARNING):
        assert trail.checkpoints(1_000) == []
    assert "no tree heads" in caplog.text
