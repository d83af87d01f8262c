"""A transaction's partitions are all registered before its first record batch is appended:
one AddPartitionsToTxn, so no produce request races a second one (Kafka would answer it
NOT_ENOUGH_REPLICAS and aiokafka retry 100 ms later)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from hub_stream.limits import TopicLimits
from hub_stream.outputs import Output
from hub_stream.writer import TransactionWriter


class _Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records = 0

    def append(self, key: bytes | None, value: bytes | None, timestamp: None) -> object | None:
        if self.records == self.room:
            return None  # full: the writer opens another batch for the partition
        self.records += 1
        return object()

    def size(self) -> int:
        return self.records


class _TxnManager:
    def __init__(self) -> None:
        self.registered: set[TopicPartition] = set()

    def maybe_add_partition_to_txn(self, tp: TopicPartition) -> None:
        self.registered.add(tp)


class _Producer:
    """Records which partitions the transaction had registered at each append."""

    def __init__(self) -> None:
        self._txn_manager = _TxnManager()
        self.seen: list[tuple[TopicPartition, frozenset[TopicPartition]]] = []

    def create_batch(self) -> _Batch:
        return _Batch(room=2)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> Any:
        tp = TopicPartition(topic, partition)
        self.seen.append((tp, frozenset(self._txn_manager.registered)))
        self._txn_manager.maybe_add_partition_to_txn(tp)  # what aiokafka does on append
        await asyncio.sleep(0)  # a second batch for a partition waits for the first
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_every_partition_is_in_the_transaction_before_the_first_append() -> None:
    limits = TopicLimits({})
    writer = TransactionWriter({"bootstrap_servers": "127.0.0.1:1"}, "t", lambda *a: [], limits)
    await writer.stop()  # its real producer is never used here
    fake = _Producer()
    writer._producer = fake
    for topic in ("a", "b"):
        limits.known(topic, 1 << 20)
    outputs = [Output("a", b"k", b"v", 0) for _ in range(5)] + [Output("b", b"k", b"v", 1)]
    placed = [await writer._place(out) for out in outputs]
    await writer._send(placed, set())
    everything = frozenset({TopicPartition("a", 0), TopicPartition("b", 1)})
    assert len(fake.seen) == 4  # three batches for a[0] (two records each), one for b[1]
    assert all(registered == everything for _, registered in fake.seen)
