"""One way to build a Kafka reader of Renkei's topics: committed records only.

Every topic an agency or the hub reads is written in Kafka transactions, so every reader
must use ``read_committed`` (aborted writes of a crashed hub stay invisible), commit its
offsets itself after handling, and fetch promptly (:data:`FETCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from renkei.settings import FETCH_MAX_WAIT_MS

__all__ = ["committed_reader"]


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
