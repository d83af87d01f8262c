"""Restoring the hub's tables: each ``hub.state.*`` topic read to its end at start.

A worker (or a bucket's task) reads every table's topic from the beginning to its end as
of the start (``read_committed``) before it processes anything, so its state matches the
offsets it resumes from. What a table does with each record is its own
(:meth:`hub_stream.state.Table.load`).
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator, Sequence
from contextlib import aclosing, contextmanager
from typing import Any, Protocol

from aiokafka import TopicPartition

from renkei.errors import HubHaltedError
from renkei.readers import committed_reader, partitions_of, read_batches

from .redact import describe_exception

__all__ = ["Restorable", "RestoreProgress", "collector_paused", "restore_tables"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while rows are restored, then resume it.

    State rows hold no reference cycles, so it would free nothing, yet each of its full
    collections walks every object restored so far: about 30 % of a restore's CPU at
    60,000 persons, more with more (docs/benchmarks.md, "Restoring a bucket").
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_RESTORE_FETCH: dict[str, Any] = {"max_partition_fetch_bytes": 8 << 20, "fetch_max_bytes": 64 << 20}
"""Fetch sizes of a restore: a whole state topic is read at once, so fewer, larger fetches
(Kafka's defaults: 1 MiB a partition, 50 MiB a fetch)."""


class Restorable(Protocol):
    """What :func:`restore_tables` fills: a topic, and what to do with each record of it."""

    @property
    def topic(self) -> str: ...

    def load(self, key: bytes, value: bytes | None) -> None: ...


class RestoreProgress:
    """How far a restore has come, for the metrics (``restore_remaining_records``).

    Counted in offsets, not records: transaction markers and compacted-away rows take
    offsets too, so it is an upper bound that reaches 0 once the restore is complete.
    """

    def __init__(self) -> None:
        self._left: dict[TopicPartition, int] = {}
        self._end: dict[TopicPartition, int] = {}

    @property
    def remaining(self) -> int:
        """Offsets still to read, over every partition being restored (0 when none is)."""
        return sum(self._left.values())

    def begin(self, begin: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> None:
        self._end = end
        self._left = {tp: max(0, end[tp] - begin.get(tp, 0)) for tp in end}

    def read(self, tp: TopicPartition, next_offset: int) -> None:
        self._left[tp] = max(0, self._end.get(tp, 0) - next_offset)

    def done(self) -> None:
        self._left = {}


async def restore_tables(
    kafka: dict[str, Any],
    tables: Sequence[Restorable],
    only: Collection[int] | None = None,
    progress: RestoreProgress | None = None,
) -> int:
    """Read every table's topic from the beginning to its current end; return records read.

    Records without a key are skipped: no table of the hub's writes one. ``only``
    restores only those partitions of each topic (a partitioned hub's bucket); all of
    them by default. The cyclic garbage collector is paused meanwhile
    (:func:`collector_paused`), for the whole process. ``progress`` follows it.

    :raises HubHaltedError: a record a table cannot take (a state row that does not open
        or parse): the hub does not run on state it cannot read. The error names where the
        record is, not what it holds (state rows hold personal data).
    """
    by_topic = {t.topic: t for t in tables}
    consumer = committed_reader(kafka, group_id=None, **_RESTORE_FETCH)
    await consumer.start()
    read = 0
    try:
        partitions = await partitions_of(consumer, by_topic, only)
        if progress is not None and partitions:
            progress.begin(
                await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
            )
        batches = read_batches(consumer, partitions)
        async with aclosing(batches):
            with collector_paused():
                async for tp, records in batches:
                    load = by_topic[tp.topic].load
                    for record in records:
                        if record.key is not None:
                            try:
                                load(record.key, record.value)
                            except Exception as exc:
                                where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                                raise HubHaltedError(
                                    f"{where} cannot be restored ({describe_exception(exc)})"
                                ) from None  # its message may quote the row
                        read += 1
                    if progress is not None and records:
                        progress.read(tp, records[-1].offset + 1)
    finally:
        if progress is not None:
            progress.done()  # complete, or failed: nothing is being restored any more
        await consumer.stop()
    return read
