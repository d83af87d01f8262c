"""Write one batch's outputs and input offsets in one Kafka transaction, or nothing.

Every record batch sent in a transaction is awaited and checked before the commit:
aiokafka commits a transaction even when one of its batches failed, which once lost a
dead letter just over the broker's ``message.max.bytes`` while the rest committed.

* Before sending, batches are packed under each topic's limit (:mod:`.limits`) and a
  single record over it is replaced by stand-ins (:mod:`.unwritable`).
* When a batch fails anyway, the transaction is aborted and the producer restarted (the
  failed batch used up sequence numbers the broker never saw, which would fail every
  later batch to that partition), and the same outputs are written again in a new
  transaction: a record the broker refused for itself (too large, invalid) is replaced,
  a refused batch of several records is resent one record a batch to find the culprit.
* Any other failure raises :class:`TransactionAborted`; the loop then forgets the batch's
  state changes and processes its input again.

**In turn.** The loop writes the next batch while this one commits, each on a producer of
its own (:mod:`.pipeline`). Their turns (:class:`InTurn`) keep them in batch order: a
batch sends its records only once the batch before it has all of its records acknowledged
(so every partition holds them in batch order), and commits only once that batch has
committed (so the group's offsets only move forward, and no batch commits on top of an
aborted one).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RecordListTooLargeError,
)
from aiokafka.partitioner import murmur2

from renkei.aiokafka_internals import (
    RECORD_BATCH_OVERHEAD,
    add_to_transaction,
    can_abort,
    record_size,
)
from renkei.errors import UnwritableOutputError

from .limits import TopicLimits
from .outputs import Output
from .unwritable import Replacer

__all__ = ["TRANSACTION_TIMEOUT_MS", "InTurn", "TransactionAborted", "TransactionWriter"]

TRANSACTION_TIMEOUT_MS = 30_000
"""How long a transaction may stay open before its coordinator aborts it."""

log = logging.getLogger(__name__)

# Per-record verdicts of the broker: sending the same bytes again can never succeed.
_REFUSED_RECORD = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)
_ATTEMPTS = 4  # replace pre-checked, find the batch, isolate its records, replace the one

# aiokafka's murmur2 is pure Python (≈ 9 µs a key); a person's link code at an agency
# recurs with every message about them, so the hash is worth remembering.
_murmur2 = functools.lru_cache(maxsize=1 << 18)(murmur2)


class TransactionAborted(Exception):  # a control-flow signal to the loop
    """The transaction was aborted; the batch must be processed again."""


class InTurn(Protocol):
    """A transaction's place in the order of those in flight (:class:`.inflight.Turn`)."""

    async def may_send(self) -> None:
        """Return once the transaction before has every record acknowledged."""

    def sent(self) -> None:
        """Every record of this transaction is acknowledged."""

    async def may_commit(self) -> None:
        """Return once the transaction before has committed."""


@dataclass(slots=True)
class _Placed:
    out: Output
    partition: int
    size: int  # upper bound of the bytes it adds to a record batch
    stand_in: bool = False


class TransactionWriter:
    """The hub's transactional producer and how it fills a transaction.

    :param kafka: aiokafka connection keyword arguments.
    :param transactional_id: the worker's transactional id.
    :param replace: builds stand-ins for a record Kafka refuses.
    :param limits: per-topic batch limits, started and stopped by whoever passes them; by
        default its own, read from the brokers.
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        transactional_id: str,
        replace: Replacer,
        limits: TopicLimits | None = None,
    ) -> None:
        self._kafka = kafka
        self._transactional_id = transactional_id
        self._replace = replace
        self.limits = limits if limits is not None else TopicLimits(kafka)
        self._owns_limits = limits is None  # shared limits are started by their owner
        self.aborted = 0
        self.replaced = 0
        self.commit_s = 0.0
        """Seconds the last transaction spent committing: its offsets sent and EndTxn, not
        the wait for the transaction before it (the metrics' commit time)."""
        self._producer = self._new_producer()
        self._partitions: dict[str, list[int]] = {}
        self._round_robin = 0

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self._kafka,
            transactional_id=self._transactional_id,
            # A killed worker's open transaction holds back every read_committed reader of
            # its partitions until the coordinator aborts it: after this long, not
            # aiokafka's 60 s. A hub transaction takes milliseconds, but one in flight
            # when a broker dies waits out the leader's election (KRaft's broker session
            # timeout, 9 s by default); aborted, it would fence the worker.
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            enable_idempotence=True,
            acks="all",
            linger_ms=0,  # the loop fills whole record batches itself: lingering only waits
            max_batch_size=256 * 1024,
            max_request_size=self.limits.max_request_size,
        )

    async def start(self) -> None:
        """Start the producer: its ``InitProducerId`` fences a predecessor with its id."""
        if self._owns_limits:
            await self.limits.start()
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()
        if self._owns_limits:
            await self.limits.stop()

    async def write(
        self,
        outputs: list[Output],
        offsets: dict[TopicPartition, int],
        group_id: str,
        turn: InTurn | None = None,
    ) -> None:
        """Commit ``outputs`` and the consumer ``offsets`` in one transaction.

        :param turn: its place in the order of transactions in flight, if there are others.
        :raises TransactionAborted: nothing was written; process the batch again (also
            when the batch before it in ``turn``'s order aborted).
        :raises ProducerFenced: another worker took over this transactional id.
        :raises UnwritableOutputError: Kafka refuses even a stand-in (misconfigured topic).
        """
        placed = [await self._place(out) for out in outputs]
        isolate: set[tuple[str, int]] = set()
        for _ in range(_ATTEMPTS):
            placed = await self._pre_check(placed)
            failures = await self._transaction(placed, offsets, group_id, isolate, turn)
            if not failures:
                return
            self.aborted += 1
            await self._restart()
            for batch, exc in failures:
                if isinstance(exc, ProducerFenced):
                    raise exc
                if not isinstance(exc, _REFUSED_RECORD):
                    raise TransactionAborted(f"a send failed: {exc!r}") from exc
                log.warning("broker refused a batch for %s[%d]: %r", *_tp(batch[0]), exc)
                self.limits.forget(batch[0].out.topic)
                if len(batch) > 1:
                    isolate.add(_tp(batch[0]))
                    continue
                placed = await self._substitute(placed, batch[0], f"refused by Kafka: {exc!r}")
        raise TransactionAborted(f"still refused after {_ATTEMPTS} attempts")

    async def _transaction(
        self,
        placed: list[_Placed],
        offsets: dict[TopicPartition, int],
        group_id: str,
        isolate: set[tuple[str, int]],
        turn: InTurn | None,
    ) -> list[tuple[list[_Placed], BaseException]]:
        producer = self._producer
        try:
            await producer.begin_transaction()
            if turn is not None:
                await turn.may_send()
            sent = await self._send(placed, isolate)
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            failures = [
                (batch, r) for (batch, _), r in zip(sent, results, strict=True)
                if isinstance(r, BaseException)
            ]  # fmt: skip
            if failures:
                return failures
            if turn is not None:
                turn.sent()
            # After the records, not beside them: AddOffsetsToTxn while a produce request
            # is verified against the transaction makes Kafka ≥ 3.6 answer the produce
            # NOT_ENOUGH_REPLICAS (its retriable code for old clients), and aiokafka
            # retries it 100 ms later (measured: p90 of a transaction 8 → 107 ms).
            began = time.monotonic()
            if offsets:
                await producer.send_offsets_to_transaction(offsets, group_id)
            offsets_s = time.monotonic() - began
            if turn is not None:
                await turn.may_commit()
            began = time.monotonic()
            await producer.commit_transaction()
            self.commit_s = offsets_s + time.monotonic() - began
        except ProducerFenced:
            raise
        except (TimeoutError, KafkaError, TransactionAborted) as exc:
            self.aborted += 1
            if can_abort(producer):
                await producer.abort_transaction()
            if isinstance(exc, TransactionAborted):
                raise
            raise TransactionAborted(repr(exc)) from exc
        return []

    async def _send(
        self, placed: list[_Placed], isolate: set[tuple[str, int]]
    ) -> list[tuple[list[_Placed], asyncio.Future[Any]]]:
        """Append in order to one record batch per partition, each under the topic's limit.

        ``send()`` costs ≈ 7.6 µs a record here, building batches ourselves ≈ 1.9 µs
        (docs/benchmarks.md).
        """
        producer = self._producer
        open_: dict[tuple[str, int], tuple[Any, list[_Placed]]] = {}
        sent: list[tuple[list[_Placed], asyncio.Future[Any]]] = []
        # One AddPartitionsToTxn before any produce (aiokafka_internals says why).
        add_to_transaction(producer, {TopicPartition(*_tp(item)) for item in placed})

        async def flush(tp: tuple[str, int]) -> None:
            batch, items = open_.pop(tp)
            sent.append((items, await producer.send_batch(batch, tp[0], partition=tp[1])))

        for item in placed:
            tp = _tp(item)
            current = open_.get(tp)
            if current is not None and (
                tp in isolate or current[0].size() + item.size > await self.limits.of(tp[0])
            ):
                await flush(tp)
                current = None
            if current is None:
                current = open_[tp] = (producer.create_batch(), [])
            if current[0].append(key=item.out.key, value=item.out.value, timestamp=None) is None:
                await flush(tp)  # aiokafka's own batch size; a fresh batch takes any record
                current = open_[tp] = (producer.create_batch(), [])
                current[0].append(key=item.out.key, value=item.out.value, timestamp=None)
            current[1].append(item)
        for tp in list(open_):
            await flush(tp)
        return sent

    async def _pre_check(self, placed: list[_Placed]) -> list[_Placed]:
        for item in list(placed):
            limit = await self.limits.of(item.out.topic)
            if RECORD_BATCH_OVERHEAD + item.size > limit:
                reason = (
                    f"as a record batch it takes up to {RECORD_BATCH_OVERHEAD + item.size} "
                    f"bytes, over the {limit}-byte limit of {item.out.topic} (the smaller of "
                    "its max.message.bytes and the producer's max_request_size)"
                )
                placed = await self._substitute(placed, item, reason)
        return placed

    async def _substitute(self, placed: list[_Placed], item: _Placed, reason: str) -> list[_Placed]:
        if item.stand_in:
            raise UnwritableOutputError(
                f"Kafka refuses even the {item.size}-byte stand-in for a record to "
                f"{item.out.topic}[{item.partition}] ({reason}): raise that topic's "
                "max.message.bytes"
            )
        stand_ins = [
            await self._place(out) for out in self._replace(item.out, item.partition, reason)
        ]
        for stand_in in stand_ins:
            stand_in.stand_in = True
        self.replaced += 1
        at = next(i for i, p in enumerate(placed) if p is item)
        return [*placed[:at], *stand_ins, *placed[at + 1 :]]

    async def _restart(self) -> None:
        """Abort, and start a new producer epoch (fresh sequence numbers)."""
        old = self._producer
        try:
            if can_abort(old):
                await old.abort_transaction()
        except (TimeoutError, KafkaError) as exc:
            log.warning("abort failed, the new producer's epoch aborts it: %r", exc)
        await old.stop()
        self._producer = self._new_producer()
        await self._producer.start()

    async def _place(self, out: Output) -> _Placed:
        partition = out.partition
        if partition is None:
            partition = await self.partition_of(out.topic, out.key)
        return _Placed(out, partition, record_size(out.key, out.value))

    async def partition_of(self, topic: str, key: bytes | None) -> int:
        """Where ``key`` goes: murmur2 like every Kafka client, so a person's messages land
        where any other producer would have put them; round robin without a key."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if key is None:
            self._round_robin += 1
            return partitions[self._round_robin % len(partitions)]
        index: int = _murmur2(key) & 0x7FFFFFFF
        return partitions[index % len(partitions)]


def _tp(item: _Placed) -> tuple[str, int]:
    return item.out.topic, item.partition
