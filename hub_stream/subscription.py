"""Which input partitions a loop reads: the consumer group's share of its topics, or
partitions assigned by hand — and what must happen before the group moves them.

A rebalance revokes partitions from the consumer's own task while the loop may have
transactions in flight; :class:`DrainOnRevoke` holds it until every one has committed or
aborted, since an offset of ours committed after the move would let the new owner and
us both process a batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

__all__ = ["DrainOnRevoke", "subscribe"]


class DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Before partitions move, every transaction in flight commits or aborts.

    :param drain: returns once nothing is in flight (:meth:`.pipeline.TransactionalLoop.drain`).
    """

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


def subscribe(
    consumer: AIOKafkaConsumer,
    *,
    pattern: str,
    partitions: Sequence[TopicPartition],
    listener: ConsumerRebalanceListener,
) -> None:
    """Assign ``partitions`` by hand if any are given (the group's committed offsets are
    still where reading starts), else join the group for every topic ``pattern`` matches."""
    if partitions:
        consumer.assign(list(partitions))
    else:
        consumer.subscribe(pattern=pattern, listener=listener)
