"""Tree heads on a real hub's trail: truncation, a fork and a forged append in copies of it,
each caught at its exact partition and chain position; heads exported and proven against;
inclusion proofs for a real exchange."""

from __future__ import annotations

import json
from pathlib import Path

from renkei.audit.proofs import check_against, prove
from renkei.audit.verify import VerifyReport, verify_trail
from renkei.auditchain import chain_hash
from renkei.treehead import SignedHead, is_tree_head
from schemas.models import AuditRecord
from tests.integration.hub_env import HubEnv
from tests.integration.test_audit import (
    CODEC,
    copy_trail,
    env,
    populate,
    record_index,
    run_cli,
    trusted_keys,
    wait_until_signed,
)

__all__ = ["env"]  # the fixture, shared with test_audit


def head_indexes(values: list[bytes]) -> list[int]:
    return [i for i, v in enumerate(values) if is_tree_head(v, CODEC)]


def findings_of(report: VerifyReport) -> list[tuple[str, int, int, int | None]]:
    return [(f.kind, f.partition, f.offset, f.position) for f in report.findings]


async def test_truncate_fork_and_append_caught_at_their_position(
    env: HubEnv, tmp_path: Path
) -> None:
    done = await populate(env)
    trusted = trusted_keys(env)
    live = await wait_until_signed(env, trusted)
    assert live.ok, live.findings
    assert all(p.unsigned_records == 0 for p in live.partitions)  # heads sign every commit
    biggest = max(live.partitions, key=lambda p: p.records)
    part = biggest.partition
    assert biggest.tree_size == biggest.records  # the latest head signs every record
    assert biggest.tree_heads >= 2

    # what an auditor keeps: the latest head of every partition, through the CLI
    kept = tmp_path / "heads.jsonl"
    exported = run_cli(env, "heads", "--out", str(kept))
    assert exported.returncode == 0, exported.stderr
    heads = SignedHead.load_all(kept.read_text(), CODEC)
    assert {h.partition: h.size for h in heads} == {
        p.partition: p.tree_size for p in live.partitions if p.tree_size
    }
    verified = run_cli(env, "verify", "--against", str(kept), "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "tree heads: the hub signs every commit" in verified.stdout
    assert f"extending {len(heads)} earlier head(s), nothing wrong" in verified.stdout

    # TRUNCATE: the last commit of the partition gone, records and head alike
    cut_size: list[int] = []

    def truncate(values: list[bytes]) -> None:
        heads_at = head_indexes(values)
        keep = heads_at[-2]
        cut_size.append(SignedHead.parse(values[keep], CODEC).size)
        del values[keep + 1 :]

    topic = await copy_trail(env, "audit-copy-truncate", truncate, part)
    report = await verify_trail(env.kafka, topic, trusted, CODEC)
    assert report.ok, report.findings  # the cut trail alone looks whole: only a kept head tells
    checks = check_against(report, heads, trusted, CODEC)
    found = [c.finding for c in checks if c.finding is not None]
    cut = next(p for p in report.partitions if p.partition == part)
    assert cut.last_offset is not None
    assert [(f.kind, f.partition, f.position, f.offset) for f in found] == [
        ("truncated", part, cut_size[0], cut.last_offset + 1)
    ]
    cli = run_cli(
        env, "verify", "--topic", topic, "--against", str(kept), "--quiet", principal="admin"
    )
    assert cli.returncode == 1, cli.stderr
    assert "truncated" in cli.stdout

    # FORK: a second record, correctly linked, right after the genuine record at position 3
    fork_at: list[int] = []

    def fork(values: list[bytes]) -> None:
        genuine = record_index(values, 3)
        record = CODEC.decode_as(values[genuine], AuditRecord)
        forged = record.model_copy(update={"requester": "nta", "request_id": "forged"})
        values.insert(genuine + 1, CODEC.encode(forged))
        fork_at.append(genuine + 1)

    topic = await copy_trail(env, "audit-copy-fork", fork, part)
    report = await verify_trail(env.kafka, topic, trusted, CODEC)
    assert findings_of(report) == [("forked", part, fork_at[0], 3)]

    # APPEND: a forged record linked to the last genuine one, after the last head
    append_at: list[int] = []

    def append(values: list[bytes]) -> None:
        last = max(i for i, v in enumerate(values) if not is_tree_head(v, CODEC)
                   and isinstance(CODEC.decode(v), AuditRecord))  # fmt: skip
        record = CODEC.decode_as(values[last], AuditRecord)
        forged = record.model_copy(
            update={"prev_hash": chain_hash(values[last]), "request_id": "forged-append"}
        )
        values.append(CODEC.encode(forged))
        append_at.append(len(values) - 1)

    topic = await copy_trail(env, "audit-copy-append", append, part)
    report = await verify_trail(env.kafka, topic, trusted, CODEC)
    assert findings_of(report) == [("after-last-head", part, append_at[0], biggest.records)]
    # and prove refuses the forged record: no head covers it
    cli = run_cli(env, "prove", "forged-append", "--topic", topic, principal="admin")
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "not covered" in cli.stdout + cli.stderr

    # PROVE a real exchange: each record's inclusion in its partition's latest head
    trail, proven = await prove(env.kafka, env.topics.audit, trusted, CODEC, done.traced_request)
    assert trail.ok
    assert [str(i.entry.record.step) for i in proven] == ["FORWARDED", "ANSWERED"]
    chains = {p.partition: p.chain for p in trail.partitions}
    for i in proven:
        assert i.verified
        chain = chains[i.entry.partition]
        assert chain is not None
        assert i.position == chain.position_of(i.entry.offset)
        assert i.head == chain.latest
    hub_id = proven[0].entry.record.hub_request_id
    assert hub_id
    _, by_hub_id = await prove(env.kafka, env.topics.audit, trusted, CODEC, hub_id)
    assert [i.entry for i in by_hub_id] == [i.entry for i in proven]
    cli = run_cli(env, "prove", done.traced_request, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    doc = json.loads(cli.stdout)
    assert [r["step"] for r in doc["records"]] == ["FORWARDED", "ANSWERED"]
    assert all(r["verified"] for r in doc["records"])
    assert {h["partition"] for h in doc["heads"]} == {i.entry.partition for i in proven}
