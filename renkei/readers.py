"""One way to build a Kafka reader of Renkei's topics: committed records only.

Every topic an agency or the hub reads is written in Kafka transactions, so every reader
must use ``read_committed`` (aborted writes of a crashed hub stay invisible), commit its
offsets itself after handling, and fetch promptly (:data:`FETCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

from renkei.aiokafka_internals import force_metadata_update
from renkei.settings import FETCH_MAX_WAIT_MS

__all__ = ["committed_reader", "topic_partitions"]


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
