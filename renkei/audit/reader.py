"""Reading ``hub.audit`` (or a copy of it) from Kafka: every partition, committed records only.

One reader serves ``verify``, ``replay``, ``trace`` and the portal. It assigns partitions
itself (no consumer group, nothing committed: reading the trail never changes it) and
reads ``read_committed``, so records of a transaction the hub aborted are never seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition

from renkei.errors import AuditError
from renkei.readers import committed_reader, topic_partitions

if TYPE_CHECKING:
    from hub_stream.directory import Directory
    from schemas.codec import Codec

__all__ = ["Raw", "read_directory", "read_topic"]


@dataclass(frozen=True, slots=True)
class Raw:
    """One Kafka record of the trail, undecoded."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


async def read_topic(
    kafka: dict[str, Any],
    topic: str,
    *,
    since_ms: int | None = None,
    follow: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_caught_up: Callable[[], None] | None = None,
    max_records: int = 10_000,
) -> AsyncIterator[list[Raw]]:
    """Batches of records of every partition of ``topic``, each batch of one partition, in order.

    :param since_ms: start at the first record at or after this time (Kafka timestamps).
    :param follow: keep reading new records after the end (the portal); otherwise stop at
        the end offsets seen when reading started.
    :param on_start: called once with the number of offsets to read (for a progress bar).
    :param on_caught_up: called once when the end seen at the start has been reached.
    """
    consumer = committed_reader(kafka, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        if not partitions:
            raise AuditError(f"topic {topic} does not exist (or has no partitions)")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        start = dict(begin)
        if since_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
            start = {tp: (found[tp].offset if found[tp] else end[tp]) for tp in tps}
        for tp in tps:
            consumer.seek(tp, start[tp])
        if on_start is not None:
            on_start(sum(max(0, end[tp] - start[tp]) for tp in tps))
        remaining = {tp for tp in tps if start[tp] < end[tp]}
        if not remaining and on_caught_up is not None:
            on_caught_up()
        while remaining or follow:
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            for tp, records in batch.items():
                if records:
                    yield [
                        Raw(tp.partition, r.offset, r.timestamp, r.key, r.value) for r in records
                    ]
            if remaining:
                for tp in list(remaining):
                    # Transaction markers take offsets too: compare positions, not counts.
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
                if not remaining and on_caught_up is not None:
                    on_caught_up()
    finally:
        await consumer.stop()


async def read_directory(kafka: dict[str, Any], topic: str, codec: Codec) -> Directory:
    """The current ``hub.directory``: agencies (names, keys) and the scenario table."""
    from hub_stream.directory import Directory
    from schemas.models import AgencyEntry, ScenarioEntry

    directory = Directory()
    async for batch in read_topic(kafka, topic):
        for raw in batch:
            if raw.value is None:
                continue
            entry = codec.decode(raw.value)
            if isinstance(entry, AgencyEntry | ScenarioEntry):
                directory.apply(entry)
    return directory
