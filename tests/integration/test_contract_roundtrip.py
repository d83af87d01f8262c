"""Every message type survives a real Kafka broker byte for byte.

Produces one sample of every top-level type (and the union/enum variants) to a fresh topic
with aiokafka, consumes them back, and checks each decodes to a model equal to the
original and re-encodes to the very bytes that were produced.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas import MESSAGE_TYPES, default_codec
from tests.samples import sample_messages, sample_variants

pytestmark = pytest.mark.integration

RECEIVE_TIMEOUT_S = 30.0


async def test_every_message_round_trips_through_kafka(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    codec = default_codec()
    topic = f"{topic_prefix}.contract"
    originals = sample_messages() + sample_variants()
    assert {type(m) for m in originals} == set(MESSAGE_TYPES)
    encoded = [codec.encode(m) for m in originals]

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for message, value in zip(originals, encoded, strict=True):
            await producer.send_and_wait(
                topic, value=value, key=message.header.message_id.encode("ascii")
            )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}.contract-reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(RECEIVE_TIMEOUT_S):
            while len(received) < len(encoded):
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    received.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()

    # one partition: Kafka keeps the order we produced in
    assert len(received) == len(encoded)
    for original, sent, got in zip(originals, encoded, received, strict=True):
        assert got == sent
        decoded = codec.decode(got)
        assert type(decoded) is type(original)
        assert decoded == original
        assert codec.encode(decoded) == got
