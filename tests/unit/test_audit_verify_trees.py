"""verify with tree heads: truncation, forks, forged appends and rewritten histories, each at
its exact partition, chain position and offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei.audit.trees import proof_ranges
from renkei.audit.verify import PartitionVerifier
from renkei.auditchain import chain_hash, load_or_create_signer
from renkei.merkle import Frontier, MerkleTree, consistency_proof, leaf_hash
from renkei.treehead import SignedHead
from schemas.models import AuditRecord
from tests.unit.treetrail import (
    CODEC,
    build_trail,
    head_bytes,
    head_offsets,
    record_offsets,
    relink,
    trusted_of,
    verify_values,
    where,
)


def test_untouched_trail_verifies_and_every_record_is_signed(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    result = verify_values(values, tmp_path)
    assert result.findings == []
    assert result.tree_heads == 6  # 23 records, a head every 4 and one for the last 3
    assert result.tree_size == 23
    assert result.unsigned_records == 0  # the hub signs every commit: no unsigned tail
    assert result.signed_through == record_offsets(values)[-1]
    assert result.chain is not None
    assert result.chain.latest is not None
    assert result.chain.tree.root(23) == result.chain.latest.root
    assert result.chain.offsets == record_offsets(values)


def test_truncated_records_under_a_head(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    records = record_offsets(values)
    last_head = head_offsets(values)[-1]
    del values[records[21] : last_head]  # positions 21 and 22 gone, their head kept
    findings = verify_values(values, tmp_path).findings
    assert where(findings) == [("truncated", records[20] + 1, 21)]
    assert "signs 23 records" in findings[0].detail


def test_a_tail_cut_with_its_heads_is_not_visible_in_the_trail_alone(tmp_path: Path) -> None:
    """What ``--against`` is for (test_audit_against): the trail itself looks whole."""
    values = build_trail(tmp_path)
    cut = head_offsets(values)[3] + 1
    assert verify_values(values[:cut], tmp_path).findings == []


def test_forged_record_appended_after_the_last_head(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    last = CODEC.decode_as(values[record_offsets(values)[-1]], AuditRecord)
    forged = last.model_copy(
        update={"prev_hash": chain_hash(values[record_offsets(values)[-1]]), "requester": "nta"}
    )
    values.append(CODEC.encode(forged))
    findings = verify_values(values, tmp_path).findings
    assert where(findings) == [("after-last-head", len(values) - 1, 23)]


def test_partition_without_any_head_in_a_trail_that_has_them(tmp_path: Path) -> None:
    trail = build_trail(tmp_path, records=3)
    values = [trail[i] for i in record_offsets(trail)]  # every head dropped
    result = verify_values(values, tmp_path, heads_expected=True)
    assert where(result.findings) == [("after-last-head", i, i) for i in range(3)]
    assert where(verify_values(values, tmp_path).findings) == []  # a trail from before heads


@pytest.mark.parametrize(
    ("at", "after_head"), [(5, False), (7, False), (7, True), (22, False), (22, True)]
)
def test_fork_names_the_branch_the_heads_do_not_cover(
    tmp_path: Path, at: int, after_head: bool
) -> None:
    """A second record at position ``at``, linked like the genuine one and standing right
    after it (or after the head that follows it: 7 and 22 end a commit)."""
    values = build_trail(tmp_path)
    records = record_offsets(values)
    genuine = CODEC.decode_as(values[records[at]], AuditRecord)
    forged = CODEC.encode(genuine.model_copy(update={"provider": "nta", "request_id": "forged"}))
    insert_at = records[at] + (2 if after_head else 1)
    assert not after_head or insert_at - 1 in head_offsets(values)
    values.insert(insert_at, forged)
    findings = verify_values(values, tmp_path).findings
    assert where(findings) == [("forked", insert_at, at)]


def test_fork_standing_before_the_genuine_record(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    records = record_offsets(values)
    genuine = CODEC.decode_as(values[records[5]], AuditRecord)
    forged = CODEC.encode(genuine.model_copy(update={"provider": "nta"}))
    values.insert(records[5], forged)  # the genuine 5 moves one offset up
    findings = verify_values(values, tmp_path).findings
    assert where(findings) == [("forked", records[5], 5)]
    assert f"offset {records[5] + 1}" in findings[0].detail


def test_a_forged_branch_of_two_records_is_forked_at_both(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    records = record_offsets(values)
    first = CODEC.decode_as(values[records[9]], AuditRecord).model_copy(update={"provider": "nta"})
    first_bytes = CODEC.encode(first)
    second = CODEC.decode_as(values[records[10]], AuditRecord).model_copy(
        update={"provider": "nta", "prev_hash": chain_hash(first_bytes)}
    )
    at = records[22] + 1
    values[at:at] = [first_bytes, CODEC.encode(second)]  # at the end, before the last head
    findings = verify_values(values, tmp_path).findings
    assert where(findings) == [("forked", at, 9), ("forked", at + 1, 10)]


def test_rewritten_history_is_a_tree_mismatch_at_the_first_changed_record(tmp_path: Path) -> None:
    values = build_trail(tmp_path, per_commit=1)  # a head per record: exact to the record
    rewritten = relink(values, 6, provider="nta")
    findings = verify_values(rewritten, tmp_path).findings
    records = record_offsets(values)
    assert where(findings) == [("tree-mismatch", records[6], 6)]
    assert "16 later head(s)" in findings[0].detail


def test_rewritten_history_narrowed_to_the_commit(tmp_path: Path) -> None:
    """Heads every 4 records: the head of 8 and its proof from 4 say only "in 4..7"."""
    values = build_trail(tmp_path)
    findings = verify_values(relink(values, 6, provider="nta"), tmp_path).findings
    assert where(findings) == [("tree-mismatch", record_offsets(values)[4], 4)]
    assert "one of positions 4..7" in findings[0].detail


def test_rewrite_in_the_second_half_of_a_big_commit_is_narrowed_by_the_proof(
    tmp_path: Path,
) -> None:
    """A commit of 12 after one of 4: the proof's nodes [4, 8) and [8, 16) tell which half."""
    values = build_trail(tmp_path, records=16, per_commit=4)
    keep = head_offsets(values)[0]
    values = [v for i, v in enumerate(values) if i <= keep or i not in head_offsets(values)]
    signer = load_or_create_signer(tmp_path)
    tail = values[keep + 1 :]
    _, head = head_bytes(signer, Frontier(4, [root_of_first(values, 4)]), tail)
    values.append(head)
    findings = verify_values(relink(values, 10, provider="nta"), tmp_path).findings
    assert where(findings) == [("tree-mismatch", record_offsets(values)[8], 8)]
    assert "one of positions 8..15" in findings[0].detail


def root_of_first(values: list[bytes], n: int) -> bytes:
    return MerkleTree(leaf_hash(values[i]) for i in record_offsets(values)[:n]).root()


def test_head_signing_a_root_the_chain_does_not_have(tmp_path: Path) -> None:
    """A head with a valid signature and the right chain hash but another root."""
    values = build_trail(tmp_path, records=8)
    signer = load_or_create_signer(tmp_path)
    records = [values[i] for i in record_offsets(values)]
    before = Frontier()
    for v in records[:4]:
        before.append(leaf_hash(v))
    _, head = head_bytes(signer, before, records[4:], root=bytes(32))
    values[head_offsets(values)[-1]] = head
    findings = verify_values(values, tmp_path).findings
    assert [f.kind for f in findings] == ["tree-mismatch"]
    assert findings[0].position is not None
    assert findings[0].position >= 4


def test_edited_record_is_reported_once_not_again_as_a_tree_mismatch(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    target = record_offsets(values)[9]
    data = bytearray(values[target])
    data[40] ^= 0x01
    values[target] = bytes(data)
    assert where(verify_values(values, tmp_path).findings) == [("edited", target, None)]


def test_removed_record_is_reported_once(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    target = record_offsets(values)[5]
    del values[target]
    assert [f.kind for f in verify_values(values, tmp_path).findings] == ["removed"]


def test_tree_head_with_a_bad_signature(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    at = head_offsets(values)[2]
    head = SignedHead.parse(values[at], CODEC).head
    signature = bytes([head.header.signature[0] ^ 1]) + head.header.signature[1:]
    header = head.header.model_copy(update={"signature": signature})
    values[at] = CODEC.encode(head.model_copy(update={"header": header}))
    assert where(verify_values(values, tmp_path).findings) == [("bad-signature", at, None)]


def test_tree_head_by_an_unknown_key(tmp_path: Path) -> None:
    values = build_trail(tmp_path / "a")
    other = build_trail(tmp_path / "b")
    at = head_offsets(values)[1]
    values[at] = other[at]
    found = where(verify_values(values, tmp_path / "a").findings)
    assert ("unknown-key", at, None) in found


def test_tree_head_of_another_partition(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    other = build_trail(tmp_path, partition=1)
    at = head_offsets(values)[1]
    values[at] = other[at]
    assert ("tree-mismatch", at, None) in where(verify_values(values, tmp_path).findings)


def test_verification_from_a_head_mid_trail(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    start = head_offsets(values)[1] + 1  # skip the first records, as --from does
    verifier = PartitionVerifier(0, trusted_of(tmp_path), CODEC, from_genesis=False)
    for offset, value in enumerate(values):
        if offset >= head_offsets(values)[1]:
            verifier.add(offset, value)
    result = verifier.finish()
    assert result.findings == []
    assert result.unsigned_records == 0
    assert result.records == len(record_offsets(values[start:]))


@pytest.mark.parametrize("new", range(2, 34))
def test_proof_ranges_name_the_nodes_of_a_consistency_proof(new: int) -> None:
    tree = MerkleTree(leaf_hash(bytes([i])) for i in range(new))
    for old in range(1, new):
        ranges = proof_ranges(old, new)
        assert [tree.subtree(a, b) for a, b in ranges] == consistency_proof(tree.subtree, old, new)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9, 33, 64, 100])
def test_bulk_built_tree_is_the_appended_tree(n: int) -> None:
    """verify builds its trees with MerkleTree.from_leaf_bytes: the same tree as append's."""
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    bulk = MerkleTree.from_leaf_bytes(b"".join(leaves))
    one_by_one = MerkleTree(leaves)
    assert bulk.size == n
    for a in range(n + 1):
        for b in range(a, n + 1):
            assert bulk.subtree(a, b) == one_by_one.subtree(a, b)
    bulk.append(leaf_hash(b"next"))  # and it grows on as a tree built by append does
    one_by_one.append(leaf_hash(b"next"))
    assert bulk.root() == one_by_one.root()
    assert bulk.inclusion_proof(n) == one_by_one.inclusion_proof(n)


def test_bulk_build_refuses_a_partial_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree.from_leaf_bytes(b"\x00" * 33)
