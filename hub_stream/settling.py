"""Settling the loop's transactions: commit or abort, in batch order.

When a batch's transaction ends, :class:`Settler` applies its fate, oldest batch first
(:meth:`.inflight.Transactions.settle` hands them back in that order):

* committed: the handler commits the batch's state layer and the loop's counters move;
* aborted: the batch and every later one (which could not commit without it) are
  forgotten — the handler rolls its state back to before the oldest — and each input
  partition is sought back to the first record any of them held, so they are handled
  again with the same message ids;
* a fenced producer or an output Kafka refuses even as a stand-in: the same rollback,
  nothing is read again, and the cause is returned for the loop to halt on.

A poll that was out while an abort sought back is put back too (:meth:`read_again`): it
may hold records from before the seek or after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiokafka import ConsumerRecord, TopicPartition

from .batch_handler import BatchHandler, BatchTrace, LoopStats
from .inflight import Batch, Settled, Transactions
from .writer import TransactionAborted

__all__ = ["Settler"]

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class Settler:
    """Applies the fate of each batch in flight to the handler, the counters and the
    consumer's positions.

    :param transactions: the ring of transactions the batches are on.
    :param handler: commits or rolls back each batch's state.
    :param stats: the loop's counters, updated as batches settle.
    :param seek: moves the consumer's position of each partition given (the loop's, so
        that it always reaches the consumer the loop polls).
    :param on_committed: called with each committed batch's :class:`BatchTrace`.
    :param on_aborted: called with the number of transactions aborted since the last call
        (the metrics: a loop's own count starts again with each loop).
    """

    def __init__(
        self,
        transactions: Transactions,
        handler: BatchHandler,
        stats: LoopStats,
        seek: Callable[[dict[TopicPartition, int]], None],
        on_committed: Callable[[BatchTrace], None] | None = None,
        on_aborted: Callable[[int], None] | None = None,
    ) -> None:
        self._transactions = transactions
        self._handler = handler
        self._stats = stats
        self._seek = seek
        self._on_committed = on_committed
        self._on_aborted = on_aborted
        self.aborts = 0
        """Aborts settled so far: a poll that began before the latest is read again."""
        self._sought: dict[TopicPartition, int] = {}  # by aborts, since the poll began

    def poll_begins(self) -> int:
        """Note that a poll begins; return :attr:`aborts` as it is now."""
        self._sought = {}
        return self.aborts

    async def settle(self, wait: bool) -> BaseException | None:
        """Apply the fate of the batches whose transactions ended, oldest first (with
        ``wait``, wait for the oldest's). Return what must halt the loop, if anything
        did: the batches in flight have then aborted and their state is rolled back."""
        settled = await self._transactions.settle(wait)
        for batch in settled.committed:
            self._handler.commit()
            self._count(batch)
        if settled.aborted:
            self._aborted(settled)
        aborted = self._transactions.aborted
        if aborted != self._stats.aborted and self._on_aborted is not None:
            self._on_aborted(aborted - self._stats.aborted)
        self._stats.aborted = aborted
        self._stats.replaced = self._transactions.replaced
        if settled.cause is not None and not isinstance(settled.cause, TransactionAborted):
            return settled.cause
        return None

    def read_again(self, batch: Polled) -> None:
        """Put a polled batch back unhandled. It may predate an abort's seek (then the
        seek's earlier offset stands) or follow it (then it starts there): the earlier."""
        offsets = {tp: part[0].offset for tp, part in batch.items() if part}
        for tp, offset in self._sought.items():
            offsets[tp] = min(offset, offsets.get(tp, offset))
        self._seek(offsets)

    def _count(self, batch: Batch) -> None:
        stats = self._stats
        stats.batches += 1
        stats.records_in += len(batch.records)
        stats.records_out += batch.outputs
        stats.last_batch_ms = (batch.committed_s - batch.polled_s) * 1000
        if self._on_committed is not None:
            trace = BatchTrace(
                batch.polled_s, batch.handled_s, batch.committed_s, batch.records,
                batch.commit_s, batch.topics,
            )  # fmt: skip
            self._on_committed(trace)

    def _aborted(self, settled: Settled) -> None:
        """The oldest batch in flight did not commit, so none after it did: forget their
        state, and read their input again from the first record any of them held."""
        self._handler.rollback()
        if not isinstance(settled.cause, TransactionAborted):
            return  # the loop halts: nothing is read again
        log.warning(
            "transaction aborted, %d batch(es) will be processed again: %s",
            len(settled.aborted), settled.cause,
        )  # fmt: skip
        first: dict[TopicPartition, int] = {}
        for batch in settled.aborted:
            for tp, offset in batch.first.items():
                first.setdefault(tp, offset)  # the oldest batch holding tp has its first
        self.aborts += 1
        for tp, offset in first.items():
            self._sought[tp] = min(offset, self._sought.get(tp, offset))
        self._seek(first)
