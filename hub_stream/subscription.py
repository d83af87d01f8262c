"""Which input partitions a loop reads: the consumer group's share of its topics, or
partitions assigned by hand — and what must happen before the group moves them.

The hub names its topics (:class:`InputTopics`): its own inputs and the ``.out`` topic of
every agency the directory lists. A subscription by pattern would do without the
directory, but then every metadata refresh lists every partition of the cluster to match
the pattern against (7 % of the hub's samples on a broker with 4,000 partitions); by name,
a refresh asks for the hub's topics only. When the directory lists a new agency the loop
subscribes again (:meth:`InputTopics.changed`), which rebalances the group as a pattern's
new match did; the new agency's partitions have no committed offset and are read from
the beginning, so what it sent before the hub subscribed is read all the same, and after
its directory entry is applied, never refused as unknown.

A rebalance revokes partitions from the consumer's own task while the loop may have
transactions in flight; :class:`DrainOnRevoke` holds it until every one has committed or
aborted, since an offset of ours committed after the move would let the new owner and
us both process a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from renkei.crypto.bundles import HUB_ID

from .directory import Directory
from .trust import OPERATOR_ID, REGISTRY_ID

__all__ = ["DrainOnRevoke", "InputTopics", "follow", "subscribe"]

log = logging.getLogger(__name__)

SIGNERS = frozenset({OPERATOR_ID, REGISTRY_ID, HUB_ID})
"""Directory entries that sign but hold no data: they have no ``.out`` topic to read."""


class InputTopics:
    """The topics a hub loop reads, by name.

    :param fixed: the hub's own input topics (registry events, control, directory).
    :param directory: returns the directory as the worker knows it now.
    :param agency_topic: an agency's ``.out`` topic (:meth:`~renkei.topics.Topics.agency_out`).
    """

    def __init__(
        self,
        fixed: Iterable[str],
        directory: Callable[[], Directory],
        agency_topic: Callable[[str], str],
    ) -> None:
        self._fixed = tuple(fixed)
        self._directory = directory
        self._agency_topic = agency_topic
        self._listed = -1

    def names(self) -> list[str]:
        """Every input topic: the fixed ones and each listed agency's, inactive ones too
        (what they send is refused, and audited, rather than left unread)."""
        agencies = self._directory().agencies
        self._listed = len(agencies)
        agency_topics = (self._agency_topic(a) for a in agencies if a not in SIGNERS)
        return sorted({*self._fixed, *agency_topics})

    def changed(self) -> bool:
        """Whether the directory lists an agency it did not at the last :meth:`names`.

        Checked before every poll, so it must be cheap: a directory never loses an
        agency (one is retired with an entry ``active = false``), so its size tells.
        """
        return len(self._directory().agencies) != self._listed


class DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Before partitions move, every transaction in flight commits or aborts.

    It also counts the revocations: aiokafka rebalances in a task of its own, so a batch
    a poll returned may have been fetched before partitions moved, and the loop must not
    handle it after. The offsets it would commit are not fenced (aiokafka's
    TxnOffsetCommit is version 0, without the group's generation): the partitions' next
    owner, starting from the offsets committed before, would handle it as well.

    :param drain: returns once nothing is in flight (:meth:`.pipeline.TransactionalLoop.drain`).
    """

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain
        self.revocations = 0
        """Rebalances begun (each revokes every partition first: the eager protocol)."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revocations += 1
        await self._drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


def subscribe(
    consumer: AIOKafkaConsumer,
    *,
    pattern: str,
    partitions: Sequence[TopicPartition],
    topics: Sequence[str],
    listener: ConsumerRebalanceListener,
) -> None:
    """Assign ``partitions`` by hand if any are given (the group's committed offsets are
    still where reading starts), else join the group for ``topics`` if any are named, else
    for every topic ``pattern`` matches. Called again with other ``topics``, the consumer
    rejoins the group with them (revoking first: ``listener`` drains)."""
    if partitions:
        consumer.assign(list(partitions))
    elif topics:
        consumer.subscribe(topics=list(topics), listener=listener)
    else:
        consumer.subscribe(pattern=pattern, listener=listener)


def follow(
    consumer: AIOKafkaConsumer, inputs: InputTopics, listener: ConsumerRebalanceListener
) -> None:
    """Subscribe again if the directory lists another agency: the group rebalances
    (``listener`` drains what is in flight first) and the new topic is read from its
    first record. The loop calls it before every poll."""
    if not inputs.changed():
        return
    topics = inputs.names()
    log.info("subscribing again: the directory lists %d input topics now", len(topics))
    consumer.subscribe(topics=topics, listener=listener)
