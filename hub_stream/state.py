"""The hub's state: in-memory tables backed by compacted Kafka topics.

A table's changes are staged during a batch and written to its ``hub.state.<name>``
topic inside the batch's transaction (:mod:`hub_stream.pipeline`); they become visible
to later batches only when that transaction commits, and are forgotten when it aborts.
A worker that starts reads each topic to its end (``read_committed``) before it
processes anything, so its state always matches the offsets it resumes from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition

from renkei.readers import committed_reader, topic_partitions

from .outputs import Output

__all__ = ["Table", "restore_tables"]

V = TypeVar("V")
_DELETED: Any = object()


class Table(Generic[V]):
    """A string-keyed table whose changes are staged until the batch commits.

    :param topic: the compacted topic that holds it.
    :param encode: value → bytes for the topic.
    :param decode: bytes → value when restoring.
    :param on_change: called with (key, old, new) for every committed change, so derived
        indexes (e.g. the person index) follow the table.
    """

    def __init__(
        self,
        topic: str,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        on_change: Callable[[str, V | None, V | None], None] | None = None,
    ) -> None:
        self.topic = topic
        self._encode = encode
        self._decode = decode
        self._on_change = on_change
        self._data: dict[str, V] = {}
        self._staged: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        staged = self._staged.get(key)
        if staged is not None:
            return None if staged is _DELETED else staged
        return self._data.get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: str, value: V) -> None:
        self._staged[key] = value

    def delete(self, key: str) -> None:
        self._staged[key] = _DELETED

    def items(self) -> Iterator[tuple[str, V]]:
        """Committed items (what survives a crash)."""
        return iter(self._data.items())

    def changes(self) -> list[Output]:
        """The staged changes as records for the batch's transaction."""
        return [
            Output(self.topic, key.encode(), None if v is _DELETED else self._encode(v))
            for key, v in self._staged.items()
        ]

    def commit(self) -> None:
        for key, value in self._staged.items():
            self._apply(key, None if value is _DELETED else value)
        self._staged.clear()

    def rollback(self) -> None:
        self._staged.clear()

    def load(self, key: bytes, value: bytes | None) -> None:
        """Apply one record read from the topic while restoring."""
        self._apply(key.decode(), None if value is None else self._decode(value))

    def _apply(self, key: str, value: V | None) -> None:
        old = self._data.get(key)
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
        if self._on_change is not None:
            self._on_change(key, old, value)


async def restore_tables(kafka: dict[str, Any], tables: list[Table[Any]]) -> int:
    """Read every table's topic from the beginning to its current end; return records read."""
    by_topic = {t.topic: t for t in tables}
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    read = 0
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in by_topic
            for p in await topic_partitions(consumer, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                table = by_topic[tp.topic]
                for record in records:
                    if record.key is not None:
                        table.load(record.key, record.value)
                    read += 1
            for tp in list(remaining):
                # Transaction markers occupy offsets too, so compare positions, not counts.
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return read
