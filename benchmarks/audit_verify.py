"""How fast ``renkei audit verify`` re-reads a trail, with and without tree heads, beside a bare
aiokafka read of it; ``prove`` for one request; Merkle proofs over 10 million records.

    .venv/bin/python -m benchmarks.audit_verify [records] [--tree-leaves N]

Writes ``records`` (default 300,000) audit records, hash-chained, checkpointed (every
1,000 records per partition) and tree-headed by the hub's own code (``AuditTrail``,
``Checkpointer``, ``TreeHeads``: one signed head per partition for every commit of 5,000
records), twice in the same run to fresh 3-partition topics: *chain-only* (the heads
left out: a trail as before tree heads) and *with tree heads*. Then reads them: a bare
``AIOKafkaConsumer`` loop that only counts (the baseline), ``verify_trail`` on the
chain-only trail (hashes every record, links the chain, checks every checkpoint's
signature) and on the trail with heads (also every head's signature, the leaf hashes,
the Merkle tree of each partition and every head's root), and ``prove`` for one request
on the latter (the same pass plus the exchange's records and their inclusion proofs).
With git at hand, also the verify of commit 43ea2d0 (before tree heads) on the chain-only
trail. Prints records/s and ratios.

Then, without Kafka, a ``MerkleTree`` of ``--tree-leaves`` (default 10,000,000) leaves
built as verify builds it: time, memory, and the time of one inclusion proof (made and
verified) and one consistency proof at that size. ``--tree-leaves 0`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import broker, prefix
from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead, Checkpointer
from hub_stream.outputs import Output
from hub_stream.state import Table
from hub_stream.treeheads import TreeHeads
from renkei.audit.proofs import prove
from renkei.audit.verify import VerifyReport, verify_trail
from renkei.auditchain import TrustedKeys, load_or_create_signer
from renkei.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from renkei.topics import TopicSpec, ensure_topics
from renkei.treehead import is_tree_head
from schemas.codec import default_codec
from schemas.models import AuditStep

PARTITIONS = 3
COMMIT = 5000  # records per hub commit (one tree head per partition each)


def make_trail(topic: str, records: int, key_dir: Path) -> list[Output]:
    """The hub's outputs for ``records`` records to ``topic``, commit after commit."""
    codec = default_codec()
    signer = load_or_create_signer(key_dir)
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail(
        topic, PARTITIONS, codec, heads,
        Checkpointer(topic, PARTITIONS, signer, codec, 1000, 10**12),
        tree_heads=TreeHeads(topic, f"{topic}.heads", signer, codec),
    )  # fmt: skip
    outputs: list[Output] = []
    for start in range(0, records, COMMIT):
        outputs += [
            trail.record(
                AuditStep.FORWARDED,
                cause=f"{n:032x}",
                actor="city-shinagawa",
                audit_key=f"{n % 100_000:032x}",
                requester="city-shinagawa",
                provider="jps",
                scenario_id="S003",
                legal_basis="番号法第19条第8号 主務省令第2条の表 第26項",
                items=("pension.benefit_status",),
                request_id=f"r{n}",
                hub_request_id=f"{n:032x}",
            )
            for n in range(start, min(records, start + COMMIT))
        ]
        outputs += [o for o in trail.checkpoints(int(time.time() * 1000)) if o.topic == topic]
        heads.commit()
    return outputs


async def write(kafka: dict[str, Any], topic: str, outputs: list[Output]) -> None:
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for start in range(0, len(outputs), COMMIT):
            sends = [
                await producer.send(topic, o.value, key=o.key, partition=o.partition)
                for o in outputs[start : start + COMMIT]
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def bare_read(kafka: dict[str, Any], topic: str) -> int:
    consumer = AIOKafkaConsumer(
        **kafka, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        count = 0
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                count += len(records)
        return count
    finally:
        await consumer.stop()


BEFORE_HEADS = "43ea2d0"  # the last commit whose verify knew nothing of tree heads


def verify_before_heads() -> Any:
    """``verify_trail`` as it was before tree heads (from git), or None without git."""
    name = "renkei.audit._verify_before_heads"
    try:
        source = subprocess.run(  # noqa: S603  (git, a fixed argument list)
            ["git", "show", f"{BEFORE_HEADS}:renkei/audit/verify.py"],  # noqa: S607
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType(name)
    module.__package__ = "renkei.audit"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{BEFORE_HEADS}:renkei/audit/verify.py", "exec"), module.__dict__)  # noqa: S102
    return module.verify_trail


async def timed_verify(
    kafka: dict[str, Any], topic: str, trusted: TrustedKeys, verify: Any = verify_trail
) -> tuple[VerifyReport, float]:
    started = time.perf_counter()
    report = await verify(kafka, topic, trusted, default_codec())
    return report, time.perf_counter() - started


async def kafka_part(records: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with broker(Path(tmp) / "kafka") as bootstrap:
            kafka = {"bootstrap_servers": bootstrap}
            base = f"{prefix()}hub.audit"
            chain_topic, tree_topic = f"{base}.chain-only", f"{base}.tree-heads"
            admin = AIOKafkaAdminClient(**kafka)
            await admin.start()
            await ensure_topics(
                admin, [TopicSpec(chain_topic, PARTITIONS), TopicSpec(tree_topic, PARTITIONS)]
            )
            try:
                started = time.perf_counter()
                outputs = make_trail(base, records, Path(tmp) / "keys")
                codec = default_codec()
                await write(kafka, tree_topic, outputs)
                await write(
                    kafka,
                    chain_topic,
                    [o for o in outputs if not is_tree_head(o.value or b"", codec)],
                )
                print(f"wrote {records:,} records twice in {time.perf_counter() - started:.1f} s")
                trusted = TrustedKeys.load(Path(tmp) / "keys" / "audit-trust.json")
                before = verify_before_heads()
                for _ in range(2):  # the second round runs with warm page cache on all
                    started = time.perf_counter()
                    read = await bare_read(kafka, tree_topic)
                    bare = time.perf_counter() - started
                    if before is not None:
                        old, old_s = await timed_verify(kafka, chain_topic, trusted, before)
                    chain, chain_s = await timed_verify(kafka, chain_topic, trusted)
                    tree, tree_s = await timed_verify(kafka, tree_topic, trusted)
                    started = time.perf_counter()
                    _, proven = await prove(kafka, tree_topic, trusted, codec, f"r{records // 2}")
                    prove_s = time.perf_counter() - started
                assert chain.ok, chain.findings[:5]
                assert tree.ok, tree.findings[:5]
                assert proven
                assert all(i.verified for i in proven)
                n = tree.records
                checkpoints = sum(p.checkpoints for p in tree.partitions)
                heads = sum(p.tree_heads for p in tree.partitions)
                print(f"bare aiokafka read       : {read:,} values in {bare:.2f} s = "
                      f"{read / bare:,.0f} values/s")  # fmt: skip
                if before is not None:
                    assert old.ok, old.findings[:5]
                    print(f"verify before heads      : {n:,} records + {checkpoints} checkpoints "
                          f"in {old_s:.2f} s = {n / old_s:,.0f} records/s ({bare / old_s:.2f} x "
                          f"the bare read; {BEFORE_HEADS}'s verify, chain-only trail)")  # fmt: skip
                print(f"verify, chain-only trail : {n:,} records + {checkpoints} checkpoints in "
                      f"{chain_s:.2f} s = {n / chain_s:,.0f} records/s "
                      f"({bare / chain_s:.2f} x the bare read)")  # fmt: skip
                print(f"verify, with tree heads  : {n:,} records + {checkpoints} checkpoints + "
                      f"{heads} heads in {tree_s:.2f} s = {n / tree_s:,.0f} records/s "
                      f"({bare / tree_s:.2f} x the bare read, "
                      f"{chain_s / tree_s:.2f} x chain-only"
                      + (f", {old_s / tree_s:.2f} x before heads)" if before else ")"))  # fmt: skip
                print(f"prove one request        : {len(proven)} record(s) proven in "
                      f"{prove_s:.2f} s ({n / prove_s:,.0f} records/s read)")  # fmt: skip
            finally:
                await admin.delete_topics([chain_topic, tree_topic])
                await admin.close()


def _rss_mb() -> float:
    """The resident set now (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def tree_part(leaves: int) -> None:
    before, peak_before = _rss_mb(), _peak_mb()
    started = time.perf_counter()
    packed = bytearray()
    for i in range(leaves):
        packed += leaf_hash(i.to_bytes(8, "big"))
    hashed = time.perf_counter() - started
    started = time.perf_counter()
    tree = MerkleTree.from_leaf_bytes(packed)
    built = time.perf_counter() - started
    del packed
    grown, peak = _rss_mb() - before, _peak_mb() - peak_before
    held = sum(leaves >> h for h in range(leaves.bit_length())) * 32  # every level's nodes
    print(f"tree of {leaves:,} leaves: leaf hashes {hashed:.1f} s, tree built in {built:.1f} s "
          f"({built / leaves * 1e6:.2f} µs a leaf); it holds {held / 1e6:,.0f} MB "
          f"({held / leaves:.0f} bytes a leaf); RSS +{grown:,.0f} MB with the tree built, peak "
          f"+{peak:,.0f} MB (the packed leaves, copied into the tree)")  # fmt: skip
    root = tree.root()
    rng = random.Random(13)
    picks = [rng.randrange(leaves) for _ in range(1000)]
    started = time.perf_counter()
    proofs = [tree.inclusion_proof(i) for i in picks]
    made = (time.perf_counter() - started) / len(picks)
    started = time.perf_counter()
    assert all(
        verify_inclusion(tree.leaf(i), i, leaves, p, root)
        for i, p in zip(picks, proofs, strict=True)
    )
    checked = (time.perf_counter() - started) / len(picks)
    old = leaves // 3 + 1
    started = time.perf_counter()
    proof = tree.consistency_proof(old)
    cons = time.perf_counter() - started
    assert verify_consistency(old, leaves, tree.root(old), root, proof)
    print(f"inclusion proof at {leaves:,}: {len(proofs[0])} hashes, made in {made * 1e6:.0f} µs, "
          f"verified in {checked * 1e6:.0f} µs (mean of 1,000)")  # fmt: skip
    print(f"consistency proof {old:,} -> {leaves:,}: {len(proof)} hashes in {cons * 1e6:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_verify")
    parser.add_argument("records", type=int, nargs="?", default=300_000)
    parser.add_argument("--tree-leaves", type=int, default=10_000_000)
    args = parser.parse_args()
    asyncio.run(kafka_part(args.records))
    if args.tree_leaves:
        tree_part(args.tree_leaves)


if __name__ == "__main__":
    main()
