"""How fast ``renkei audit verify`` re-reads a trail, beside a bare aiokafka read of it.

    .venv/bin/python -m benchmarks.audit_verify [records]

Writes ``records`` (default 300,000) audit records, hash-chained and checkpointed by the
hub's own code (every 1,000 records per partition), to a fresh 3-partition topic; then
reads it twice: a bare ``AIOKafkaConsumer`` loop that only counts (the baseline), and
``verify_trail`` (reads, hashes every record, links the chain, checks every checkpoint's
signature). Prints records/s of both and their ratio.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import broker, prefix
from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead, Checkpointer
from hub_stream.state import Table
from renkei.audit.verify import verify_trail
from renkei.auditchain import TrustedKeys, load_or_create_signer
from renkei.topics import TopicSpec, ensure_topics
from schemas.codec import default_codec
from schemas.models import AuditStep

PARTITIONS = 3


async def write_trail(kafka: dict[str, Any], topic: str, records: int, key_dir: Path) -> None:
    codec = default_codec()
    signer = load_or_create_signer(key_dir)
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail(
        topic, PARTITIONS, codec, heads,
        Checkpointer(topic, PARTITIONS, signer, codec, 1000, 10**12),
    )  # fmt: skip
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for start in range(0, records, 5000):
            outputs = [
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
                for n in range(start, min(records, start + 5000))
            ]
            outputs += trail.checkpoints(int(time.time() * 1000))
            heads.commit()
            sends = [
                await producer.send(o.topic, o.value, key=o.key, partition=o.partition)
                for o in outputs
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


async def main(records: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with broker(Path(tmp) / "kafka") as bootstrap:
            kafka = {"bootstrap_servers": bootstrap}
            topic = f"{prefix()}hub.audit"
            admin = AIOKafkaAdminClient(**kafka)
            await admin.start()
            await ensure_topics(admin, [TopicSpec(topic, PARTITIONS)])
            try:
                started = time.perf_counter()
                await write_trail(kafka, topic, records, Path(tmp) / "keys")
                print(f"wrote {records:,} records in {time.perf_counter() - started:.1f} s")
                trusted = TrustedKeys.load(Path(tmp) / "keys" / "audit-trust.json")
                for _ in range(2):  # the second round runs with warm page cache on both
                    started = time.perf_counter()
                    read = await bare_read(kafka, topic)
                    bare = time.perf_counter() - started
                    started = time.perf_counter()
                    report = await verify_trail(kafka, topic, trusted, default_codec())
                    verify = time.perf_counter() - started
                assert report.ok, report.findings[:5]
                checkpoints = sum(p.checkpoints for p in report.partitions)
                print(f"bare aiokafka read : {read:,} records in {bare:.2f} s = "
                      f"{read / bare:,.0f} records/s")  # fmt: skip
                print(f"audit verify       : {report.records:,} records + {checkpoints} "
                      f"checkpoints in {verify:.2f} s = {report.records / verify:,.0f} records/s "
                      f"({bare / verify:.2f} x the bare read)")  # fmt: skip
            finally:
                await admin.delete_topics([topic])
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000))
