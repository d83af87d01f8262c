"""What the benchmarks share: a broker, topics under a fresh prefix, the two baselines."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from infra.kafka import LocalCluster
from renkei.crypto.bundles import HUB_ID, bundle_path
from renkei.topics import TopicSpec, ensure_topics

__all__ = ["agency_trust", "broker", "passthrough", "passthrough_transactional", "prefix"]


def prefix() -> str:
    return f"b{uuid.uuid4().hex[:8]}."


def agency_trust(key_dir: Path, signatures: str) -> dict[str, Any]:
    """How the benchmark's agency readers check the hub, as keyword arguments.

    ``strict``: the hub's key from its bundle in ``key_dir``, as agencies run. A
    ``trust-acl`` hub signs nothing, so its benchmark says so and reads unverified.
    """
    if signatures == "strict":
        return {"hub_public_key": bundle_path(key_dir, HUB_ID)}
    return {"verify_hub": False}


@asynccontextmanager
async def broker(home: Path) -> AsyncIterator[str]:
    """RENKEI_BOOTSTRAP if set, else a fresh single node started here."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if os.environ.get("RENKEI_BOOTSTRAP"):
        yield os.environ["RENKEI_BOOTSTRAP"]
        return
    cluster = LocalCluster(home, base_port=29092)
    bootstrap = await asyncio.to_thread(cluster.up, 120)
    try:
        yield bootstrap
    finally:
        await asyncio.to_thread(cluster.down)


async def _filled(
    kafka: dict[str, Any],
    count: int,
    size: int,
    partitions: int,
    names: tuple[str, str, str] | None,
) -> tuple[str, str, str]:
    """Source and sink topics (fresh unless named), ``count`` records of ``size`` in the source."""
    p = prefix()
    source, sink, group = names or (f"{p}pass.in", f"{p}pass.out", f"{p}pass")
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    await ensure_topics(admin, [TopicSpec(source, partitions), TopicSpec(sink, partitions)])
    await admin.close()
    producer = AIOKafkaProducer(**kafka, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    payload = os.urandom(size)
    for i in range(count):
        await producer.send(source, payload, key=str(i).encode())
    await producer.flush()
    await producer.stop()
    return source, sink, group


async def passthrough(
    bootstrap: str,
    count: int,
    size: int,
    partitions: int = 3,
    *,
    kafka: dict[str, Any] | None = None,
    names: tuple[str, str, str] | None = None,
) -> float:
    """Bare aiokafka consume → produce, the baseline: messages per second.

    :param kafka: connection keyword arguments (TLS, SASL) instead of ``bootstrap`` alone.
    :param names: source topic, sink topic and consumer group, where ACLs decide which
        names a principal may use; fresh ones by default.
    """
    kafka = kafka if kafka is not None else {"bootstrap_servers": bootstrap}
    source, sink, group = await _filled(kafka, count, size, partitions, names)
    producer = AIOKafkaProducer(**kafka, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    consumer = AIOKafkaConsumer(
        source, **kafka, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, max_poll_records=1000,
    )  # fmt: skip
    await consumer.start()
    done = 0
    started = 0.0
    while done < count:
        batch = await consumer.getmany(timeout_ms=100, max_records=1000)
        if batch and not started:
            # Like the hub's clock: from the first record, not from the group join.
            started = time.perf_counter()
        for records in batch.values():
            for r in records:
                await producer.send(sink, r.value, key=r.key)
            done += len(records)
        if batch:
            await consumer.commit()
    await producer.flush()
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await producer.stop()
    return count / elapsed


async def passthrough_transactional(
    bootstrap: str,
    count: int,
    size: int,
    partitions: int = 3,
    *,
    kafka: dict[str, Any] | None = None,
    names: tuple[str, str, str] | None = None,
) -> float:
    """The same pass-through with exactly-once, as the hub does it: messages per second.

    ``read_committed`` consumer; one transaction per poll of at most 1,000 records, holding
    the records (written as record batches, one per partition, like the hub's writer) and
    the poll's offsets; each commit awaited before the next poll (serial commits). What
    this costs beside :func:`passthrough` is what exactly-once itself costs.
    Arguments as :func:`passthrough` (the transactional id is ``<group>-tx``).
    """
    kafka = kafka if kafka is not None else {"bootstrap_servers": bootstrap}
    source, sink, group = await _filled(kafka, count, size, partitions, names)
    producer = AIOKafkaProducer(
        **kafka, transactional_id=f"{group}-tx", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    consumer = AIOKafkaConsumer(
        source, **kafka, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, max_poll_records=1000, isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    done = 0
    started = 0.0
    while done < count:
        batch = await consumer.getmany(timeout_ms=100, max_records=1000)
        if not batch:
            continue
        if not started:
            started = time.perf_counter()
        async with producer.transaction():
            sent = []
            for tp, records in batch.items():
                builder = producer.create_batch()
                for r in records:
                    if builder.append(key=r.key, value=r.value, timestamp=None) is None:
                        sent.append(
                            await producer.send_batch(builder, sink, partition=tp.partition)
                        )
                        builder = producer.create_batch()
                        builder.append(key=r.key, value=r.value, timestamp=None)
                sent.append(await producer.send_batch(builder, sink, partition=tp.partition))
                done += len(records)
            await asyncio.gather(*sent)  # every batch acknowledged before the commit
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await producer.send_offsets_to_transaction(offsets, group)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await producer.stop()
    return count / elapsed
