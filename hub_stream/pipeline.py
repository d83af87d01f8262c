"""The hub's processing loop: consume a batch, handle it, commit it atomically.

Every batch becomes one Kafka transaction holding (1) the messages to agencies, (2) the
audit records, (3) the hub's state changes, and (4) the consumer offsets of the batch. A
worker killed mid-batch leaves an aborted transaction that ``read_committed`` readers
never see; its successor re-reads the batch from the committed offsets and, because
message ids are derived from the input, produces the very same messages again.
:class:`.writer.TransactionWriter` fills and checks the transaction: no send in it is
left unchecked, and a record Kafka can never accept is replaced, not lost.

Batching is also what makes the hub fast: faust's per-event machinery costs ~150 µs a
message, a batch of a few hundred records costs a few µs each (``docs/benchmarks.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import ProducerFenced

from renkei.aiokafka_internals import set_transaction_retry_backoff
from renkei.errors import HubHaltedError
from renkei.readers import committed_reader

from .outputs import Output
from .unwritable import Replacer
from .writer import TransactionAborted, TransactionWriter

__all__ = ["BatchHandler", "BatchTrace", "LoopStats", "Output", "TransactionalLoop"]

log = logging.getLogger(__name__)

# Ask again 2 ms after CONCURRENT_TRANSACTIONS, not aiokafka's fixed 20 ms, which put a
# 20 ms floor under every batch (renkei/aiokafka_internals.py, docs/benchmarks.md).
set_transaction_retry_backoff(0.002)


class BatchHandler(Protocol):
    """What the loop drives. ``handle`` may stage state changes; ``commit`` or ``rollback``
    then makes them permanent or forgets them, after the transaction's fate is known."""

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]: ...

    def tick(self, now_ms: int) -> list[Output]: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass
class LoopStats:
    """Counters a dashboard reads (``replaced``: records Kafka refused, written as stand-ins)."""

    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    aborted: int = 0
    replaced: int = 0
    last_batch_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchTrace:
    """When one batch passed each stage (``time.monotonic()``, the same clock in every
    process of a machine), for the latency profile (``benchmarks/hops.py``)."""

    polled_s: float
    handled_s: float
    committed_s: float
    records: tuple[tuple[str, int, int], ...]
    """(topic, partition, offset) of each input record."""


class TransactionalLoop:
    """Consume → handle → produce + commit offsets, one transaction per batch.

    :param kafka: aiokafka connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param group_id: the consumer group shared by all hub workers.
    :param transactional_id: unique per worker; a restarted worker reuses it, which fences
        any zombie of its predecessor.
    :param pattern: regular expression of the input topics.
    :param partitions: instead of ``pattern``, these partitions, assigned by hand (a
        partitioned hub's task: the group's committed offsets are still where it starts).
    :param handler: the batch handler.
    :param replace: builds the stand-ins for a record Kafka refuses (:mod:`.unwritable`).
    :param max_batch: most records in one transaction.
    :param poll_ms: longest wait for input, which is also the timer resolution of ``tick``.
    :param on_polled: called after every poll (readiness: the loop is consuming).
    :param on_committed: called with each committed batch's :class:`BatchTrace`.
    """

    def __init__(
        self,
        *,
        kafka: dict[str, Any],
        group_id: str,
        transactional_id: str,
        pattern: str,
        handler: BatchHandler,
        replace: Replacer,
        max_batch: int = 1000,
        poll_ms: int = 50,
        on_polled: Callable[[TransactionalLoop], None] | None = None,
        on_committed: Callable[[BatchTrace], None] | None = None,
        partitions: Sequence[TopicPartition] = (),
    ) -> None:
        self._group_id = group_id
        self._pattern = pattern
        self._partitions = list(partitions)
        self._handler = handler
        self._max_batch = max_batch
        self._poll_ms = poll_ms
        self._on_polled = on_polled
        self._on_committed = on_committed
        self.stats = LoopStats()
        self._consumer = committed_reader(
            kafka,
            group_id=group_id,
            max_poll_records=max_batch,
            metadata_max_age_ms=5_000,  # new agencies' topics are picked up within seconds
        )
        self.writer = TransactionWriter(kafka, transactional_id, replace)
        self._running = False

    async def start(self) -> None:
        await self.writer.start()
        await self._consumer.start()
        if self._partitions:
            self._consumer.assign(self._partitions)
        else:
            self._consumer.subscribe(pattern=self._pattern)
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await self._consumer.stop()
        await self.writer.stop()

    def halt(self) -> None:
        """Process no further batch (the one under way finishes or aborts)."""
        self._running = False

    def assignment(self) -> set[TopicPartition]:
        """The input partitions this worker holds now."""
        return set(self._consumer.assignment())

    async def run(self) -> None:
        """Process until :meth:`stop` is called, the producer is fenced or the hub halts."""
        reported = time.monotonic()
        while self._running:
            batch = await self._consumer.getmany(
                timeout_ms=self._poll_ms, max_records=self._max_batch
            )
            if self._on_polled is not None:
                self._on_polled(self)
            await self.process(batch)
            if time.monotonic() - reported >= 10:
                reported = time.monotonic()
                log.info("hub loop: %s", self.stats)

    async def process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Handle one polled batch inside one transaction."""
        started = time.perf_counter()
        polled_s = time.monotonic()
        records = [r for part in batch.values() for r in part]
        outputs = self._handler.handle(records) if records else []
        outputs += self._handler.tick(int(time.time() * 1000))
        handled_s = time.monotonic()
        if not records and not outputs:
            return
        offsets = {tp: part[-1].offset + 1 for tp, part in batch.items() if part}
        try:
            await self.writer.write(outputs, offsets, self._group_id)
        except (ProducerFenced, HubHaltedError):
            self._handler.rollback()
            self._running = False
            raise
        except TransactionAborted as exc:
            log.warning("transaction aborted, the batch will be processed again: %s", exc)
            self._handler.rollback()
            for tp, part in batch.items():
                if part:
                    self._consumer.seek(tp, part[0].offset)
            return
        finally:
            self.stats.aborted = self.writer.aborted
            self.stats.replaced = self.writer.replaced
        self._handler.commit()
        self.stats.batches += 1
        self.stats.records_in += len(records)
        self.stats.records_out += len(outputs)
        self.stats.last_batch_ms = (time.perf_counter() - started) * 1000
        if self._on_committed is not None:
            coordinates = tuple((r.topic, r.partition, r.offset) for r in records)
            self._on_committed(BatchTrace(polled_s, handled_s, time.monotonic(), coordinates))
