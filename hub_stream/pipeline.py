"""The hub's processing loop: consume a batch, handle it, commit it atomically — and
handle the next batch while this one commits.

Every batch becomes one Kafka transaction holding (1) the messages to agencies, (2) the
audit records, (3) the hub's state changes, and (4) the consumer offsets of the batch. A
worker killed mid-batch leaves aborted transactions that ``read_committed`` readers
never see; its successor re-reads from the committed offsets and, because message ids
are derived from the input, produces the very same messages again.
:class:`.writer.TransactionWriter` fills and checks each transaction: no send in it is
left unchecked, and a record Kafka can never accept is replaced, not lost.

**Transactions in flight** (``in_flight`` > 1). A commit takes several round trips to
the broker; a record arriving meanwhile should not wait for them. So the loop polls and
handles the next batch while the previous one commits, and writes it on the next
producer of a small ring (``<transactional_id>`` and ``<transactional_id>-txn<i>``).
The hub's state is shared by every input partition, so each batch is handled on top of
what the batches before it staged (:mod:`.state` layers it by batch); transactions commit
strictly in batch order (:class:`.inflight.Turn`); an abort takes every later batch with
it, rolls the state back and reads their input again (:mod:`.settling`); a rebalance
waits until everything in flight has settled, and a batch polled before it is read again,
not handled (:mod:`.subscription`); and at start every
id of the ring is initialised, fencing a zombie predecessor's producers before the worker
restores its state (``HubService``). ``docs/architecture.md`` says why each holds.

Where each part lives: what the loop drives and reports (:mod:`.batch_handler`), the
ring of transactions (:mod:`.inflight`) and what fills each (:mod:`.writer`), applying a
settled batch's fate (:mod:`.settling`), and which partitions are read (:mod:`.subscription`).

Batching is also what makes the hub fast: faust's per-event machinery costs ~150 µs a
message, a batch of a few hundred records costs a few µs each (``docs/benchmarks.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError

from renkei.aiokafka_internals import back_off_concurrent_transactions
from renkei.errors import ConfigurationError
from renkei.readers import committed_reader

from .batch_handler import BatchHandler, BatchTrace, LayeredHandler, LoopStats
from .inflight import MAX_IN_FLIGHT, Batch, Transactions
from .settling import Settler
from .subscription import DrainOnRevoke, InputTopics, follow, subscribe
from .unwritable import Replacer

__all__ = ["TransactionalLoop"]

log = logging.getLogger(__name__)

# Ask again 2 ms after CONCURRENT_TRANSACTIONS, then 4, 8, 16, 20 ms, not aiokafka's fixed
# 20 ms, which put a 20 ms floor under every batch (renkei/aiokafka_internals.py,
# docs/benchmarks.md).
back_off_concurrent_transactions(0.002, 0.020)

_TOPIC = attrgetter("topic")


class TransactionalLoop:
    """Consume → handle → produce + commit offsets, one transaction per batch.

    :param kafka: aiokafka connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param group_id: the consumer group shared by all hub workers.
    :param transactional_id: unique per worker; a restarted worker reuses it, which fences
        any zombie of its predecessor.
    :param pattern: regular expression of the input topics (unless ``inputs`` names them).
    :param inputs: the input topics by name, subscribed again whenever they change.
    :param partitions: instead of either, these partitions, assigned by hand (a
        partitioned hub's task: the group's committed offsets are still where it starts).
    :param handler: the batch handler (a :class:`LayeredHandler` for ``in_flight`` > 1).
    :param replace: builds the stand-ins for a record Kafka refuses (:mod:`.unwritable`).
    :param max_batch: most records in one transaction.
    :param poll_ms: longest wait for input, which is also the timer resolution of ``tick``.
    :param on_polled: called after every poll (readiness: the loop is consuming).
    :param on_committed: called with each committed batch's :class:`BatchTrace`.
    :param on_aborted: called with the transactions aborted since its last call.
    :param in_flight: transactions in flight at most (1: each batch commits before the
        next poll).
    :param reserved: ids of the ring initialised (fenced) at start, at least
        ``in_flight``: a worker reserves :data:`MAX_IN_FLIGHT`, so that a predecessor
        that ran with more transactions in flight is fenced too.
    :param topic_refresh_ms: how often the consumer reads its topics' metadata, which is
        when a topic named (or matching ``pattern``) but created later is found.
    :raises ConfigurationError: no input given, ``in_flight`` out of range, or > 1 with a
        handler that is not layered.
    """

    def __init__(
        self,
        *,
        kafka: dict[str, Any],
        group_id: str,
        transactional_id: str,
        handler: BatchHandler,
        replace: Replacer,
        max_batch: int = 1000,
        poll_ms: int = 50,
        on_polled: Callable[[TransactionalLoop], None] | None = None,
        on_committed: Callable[[BatchTrace], None] | None = None,
        on_aborted: Callable[[int], None] | None = None,
        partitions: Sequence[TopicPartition] = (),
        in_flight: int = 1,
        reserved: int = 1,
        topic_refresh_ms: int = 5_000,
        inputs: InputTopics | None = None,
        pattern: str = "",
    ) -> None:
        if not (partitions or inputs or pattern):
            raise ConfigurationError("a loop needs its input: partitions, topics or a pattern")
        if not 1 <= in_flight <= MAX_IN_FLIGHT:
            raise ConfigurationError(f"in_flight must be 1 to {MAX_IN_FLIGHT}, not {in_flight}")
        if in_flight > 1 and not isinstance(handler, LayeredHandler):
            raise ConfigurationError(
                f"{type(handler).__name__} has no seal(): its state is not layered by "
                "batch, so it cannot have more than one transaction in flight"
            )
        self._kafka = kafka
        self._group_id = group_id
        self._pattern = pattern
        self._partitions = list(partitions)
        self._inputs = inputs
        self._listener = DrainOnRevoke(self.drain)
        self._handler = handler
        self._layered = in_flight > 1
        self._max_batch = max_batch
        self._poll_ms = poll_ms
        self._on_polled = on_polled
        self.stats = LoopStats()
        self._consumer: AIOKafkaConsumer = committed_reader(
            kafka,
            group_id=group_id,
            max_poll_records=max_batch,
            metadata_max_age_ms=topic_refresh_ms,  # how soon a new agency's topic is read
        )
        self._transactions = Transactions(
            kafka, transactional_id, replace, in_flight, max(in_flight, reserved)
        )
        self.writer = self._transactions.writers[0]
        """The first producer of the ring (its partitioner and limits are every one's)."""
        self._settler = Settler(
            self._transactions, handler, self.stats, self._seek, on_committed, on_aborted
        )
        self._failure: BaseException | None = None
        self._running = False
        # Handling a batch and settling exclude each other (a rebalance settles from the
        # consumer's own task); a batch polled before an abort's seek is read again.
        self._lock = asyncio.Lock()
        self._looping = False
        self._exited = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------

    async def start_writers(self) -> None:
        """Initialise every id of the ring, fencing a predecessor's producers (a no-op if
        done). The worker calls it before it restores its state, so no zombie can commit
        after the restore has read the state topics."""
        await self._transactions.start()

    async def start(self) -> None:
        await self.start_writers()
        await self._consumer.start()
        subscribe(
            self._consumer,
            pattern=self._pattern,
            partitions=self._partitions,
            topics=self._inputs.names() if self._inputs is not None else (),
            listener=self._listener,
        )
        self._running = True

    async def stop(self) -> None:
        """Let :meth:`run` return, commit or abort what is in flight, then close the
        consumer and the producers."""
        self._running = False
        try:
            if self._looping:
                await self._exited.wait()  # at most a poll and a settle away
            await self.drain()
        finally:
            await self._consumer.stop()
            await self._transactions.stop()

    def halt(self) -> None:
        """Process no further batch (those in flight commit or abort)."""
        self._running = False

    def assignment(self) -> set[TopicPartition]:
        """The input partitions this worker holds now."""
        return set(self._consumer.assignment())

    def subscribed(self) -> set[str]:
        """The input topics subscribed (by name or matched by the pattern) now."""
        return set(self._consumer.subscription())

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Process until :meth:`stop` is called, the producer is fenced or the hub halts."""
        reported = time.monotonic()
        self._looping = True
        self._exited.clear()
        try:
            while self._running:
                async with self._lock:
                    # The next batch's producer must be free: the batch before on it settled.
                    await self._settle(wait=self._transactions.full)
                await self._transactions.sent()
                if self._inputs is not None and not self._partitions:
                    follow(self._consumer, self._inputs, self._listener)
                aborts = self._settler.poll_begins()
                revocations = self._listener.revocations
                batch = await self._consumer.getmany(
                    timeout_ms=self._poll_ms, max_records=self._max_batch
                )
                if self._on_polled is not None:
                    self._on_polled(self)
                async with self._lock:
                    if (
                        not self._running
                        or self._settler.aborts != aborts
                        or self._listener.revocations != revocations
                    ):
                        # Polled before a seek back or a rebalance (its partitions may
                        # have another owner now), or too late: put back, unhandled.
                        self._settler.read_again(batch)
                        continue
                    await self.process(batch)
                if time.monotonic() - reported >= 10:
                    reported = time.monotonic()
                    log.info("hub loop: %s, %d in flight", self.stats, len(self._transactions))
        finally:
            self._looping = False
            self._exited.set()
        if self._failure is not None:
            raise self._failure

    async def process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Handle one polled batch and start its transaction; with one transaction in
        flight, wait for it to commit or abort. (:meth:`run` calls it; call it directly
        only when nothing else drives the loop.)"""
        polled_s = time.monotonic()
        records = [r for part in batch.values() for r in part]
        outputs = self._handler.handle(records) if records else []
        outputs += self._handler.tick(int(time.time() * 1000))
        if not records and not outputs:
            return
        if self._layered:
            self._handler.seal()  # type: ignore[attr-defined]  # checked in __init__
        offsets = {tp: part[-1].offset + 1 for tp, part in batch.items() if part}
        written = Batch(
            {tp: part[0].offset for tp, part in batch.items() if part},
            tuple((r.topic, r.partition, r.offset) for r in records),
            len(outputs), polled_s, time.monotonic(),
            # Counted in C, once a batch: the metrics' outputs by kind (.metrics).
            Counter(map(_TOPIC, outputs)),
        )  # fmt: skip
        self._transactions.write(written, outputs, offsets, self._group_id)
        if not self._layered:
            await self._settle(wait=True)

    # -- settling: commit or abort in batch order ---------------------------------------

    async def drain(self) -> None:
        """Return once every batch in flight has committed or aborted: before a rebalance
        moves partitions (from the consumer's task, while :meth:`run` polls), and at stop.

        A failure that halts the loop is kept for :meth:`run` to raise, not raised here.
        """
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._settle_all()

    async def _settle_all(self) -> None:
        while self._transactions:
            await self._settle(wait=True)

    async def _settle(self, wait: bool) -> None:
        """Apply the fate of the batches whose transactions ended, oldest first.

        :raises Exception: what halts the loop (a fenced producer, an unwritable output),
            after the batches in flight have aborted and their state is rolled back.
        """
        cause = await self._settler.settle(wait)
        if cause is not None:
            self._failure = cause
            self._running = False
            raise cause

    def _seek(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            # Revoked meanwhile: its next owner starts from the committed offset anyway.
            with contextlib.suppress(IllegalStateError):
                self._consumer.seek(tp, offset)
