"""--against, heads and prove on synthetic trails: consistency and inclusion proofs, and what
they find when the trail was cut or rewritten."""

from __future__ import annotations

import json
from pathlib import Path

from renkei.audit.proofs import check_against, inclusions, latest_heads
from renkei.audit.replay import Entry
from renkei.audit.verify import VerifyReport
from renkei.auditchain import chain_hash, load_or_create_signer
from renkei.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion
from renkei.treehead import SignedHead
from schemas.models import AuditRecord
from tests.unit.treetrail import (
    CODEC,
    build_trail,
    head_bytes,
    head_offsets,
    heads_of,
    record_offsets,
    relink,
    resign,
    trusted_of,
    verify_values,
)


def report_of(values: list[bytes], key_dir: Path) -> VerifyReport:
    return VerifyReport("audit", [verify_values(values, key_dir)])


def test_today_extends_every_earlier_head(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    earlier = heads_of(values)[:4]  # sizes 4, 8, 12, 16: kept by an auditor earlier
    checks = check_against(report_of(values, tmp_path), earlier, trusted_of(tmp_path), CODEC)
    assert [(c.old_size, c.new_size, c.ok) for c in checks] == [
        (n, 23, True) for n in (4, 8, 12, 16)
    ]
    latest = heads_of(values)[-1]
    for c in checks:
        assert verify_consistency(c.old_size, c.new_size, c.old_root, latest.root, c.proof)
        assert c.proof  # not trivially empty
    assert json.loads(json.dumps(checks[0].to_json()))["ok"] is True


def test_heads_export_round_trips_to_against(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    exported = "".join(
        json.dumps(h.to_json()) + "\n" for h in latest_heads(report_of(values, tmp_path))
    )
    kept = SignedHead.load_all(exported, CODEC)
    assert [h.size for h in kept] == [23]
    later = build_trail_more(values, tmp_path)
    checks = check_against(report_of(later, tmp_path), kept, trusted_of(tmp_path), CODEC)
    assert [(c.old_size, c.new_size, c.ok) for c in checks] == [(23, 25, True)]


def build_trail_more(values: list[bytes], key_dir: Path) -> list[bytes]:
    """``values`` and two more records in a commit of their own, as the hub goes on."""
    records = [values[i] for i in record_offsets(values)]
    last = CODEC.decode_as(records[-1], AuditRecord)
    more = list(values)
    before = Frontier()
    for r in records:
        before.append(leaf_hash(r))
    batch: list[bytes] = []
    prev = chain_hash(records[-1])
    for n in range(2):
        data = CODEC.encode(last.model_copy(update={"prev_hash": prev, "request_id": f"more-{n}"}))
        batch.append(data)
        prev = chain_hash(data)
    _, head = head_bytes(load_or_create_signer(key_dir), before, batch)
    return [*more, *batch, head]


def test_truncated_log_is_caught_at_todays_size(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    kept = heads_of(values)[-1]  # 23, exported before the cut
    cut = values[: head_offsets(values)[3] + 1]  # records and heads after 16 dropped
    assert verify_values(cut, tmp_path).findings == []  # the cut trail alone looks whole
    checks = check_against(report_of(cut, tmp_path), [kept], trusted_of(tmp_path), CODEC)
    finding = checks[0].finding
    assert finding is not None
    assert (finding.kind, finding.partition, finding.position) == ("truncated", 0, 16)
    assert finding.offset == len(cut)  # where position 16 would stand
    assert "positions 16..22 are gone" in finding.detail


def test_rewritten_and_re_signed_history_is_caught(tmp_path: Path) -> None:
    """The key holder rewrites record 6 and signs new heads: every earlier head of size
    8 or more disagrees; the ones of 4 hold, so the difference is at 4..7."""
    values = build_trail(tmp_path)
    earlier = heads_of(values)
    rewritten = resign(relink(values, 6, provider="nta"), tmp_path)
    report = report_of(rewritten, tmp_path)
    assert report.ok  # consistent in itself: only a head kept from before can tell
    checks = check_against(report, earlier, trusted_of(tmp_path), CODEC)
    assert [c.ok for c in checks] == [True, False, False, False, False, False]
    finding = checks[1].finding
    assert finding is not None
    assert (finding.kind, finding.position) == ("rewritten", 4)
    assert finding.offset == record_offsets(rewritten)[4]
    assert "one of positions 4..7" in finding.detail


def test_earlier_head_with_a_bad_signature(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    other = build_trail(tmp_path / "other")
    checks = check_against(
        report_of(values, tmp_path), heads_of(other)[:1], trusted_of(tmp_path), CODEC
    )
    assert checks[0].finding is not None
    assert checks[0].finding.kind == "unknown-key"


def test_earlier_head_of_a_partition_with_nothing_today(tmp_path: Path) -> None:
    values = build_trail(tmp_path, partition=1)
    checks = check_against(
        report_of([], tmp_path), heads_of(values)[:1], trusted_of(tmp_path), CODEC
    )
    finding = checks[0].finding
    assert finding is not None
    assert (finding.kind, finding.partition, finding.position) == ("truncated", 1, 0)


def entries_of(values: list[bytes]) -> list[Entry]:
    return [
        Entry(0, i, CODEC.decode_as(values[i], AuditRecord), values[i])
        for i in record_offsets(values)
    ]


def test_every_record_proven_included_in_the_latest_head(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    proven = inclusions(report_of(values, tmp_path), entries_of(values))
    latest = heads_of(values)[-1]
    assert [i.position for i in proven] == list(range(23))
    assert all(i.verified for i in proven)
    for i in proven:
        assert i.head == latest
        assert verify_inclusion(i.leaf, i.position or 0, 23, i.proof, latest.root)
    doc = proven[5].to_json()
    assert (doc["partition"], doc["position"], doc["offset"]) == (0, 5, record_offsets(values)[5])
    assert doc["root_hash"] == latest.root.hex()


def test_a_record_after_the_last_head_is_not_covered(tmp_path: Path) -> None:
    values = build_trail(tmp_path)
    last = CODEC.decode_as(values[record_offsets(values)[-1]], AuditRecord)
    values.append(
        CODEC.encode(
            last.model_copy(update={"prev_hash": chain_hash(values[record_offsets(values)[-1]])})
        )
    )
    proven = inclusions(report_of(values, tmp_path), entries_of(values))
    assert [i.verified for i in proven] == [True] * 23 + [False]
    assert proven[-1].position == 23
