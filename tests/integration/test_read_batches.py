"""Reading partitions to their end (``renkei.readers.read_batches``) on a real broker: it
ends past transaction markers and aborted records, starts where it is told, passes over
empty partitions, and a restore that meets a row it cannot load names where, not what."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub_stream.restore import restore_tables
from hub_stream.state import Table
from renkei.errors import HubHaltedError
from renkei.readers import committed_reader, partitions_of, read_batches

Rows = Sequence[tuple[bytes, bytes]]


async def create_topic(kafka: dict[str, Any], name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def transact(
    kafka: dict[str, Any], txn_id: str, topic: str, partition: int, rows: Rows, *, commit: bool
) -> None:
    """Write ``rows`` to one partition in one transaction, committed or aborted."""
    producer = AIOKafkaProducer(**kafka, transactional_id=txn_id)
    await producer.start()
    try:
        await producer.begin_transaction()
        for key, value in rows:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
    finally:
        await producer.stop()


async def read(
    kafka: dict[str, Any], topic: str, offsets: dict[TopicPartition, int] | None = None
) -> dict[int, list[tuple[int, bytes | None]]]:
    """What read_batches yields for every partition of ``topic``: (offset, key) in order."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    got: dict[int, list[tuple[int, bytes | None]]] = {}
    try:
        partitions = await partitions_of(consumer, [topic])
        async with aclosing(read_batches(consumer, partitions, offsets)) as batches:
            async for tp, records in batches:
                assert tp in partitions
                got.setdefault(tp.partition, []).extend((r.offset, r.key) for r in records)
    finally:
        await consumer.stop()
    return got


def rows(*keys: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), b"v-" + k.encode()) for k in keys]


async def test_ends_past_markers_and_aborted_records_and_skips_empty_partitions(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = {"bootstrap_servers": kafka_bootstrap}
    topic = f"{topic_prefix}state"
    await create_topic(kafka, topic, 3)
    txn = f"{topic_prefix}txn"
    await transact(kafka, txn, topic, 0, rows("a", "b"), commit=True)  # offsets 0, 1; marker 2
    await transact(kafka, txn, topic, 0, rows("x", "y", "z"), commit=False)  # 3-5; marker 6
    await transact(kafka, txn, topic, 2, rows("c"), commit=True)  # offset 0; marker 1
    # Partition 0 ends in an aborted transaction: none of its records count, yet its end
    # offset lies past them, so a reader counting records would wait forever.
    got = await read(kafka, topic)
    assert got == {0: [(0, b"a"), (1, b"b")], 2: [(0, b"c")]}  # partition 1: empty


async def test_starts_at_the_offsets_given(kafka_bootstrap: str, topic_prefix: str) -> None:
    kafka = {"bootstrap_servers": kafka_bootstrap}
    topic = f"{topic_prefix}state"
    await create_topic(kafka, topic, 2)
    txn = f"{topic_prefix}txn"
    await transact(kafka, txn, topic, 0, rows("a", "b", "c"), commit=True)  # marker at 3
    await transact(kafka, txn, topic, 1, rows("d", "e"), commit=True)  # marker at 2
    got = await read(kafka, topic, {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 3})
    # Partition 0 from offset 1; partition 1 from past its end: nothing, and it still ends.
    assert got == {0: [(1, b"b"), (2, b"c")]}


async def test_a_row_that_does_not_load_halts_the_restore_naming_where_it_is(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka = {"bootstrap_servers": kafka_bootstrap}
    topic = f"{topic_prefix}state"
    await create_topic(kafka, topic, 2)
    txn = f"{topic_prefix}txn"
    await transact(kafka, txn, topic, 1, [(b"k1", b"7"), (b"k2", b"secret-row")], commit=True)

    collecting: list[bool] = []

    def decode(data: bytes) -> int:
        collecting.append(gc.isenabled())
        return int(data.decode())

    table: Table[int] = Table(topic, lambda v: str(v).encode(), decode)
    with pytest.raises(HubHaltedError) as caught:
        await restore_tables(kafka, [table])
    assert f"{topic}[1]@1 cannot be restored" in str(caught.value)
    assert "secret-row" not in str(caught.value)
    assert table.get("k1") == 7  # read in order, up to the row that does not load
    # The cyclic collector pauses while rows load, and runs again even after a halt.
    assert collecting == [False, False]
    assert gc.isenabled()
