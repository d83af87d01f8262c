"""One way to build a Kafka reader of Renkei's topics: committed records only.

Every topic an agency or the hub reads is written in Kafka transactions, so every reader
must use ``read_committed`` (aborted writes of a crashed hub stay invisible), commit its
offsets itself after handling, and keep its fetches short while it is busy, so that a
parked fetch does not hold back a partition it has just drained
(:data:`~renkei.settings.FETCH_MAX_WAIT_MS`), but long while idle, so that it does not
poll the broker a hundred times a second for nothing
(:data:`~renkei.settings.IDLE_FETCH_MAX_WAIT_MS`).

Reading partitions to their end — a worker restoring its tables, the router catching up
with every person, an operator's tool reading a topic — is one loop, :func:`read_batches`:
from the beginning (or given offsets) to each partition's end as of its start, a batch of
records per partition at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from renkei.aiokafka_internals import force_metadata_update, park_fetches_when_idle
from renkei.errors import RequestTimeoutError
from renkei.settings import FETCH_MAX_WAIT_MS, IDLE_FETCH_MAX_WAIT_MS

__all__ = [
    "Batch",
    "CommittedReader",
    "committed_reader",
    "partitions_of",
    "read_batches",
    "read_to_end",
    "topic_partitions",
]

Batch = tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
"""Records of one partition, in offset order, as one fetch returned them."""


class CommittedReader(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka is untyped
    """A ``read_committed`` consumer whose fetches park long only while nothing is buffered."""

    async def start(self) -> None:
        await super().start()
        # Read here, not at import: benchmarks.hops sets FETCH_MAX_WAIT_MS per run.
        park_fetches_when_idle(self, busy_ms=FETCH_MAX_WAIT_MS, idle_ms=IDLE_FETCH_MAX_WAIT_MS)


def committed_reader(
    kafka: dict[str, Any],
    *topics: str,
    group_id: str | None,
    auto_offset_reset: str = "earliest",
    **options: Any,
) -> CommittedReader:
    """An (unstarted) consumer of ``topics`` that sees committed records only.

    :param kafka: connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param group_id: the consumer group, or ``None`` to assign partitions by hand.
    :param options: further aiokafka consumer options (``max_poll_records``, ...).
    """
    return CommittedReader(
        *topics,
        **kafka,
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # until started; then as CommittedReader sets
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


async def partitions_of(
    consumer: AIOKafkaConsumer, topics: Iterable[str], only: Collection[int] | None = None
) -> list[TopicPartition]:
    """The partitions of ``topics`` (each in order), or only those numbered in ``only``.

    A topic that does not exist (yet) has none (:func:`topic_partitions`).
    """
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in await topic_partitions(consumer, topic)
        if only is None or p in only
    ]


async def read_batches(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    offsets: Mapping[TopicPartition, int] | None = None,
    max_records: int | None = 10_000,
) -> AsyncGenerator[Batch, None]:
    """Each partition's committed records, from its beginning to its end as of the call.

    The consumer (started, no group) is assigned ``partitions``; it is left positioned
    after the last record yielded, so its owner may go on following them. Records
    committed after the call are not waited for, but the last fetch of a partition may
    bring some along: they are yielded too (dropping them would lose them for a follower).
    An empty partition yields nothing.

    :param offsets: where to start in each partition it names (the beginning elsewhere).
    :param max_records: at most this many records a fetch (``None``: what is buffered).
    """
    unknown = set(offsets or ()) - set(partitions)
    if unknown:
        raise ValueError(f"offsets for partitions not read: {sorted(map(str, unknown))}")
    consumer.assign(list(partitions))
    if not partitions:
        return
    end = await consumer.end_offsets(list(partitions))
    await consumer.seek_to_beginning(*partitions)
    for tp, offset in (offsets or {}).items():
        consumer.seek(tp, offset)
    remaining = {tp for tp in partitions if await consumer.position(tp) < end[tp]}
    while remaining:
        fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=max_records)
        for tp, records in fetched.items():
            if records:
                yield tp, records
        for tp in list(remaining):
            # Transaction markers (and aborted records, invisible to read_committed) take
            # offsets too: compare positions with the end, not counts of records.
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)


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
                partitions = await partitions_of(consumer, [topic])
                async for _, records in read_batches(consumer, partitions):
                    for record in records:
                        yield record
        except TimeoutError:
            raise RequestTimeoutError(f"could not read {topic} within {timeout_s:g} s") from None
    finally:
        await consumer.stop()
