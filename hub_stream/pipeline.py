"""The hub's processing loop: consume a batch, handle it, commit it atomically.

Every batch becomes one Kafka transaction holding (1) the messages to agencies, (2) the
audit records, (3) the hub's state changes, and (4) the consumer offsets of the batch. A
worker killed mid-batch leaves an aborted transaction that ``read_committed`` readers
never see; its successor re-reads the batch from the committed offsets and, because
message ids are derived from the input, produces the very same messages again.

Batching is also what makes the hub fast: faust's per-event machinery costs ~150 µs a
message, a batch of a few hundred records costs a few µs each (``docs/benchmarks.md``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.partitioner import murmur2
from aiokafka.producer import sender as aiokafka_sender

from renkei.readers import committed_reader

from .outputs import Output

__all__ = ["BatchHandler", "LoopStats", "Output", "TransactionalLoop"]

log = logging.getLogger(__name__)

# Right after a commit, Kafka answers the next transaction's AddPartitionsToTxn with
# CONCURRENT_TRANSACTIONS until the commit markers are written (about a millisecond
# here); aiokafka then waits a fixed 20 ms (KAFKA-5477's value) before asking again, which
# made every hub batch cost >= 20 ms and every exchange >= 40 ms. Asking again after 2 ms
# costs a few tiny requests and removes that floor (docs/benchmarks.md, latency).
aiokafka_sender.BACKOFF_OVERRIDE = 0.002

# aiokafka's murmur2 is pure Python (≈ 9 µs a key); a person's link code at an agency
# recurs with every message about them, so the hash is worth remembering.
_murmur2 = functools.lru_cache(maxsize=1 << 18)(murmur2)


class BatchHandler(Protocol):
    """What the loop drives. ``handle`` may stage state changes; ``commit`` or ``rollback``
    then makes them permanent or forgets them, after the transaction's fate is known."""

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]: ...

    def tick(self, now_ms: int) -> list[Output]: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass
class LoopStats:
    """Counters a dashboard reads."""

    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    aborted: int = 0
    last_batch_ms: float = 0.0


class TransactionalLoop:
    """Consume → handle → produce + commit offsets, one transaction per batch.

    :param kafka: aiokafka connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param group_id: the consumer group shared by all hub workers.
    :param transactional_id: unique per worker; a restarted worker reuses it, which fences
        any zombie of its predecessor.
    :param pattern: regular expression of the input topics.
    :param handler: the batch handler.
    :param max_batch: most records in one transaction.
    :param poll_ms: longest wait for input, which is also the timer resolution of ``tick``.
    """

    def __init__(
        self,
        *,
        kafka: dict[str, Any],
        group_id: str,
        transactional_id: str,
        pattern: str,
        handler: BatchHandler,
        max_batch: int = 1000,
        poll_ms: int = 50,
    ) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._pattern = pattern
        self._handler = handler
        self._max_batch = max_batch
        self._poll_ms = poll_ms
        self.stats = LoopStats()
        self._consumer = committed_reader(
            kafka,
            group_id=group_id,
            max_poll_records=max_batch,
            metadata_max_age_ms=5_000,  # new agencies' topics are picked up within seconds
        )
        self._producer = AIOKafkaProducer(
            **kafka,
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
        )
        self._running = False
        self._partitions: dict[str, list[int]] = {}
        self._round_robin = 0

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe(pattern=self._pattern)
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await self._consumer.stop()
        await self._producer.stop()

    async def run(self) -> None:
        """Process until :meth:`stop` is called or the producer is fenced."""
        reported = time.monotonic()
        while self._running:
            batch = await self._consumer.getmany(
                timeout_ms=self._poll_ms, max_records=self._max_batch
            )
            await self.process(batch)
            if time.monotonic() - reported >= 10:
                reported = time.monotonic()
                log.info("hub loop: %s", self.stats)

    async def process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Handle one polled batch inside one transaction."""
        started = time.perf_counter()
        records = [r for part in batch.values() for r in part]
        outputs = self._handler.handle(records) if records else []
        outputs += self._handler.tick(int(time.time() * 1000))
        if not records and not outputs:
            return
        offsets = {tp: part[-1].offset + 1 for tp, part in batch.items() if part}
        try:
            await self._producer.begin_transaction()
            await self._send_all(outputs)
            if offsets:
                await self._producer.send_offsets_to_transaction(offsets, self._group_id)
            await self._producer.commit_transaction()
        except ProducerFenced:
            self._handler.rollback()
            self._running = False
            raise
        except (TimeoutError, KafkaError) as exc:
            log.warning("transaction aborted, the batch will be processed again: %r", exc)
            self._handler.rollback()
            self.stats.aborted += 1
            if self._producer._txn_manager is not None:
                await self._producer.abort_transaction()
            for tp, part in batch.items():
                if part:
                    self._consumer.seek(tp, part[0].offset)
            return
        self._handler.commit()
        self.stats.batches += 1
        self.stats.records_in += len(records)
        self.stats.records_out += len(outputs)
        self.stats.last_batch_ms = (time.perf_counter() - started) * 1000

    async def _send_all(self, outputs: list[Output]) -> None:
        """Append the outputs to one record batch per partition, in order.

        ``send()`` costs ≈ 7.6 µs a record here, building batches ourselves ≈ 1.9 µs
        (docs/benchmarks.md). Keys are partitioned with murmur2 like every Kafka client,
        so a person's messages land where any other producer would have put them.
        """
        batches: dict[tuple[str, int], Any] = {}
        for out in outputs:
            partition = out.partition
            if partition is None:
                partition = await self._partition_of(out.topic, out.key)
            tp = (out.topic, partition)
            batch = batches.get(tp)
            if batch is None:
                batch = batches[tp] = self._producer.create_batch()
            if batch.append(key=out.key, value=out.value, timestamp=None) is None:
                await self._producer.send_batch(batch, out.topic, partition=partition)
                batch = batches[tp] = self._producer.create_batch()
                batch.append(key=out.key, value=out.value, timestamp=None)
        for (topic, partition), batch in batches.items():
            await self._producer.send_batch(batch, topic, partition=partition)

    async def _partition_of(self, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if key is None:
            self._round_robin += 1
            return partitions[self._round_robin % len(partitions)]
        index: int = _murmur2(key) & 0x7FFFFFFF
        return partitions[index % len(partitions)]
