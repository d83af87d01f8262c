"""One way to build a Kafka reader of Renkei's topics: committed records only.

Every topic an agency or the hub reads is written in Kafka transactions, so every reader
must use ``read_committed`` (aborted writes of a crashed hub stay invisible), commit its
offsets itself after handling, and keep its fetches short, so that a parked fetch does not
hold back a partition it has just drained (:data:`~renkei.settings.FETCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from renkei.aiokafka_internals import force_metadata_update
from renkei.errors import RequestTimeoutError
from renkei.settings import FETCH_MAX_WAIT_MS

__all__ = ["committed_reader", "read_to_end", "topic_partitions"]


def committed_reader(
    kafka: dict[str, Any],
    *topics: str,
    group_id: str | None,
    auto_offset_reset: str = "earliest",
    **options: Any,
) -> AIOKafkaConsumer:
    """An (unstarted) consumer of ``topics`` that sees committed records only.

    :param kafka: connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param group_id: the consumer group, or ``None`` to assign partitions by hand.
    :param options: further aiokafka consumer options (``max_poll_records``, ...).
    """
    return AIOKafkaConsumer(
        *topics,
        **kafka,
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        auto_offset_reset=auto_offset_reset,
        **options,
    )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, wait_s: float = 5) -> list[int]:
    """The partitions of ``topic``, refreshing metadata for up to ``wait_s`` while unknown.

    A topic created moments ago (by the hub at start, by a test) is not yet in the
    metadata a consumer fetched when it started. ``[]`` when it still is not.
    """
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        if asyncio.get_running_loop().time() > deadline:
            return []
        await force_metadata_update(consumer)
        await asyncio.sleep(0.1)


async def read_to_end(
    kafka: dict[str, Any], topic: str, timeout_s: float
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic``, from its beginning to its end as of the call.

    Records written after the call are not waited for; a missing topic yields nothing.

    :raises RequestTimeoutError: the topic could not be read to its end in ``timeout_s``.
    """
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        try:
            async with asyncio.timeout(timeout_s):
                partitions = await topic_partitions(consumer, topic)
                tps = [TopicPartition(topic, p) for p in partitions]
                if not tps:
                    return
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                end = await consumer.end_offsets(tps)
                remaining = {tp for tp in tps if end[tp] > 0}
                while remaining:
                    batch = await consumer.getmany(*remaining, timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            yield record
                    for tp in list(remaining):
                        # Transaction markers take offsets too: compare positions, not counts.
                        if await consumer.position(tp) >= end[tp]:
                            remaining.discard(tp)
        except TimeoutError:
            raise RequestTimeoutError(f"could not read {topic} within {timeout_s:g} s") from None
    finally:
        await consumer.stop()
