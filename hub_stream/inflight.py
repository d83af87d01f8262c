"""The transactions a loop has in flight: a ring of producers, and the batches on it in order.

:class:`Transactions` writes each batch on the next producer of the ring
(``<transactional_id>``, then ``<transactional_id>-txn<i>``) as soon as it is handled,
and hands the batches back, oldest first, once their fate is known (:meth:`settle`): a
run of committed batches, or — when the oldest aborted — that batch and every later one,
which could not commit without it. A :class:`Turn` per batch keeps the transactions in
batch order (:mod:`.writer`). What the loop does with a settled batch (commit or roll back
its state, seek back) is the loop's (:mod:`.pipeline`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from .limits import TopicLimits
from .outputs import Output
from .unwritable import Replacer
from .writer import TransactionAborted, TransactionWriter

__all__ = ["MAX_IN_FLIGHT", "Batch", "Settled", "Transactions", "Turn", "ring_ids"]

MAX_IN_FLIGHT = 4
"""Most transactions a loop keeps in flight; a worker fences this many ids at start."""


def ring_ids(transactional_id: str, count: int) -> list[str]:
    """The transactional ids of a ring of ``count`` producers (the first is the worker's
    own id, so a loop with one transaction at a time uses the id it always used)."""
    return [transactional_id, *(f"{transactional_id}-txn{i}" for i in range(1, count))]


class Turn:
    """One batch's place in the order of transactions: the batch after it waits on it.

    :param previous: the batch before (``None``: nothing is in flight before it).
    """

    def __init__(self, previous: Turn | None) -> None:
        self._previous = previous
        self._sent = asyncio.Event()
        self._done = asyncio.Event()
        self.committed = False
        """Set with :meth:`finish`: the transaction committed."""

    async def may_send(self) -> None:
        """Return once the batch before has every record acknowledged.

        :raises TransactionAborted: it aborted instead.
        """
        previous = self._previous
        if previous is not None:
            await previous._sent.wait()
            if previous._done.is_set() and not previous.committed:
                raise TransactionAborted("an earlier batch's transaction aborted")

    def sent(self) -> None:
        """Every record of this batch is acknowledged (in the transaction, not committed)."""
        self._sent.set()

    async def wait_sent(self) -> None:
        """Return once this batch's records are acknowledged, or it has ended."""
        await self._sent.wait()

    async def may_commit(self) -> None:
        """Return once the batch before has committed.

        :raises TransactionAborted: it aborted instead.
        """
        previous = self._previous
        if previous is not None:
            await previous._done.wait()
            if not previous.committed:
                raise TransactionAborted("an earlier batch's transaction aborted")
            self._previous = None  # no chain of every batch ever written

    def finish(self, committed: bool) -> None:
        """This batch's transaction committed (``True``) or aborted (``False``)."""
        self.committed = committed
        self._done.set()
        self._sent.set()  # an aborted batch releases the one waiting to send


@dataclass(slots=True)
class Batch:
    """One handled batch, from its poll to its commit."""

    first: dict[TopicPartition, int]
    """Each input partition's first offset in it: where to read again if it aborts."""
    records: tuple[tuple[str, int, int], ...]
    """(topic, partition, offset) of each input record."""
    outputs: int
    polled_s: float
    handled_s: float
    topics: Counter[str] = field(default_factory=Counter)
    """Its outputs, by topic."""
    commit_s: float = 0.0
    """Seconds its transaction spent committing (:attr:`.writer.TransactionWriter.commit_s`)."""
    committed_s: float = 0.0
    task: asyncio.Task[tuple[float, float]] = field(init=False, repr=False)


@dataclass(slots=True)
class Settled:
    """What :meth:`Transactions.settle` found, oldest first."""

    committed: list[Batch] = field(default_factory=list)
    aborted: list[Batch] = field(default_factory=list)
    """The oldest batch not committed and every later one: none of them committed."""
    cause: BaseException | None = None
    """Why the first of ``aborted`` did not commit."""


class Transactions:
    """A ring of transactional producers and the batches in flight on them.

    :param kafka: aiokafka connection keyword arguments.
    :param transactional_id: the first id of the ring (the worker's own).
    :param replace: builds the stand-ins for a record Kafka refuses.
    :param size: producers in the ring: transactions in flight at most.
    :param reserved: ids fenced at start, at least ``size`` (a predecessor may have run
        with a larger ring).
    """

    def __init__(
        self, kafka: dict[str, Any], transactional_id: str, replace: Replacer, size: int,
        reserved: int,
    ) -> None:  # fmt: skip
        self._kafka = kafka
        ids = ring_ids(transactional_id, max(size, reserved))
        self.limits = TopicLimits(kafka)
        self.writers = [TransactionWriter(kafka, i, replace, self.limits) for i in ids[:size]]
        self._spare_ids = ids[size:]
        self._batches: deque[Batch] = deque()
        self._last: Turn | None = None
        self._written = 0
        self._started = False

    def __len__(self) -> int:
        """Batches in flight (written, not yet settled)."""
        return len(self._batches)

    @property
    def full(self) -> bool:
        """The next producer of the ring still has a batch in flight."""
        return len(self._batches) >= len(self.writers)

    @property
    def aborted(self) -> int:
        return sum(w.aborted for w in self.writers)

    @property
    def replaced(self) -> int:
        return sum(w.replaced for w in self.writers)

    async def sent(self) -> None:
        """Return once the newest batch has every record acknowledged (or has ended).

        The next batch could not send before that anyway (:class:`Turn`); polling it only
        then lets it gather what arrived meanwhile — fewer, larger transactions, each
        costing the hub about the same CPU whatever its size — and still handles it
        while this one's offsets and commit are under way.
        """
        if self._last is not None:
            await self._last.wait_sent()

    async def start(self) -> None:
        """Initialise every id of the ring, which fences a predecessor's producers and
        aborts what they left open (a no-op if started)."""
        if self._started:
            return
        await self.limits.start()
        for writer in self.writers:
            await writer.start()
        for spare in self._spare_ids:  # fenced, then let go
            producer = AIOKafkaProducer(**self._kafka, transactional_id=spare)
            await producer.start()
            await producer.stop()
        self._started = True

    async def stop(self) -> None:
        for writer in self.writers:
            await writer.stop()
        await self.limits.stop()

    def write(
        self, batch: Batch, outputs: list[Output], offsets: dict[TopicPartition, int],
        group_id: str,
    ) -> None:  # fmt: skip
        """Start ``batch``'s transaction on the next producer (which must be free: not
        :attr:`full`)."""
        assert not self.full, "the next producer still has a batch in flight"
        writer = self.writers[self._written % len(self.writers)]
        self._written += 1
        turn = self._last = Turn(self._last)

        async def write() -> tuple[float, float]:
            try:
                await writer.write(outputs, offsets, group_id, turn)
            except BaseException:
                turn.finish(False)
                raise
            turn.finish(True)
            # The writer has one transaction at a time, so its mark is this batch's.
            return writer.commit_s, time.monotonic()

        batch.task = asyncio.create_task(write(), name="hub-transaction")
        self._batches.append(batch)

    async def settle(self, wait: bool) -> Settled:
        """The batches at the head whose transactions have ended, oldest first; with
        ``wait``, wait for the oldest to end.

        When one aborted, it and every later batch are taken (their transactions abort
        too, each waiting for the one before), and once they have all ended the ring is
        free. A failure other than an abort (a fenced producer, an unwritable output) is
        ``cause``, with the same batches aborted.
        """
        settled = Settled()
        batches = self._batches
        while batches and (wait or batches[0].task.done()):
            wait = False
            head = batches[0]
            try:
                # Shielded: cancelling the waiter must not cancel a commit under way.
                head.commit_s, head.committed_s = await asyncio.shield(head.task)
            except asyncio.CancelledError:
                if head.task.cancelled():
                    raise RuntimeError("a hub transaction was cancelled") from None
                raise  # we were cancelled; nothing is settled, a later settle takes it
            except Exception as exc:
                settled.aborted = list(batches)
                settled.cause = exc
                batches.clear()
                self._last = None
                later = await asyncio.gather(
                    *(b.task for b in settled.aborted[1:]), return_exceptions=True
                )
                if isinstance(exc, TransactionAborted):  # a fatal later failure counts more
                    settled.cause = next(
                        (r for r in later if isinstance(r, BaseException)
                         and not isinstance(r, TransactionAborted)), exc,
                    )  # fmt: skip
                return settled
            settled.committed.append(batches.popleft())
        return settled
