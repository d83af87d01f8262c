"""What a flow emits: records for the batch's transaction.

Every flow returns :class:`Output` values and the loop that owns Kafka writes them
(:mod:`hub_stream.pipeline`). The type lives on its own so that no flow, table or audit
module depends on a transport module to say what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Output"]


@dataclass(frozen=True, slots=True)
class Output:
    """One record to write in the batch's transaction (``value=None`` is a tombstone).

    :param topic: the topic to write to.
    :param key: the record's key; ``None`` spreads unkeyed records over the partitions.
    :param value: the encoded value; ``None`` deletes the key of a compacted topic.
    :param partition: a partition chosen by the hub (audit records); ``None`` partitions
        by key like every Kafka client.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
