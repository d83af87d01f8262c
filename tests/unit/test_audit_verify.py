"""verify's judgement on synthetic partitions: each kind of tampering found at its offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead, Checkpointer
from hub_stream.state import Table
from renkei.audit.verify import Finding, PartitionVerifier
from renkei.auditchain import GENESIS, TrustedKeys, chain_hash, load_or_create_signer
from schemas.codec import Codec, default_codec
from schemas.models import AuditCheckpoint, AuditRecord, AuditStep

CODEC = default_codec()


def build_partition(tmp_path: Path, records: int = 23, every: int = 5) -> list[bytes]:
    """One partition's values as the hub writes them: records, a checkpoint every ``every``."""
    signer = load_or_create_signer(tmp_path)
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail(
        "audit", 1, CODEC, heads, Checkpointer("audit", 1, signer, CODEC, every, 10**9)
    )
    values: list[bytes] = []
    for n in range(records):
        out = trail.record(
            AuditStep.FORWARDED, cause=f"{n:032x}", actor="city-shinagawa",
            audit_key="a" * 32, requester="city-shinagawa", provider="jps",
            scenario_id="S003", items=("pension.benefit_status",), request_id=f"r{n}",
        )  # fmt: skip
        assert out.value is not None
        values.append(out.value)
        values += [c.value for c in trail.checkpoints(1_000 + n) if c.value is not None]
        heads.commit()
    return values


def judge(values: list[bytes], tmp_path: Path, codec: Codec = CODEC) -> list[Finding]:
    trust = tmp_path / "audit-trust.json"
    trusted = TrustedKeys.load(trust) if trust.exists() else TrustedKeys({})
    verifier = PartitionVerifier(0, trusted, codec)
    for offset, value in enumerate(values):
        verifier.add(offset, value)
    return verifier.finish().findings


def kinds(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.kind, f.offset) for f in findings]


def is_checkpoint(value: bytes) -> bool:
    return value[2:10] == CODEC.fingerprint(AuditCheckpoint)


def record_offsets(values: list[bytes]) -> list[int]:
    return [i for i, v in enumerate(values) if not is_checkpoint(v)]


def test_untouched_partition_verifies(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    verifier = PartitionVerifier(0, TrustedKeys.load(tmp_path / "audit-trust.json"), CODEC)
    for offset, value in enumerate(values):
        verifier.add(offset, value)
    result = verifier.finish()
    assert result.findings == []
    assert result.checkpoints == 4
    assert result.unsigned_records == 3  # 23 records, signed every 5
    first = CODEC.decode(values[0])
    assert isinstance(first, AuditRecord)
    assert first.prev_hash == GENESIS
    second = CODEC.decode(values[1])
    assert isinstance(second, AuditRecord)
    assert second.prev_hash == chain_hash(values[0])


def test_checkpoints_count_chain_positions(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    checkpoints = [CODEC.decode_as(v, AuditCheckpoint) for v in values if is_checkpoint(v)]
    assert [(c.first_offset, c.last_offset, c.record_count) for c in checkpoints] == [
        (0, 4, 5), (5, 9, 5), (10, 14, 5), (15, 19, 5),
    ]  # fmt: skip
    records = [v for v in values if not is_checkpoint(v)]
    assert checkpoints[0].chain_hash == chain_hash(records[4])


@pytest.mark.parametrize("at", [0, 3, 7, 11])
def test_edited_record_found_at_its_offset(tmp_path: Path, at: int) -> None:
    values = build_partition(tmp_path)
    target = record_offsets(values)[at]
    data = bytearray(values[target])
    data[40] ^= 0x01  # inside the header's message id: still decodes
    values[target] = bytes(data)
    assert kinds(judge(values, tmp_path)) == [("edited", target)]


def test_edit_of_prev_hash_is_an_edit(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    target = record_offsets(values)[8]
    data = bytearray(values[target])
    data[-1] ^= 0xFF
    values[target] = bytes(data)
    assert kinds(judge(values, tmp_path)) == [("edited", target)]


def test_edit_that_breaks_decoding(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    target = record_offsets(values)[6]
    values[target] = values[target][:20] + b"\xff\xff\xff" + values[target][23:]
    findings = judge(values, tmp_path)
    assert kinds(findings) == [("edited", target)]


@pytest.mark.parametrize("at", [0, 5, 12])
def test_removed_record_found_between_neighbours(tmp_path: Path, at: int) -> None:
    values = build_partition(tmp_path)
    target = record_offsets(values)[at]
    del values[target]
    findings = judge(values, tmp_path)
    assert kinds(findings) == [("removed", target)]  # the record now at its offset follows the gap
    assert "1 record(s)" in findings[0].detail


def test_swapped_records_reported_as_reordered(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    a, b = record_offsets(values)[2], record_offsets(values)[3]
    values[a], values[b] = values[b], values[a]
    assert kinds(judge(values, tmp_path)) == [("reordered", a)]
    assert f"{a}..{b}" in judge(values, tmp_path)[0].detail


def test_linked_forgery_is_a_fork(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    records = record_offsets(values)
    genuine = CODEC.decode_as(values[records[9]], AuditRecord)
    # A careful forger links to the genuine predecessor: a second record at position 9.
    forged = genuine.model_copy(update={"provider": "nta", "request_id": "forged"})
    at = records[9]
    values.insert(at, CODEC.encode(forged))
    findings = judge(values, tmp_path)
    assert kinds(findings) == [("forked", at)]
    assert findings[0].position == 9
    assert f"offset {at + 1}" in findings[0].detail  # the genuine record, moved up by one


def test_inserted_garbage_found(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    at = record_offsets(values)[4]
    values.insert(at, b"\xc3\x01not an audit record at all")
    assert kinds(judge(values, tmp_path)) == [("inserted", at)]


def test_duplicate_of_a_genuine_record_is_inserted(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    records = record_offsets(values)
    values.insert(records[10], values[records[2]])
    assert kinds(judge(values, tmp_path)) == [("inserted", records[10])]


def test_forged_checkpoint_signature(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    at = [i for i, v in enumerate(values) if is_checkpoint(v)][1]
    checkpoint = CODEC.decode_as(values[at], AuditCheckpoint)
    signature = bytes([checkpoint.header.signature[0] ^ 1]) + checkpoint.header.signature[1:]
    values[at] = CODEC.encode(
        checkpoint.model_copy(
            update={"header": checkpoint.header.model_copy(update={"signature": signature})}
        )
    )
    assert kinds(judge(values, tmp_path)) == [("bad-signature", at)]


def test_checkpoint_by_unknown_key(tmp_path: Path) -> None:
    values = build_partition(tmp_path / "a")
    other = build_partition(tmp_path / "b")
    at = next(i for i, v in enumerate(values) if is_checkpoint(v))
    findings = judge([*values[:at], other[at], *values[at + 1 :]], tmp_path / "a")
    assert ("unknown-key", at) in kinds(findings)


def test_removed_checkpoint(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    checkpoints = [i for i, v in enumerate(values) if is_checkpoint(v)]
    del values[checkpoints[1]]
    assert kinds(judge(values, tmp_path)) == [("checkpoint-missing", checkpoints[2] - 1)]


def test_rewritten_chain_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    """A forger who recomputes every later prev_hash cannot re-sign the checkpoint."""
    values = build_partition(tmp_path)
    records = record_offsets(values)
    prev = GENESIS
    rewritten: list[bytes] = []
    for i, value in enumerate(values):
        if is_checkpoint(value):
            rewritten.append(value)
            continue
        record = CODEC.decode_as(value, AuditRecord)
        if i == records[6]:
            record = record.model_copy(update={"provider": "nta"})
        data = CODEC.encode(record.model_copy(update={"prev_hash": prev}))
        prev = chain_hash(data)
        rewritten.append(data)
    findings = kinds(judge(rewritten, tmp_path))
    checkpoints = [i for i, v in enumerate(values) if is_checkpoint(v)]
    assert findings == [("checkpoint-mismatch", c) for c in checkpoints[1:]]


def test_break_after_the_last_checkpoint_is_broken(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    last = record_offsets(values)[-2]
    del values[last]
    assert kinds(judge(values, tmp_path)) == [("broken", last)]


def test_removed_record_that_a_checkpoint_signs(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    checkpoint = next(i for i, v in enumerate(values) if is_checkpoint(v))
    del values[checkpoint - 1]  # the record the first checkpoint names
    findings = judge(values, tmp_path)
    assert kinds(findings) == [("removed", checkpoint)]  # the next record, after the checkpoint
    assert f"between offsets {checkpoint - 2} and {checkpoint}" in findings[0].detail


def test_edited_record_that_a_checkpoint_signs(tmp_path: Path) -> None:
    values = build_partition(tmp_path)
    target = next(i for i, v in enumerate(values) if is_checkpoint(v)) - 1
    data = bytearray(values[target])
    data[40] ^= 0x01
    values[target] = bytes(data)
    assert kinds(judge(values, tmp_path)) == [("edited", target)]


def test_a_legacy_chain_head_gets_no_checkpoints(tmp_path: Path) -> None:
    head = ChainHead.from_bytes(("ab" * 32).encode())  # written before checkpoints existed
    assert head.hash == bytes.fromhex("ab" * 32)
    assert head.count is None
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    heads.put("0", head)
    signer = load_or_create_signer(tmp_path)
    assert Checkpointer("audit", 1, signer, CODEC, 1, 0).due(heads, 10**13) == []
    new = ChainHead(b"\x01" * 32, 7, 5, 123)
    assert ChainHead.from_bytes(new.to_bytes()) == new


def test_an_aborted_input_leaves_the_chain_as_it_was(tmp_path: Path) -> None:
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail("audit", 1, CODEC, heads)
    kept = trail.record(AuditStep.ENROLLED, cause="a" * 32, actor="jps", audit_key="k" * 32)
    trail.begin()
    trail.record(AuditStep.ENROLLED, cause="b" * 32, actor="jps", audit_key="k" * 32)
    trail.abort()  # the hub dropped that input's outputs
    after = trail.record(AuditStep.ENROLLED, cause="c" * 32, actor="jps", audit_key="k" * 32)
    assert kept.value is not None
    assert after.value is not None
    assert CODEC.decode_as(after.value, AuditRecord).prev_hash == chain_hash(kept.value)
    assert judge([kept.value, after.value], tmp_path / "none") == []


def test_withheld_scenarios_are_not_disclosable() -> None:
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail("audit", 1, CODEC, heads, withheld_scenarios=["S005"])
    withheld = trail.record(AuditStep.FORWARDED, cause="a" * 32, actor="x", scenario_id="S005")
    shown = trail.record(AuditStep.FORWARDED, cause="b" * 32, actor="x", scenario_id="S003")
    assert withheld.value is not None
    assert shown.value is not None
    assert not CODEC.decode_as(withheld.value, AuditRecord).disclosable
    assert CODEC.decode_as(shown.value, AuditRecord).disclosable
