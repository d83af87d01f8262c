"""Whether a bucket's task may keep its state across a rebalance that gives it back.

aiokafka rebalances eagerly: every rebalance revokes all of a worker's buckets, then
assigns the new set, which usually holds most of them again. A task given back may go on
with the state it holds — no restore — only if nobody wrote the bucket's state after it:
no other worker ran the bucket in between, and no zombie of one committed late.

:class:`Watermarks` is what the task left behind when it let go: the end offsets
(``read_committed``: last stable offsets) of the bucket's partition of every state topic
and of ``hub.audit``, and the stage-2 group's committed offset of ``hub.route[p]``, where
its input resumes. :func:`why_restore` compares them with the same offsets read when the
bucket comes back: any difference, or anything unknown, means restore.

Why the offsets read at revocation are the task's own (:meth:`WatermarkReader.record`):
every writer of those partitions writes with the bucket's transactional id
``<group>-task-<p>``. The offsets are read first, *then* the task commits a transaction
of its own (the route offset it found, unchanged). That commit succeeds only if nobody
initialised the id since this task did — a newcomer's ``InitProducerId`` fences the
task's producer — so every record before the offsets read was written by the task itself
or was already there when it restored. When the bucket comes back, the task initialises
the id again *before* it reads the current offsets, which fences every other producer of
the bucket and aborts what one left open; nobody can write between that read and the
task's next transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from renkei.errors import RenkeiError

from .writer import TransactionWriter

__all__ = ["OwnershipUnprovenError", "WatermarkReader", "Watermarks", "why_restore"]


class OwnershipUnprovenError(RenkeiError):
    """The task could not prove it still owned its bucket when it let go."""


@dataclass(frozen=True, slots=True)
class Watermarks:
    """Where a bucket's state and input stood (see the module docstring)."""

    ends: Mapping[TopicPartition, int]
    """Last stable offset of each state (and audit) partition of the bucket."""
    position: int
    """The stage-2 group's committed offset of ``hub.route[p]``."""


def why_restore(left: Watermarks | None, now: Watermarks | None) -> str | None:
    """Why a task given back must restore (``None``: it may keep its state).

    :param left: what the task recorded when it let go (``None``: it could not tell).
    :param now: the same offsets read once the task is the bucket's owner again.
    """
    if left is None:
        return "its offsets at revocation are unknown"
    if now is None:
        return "the current offsets are unknown"
    if set(left.ends) != set(now.ends):
        return "it watched other partitions"  # a new state topic, say
    if now.position != left.position:
        return f"hub.route's committed offset moved ({left.position} -> {now.position})"
    for tp in sorted(left.ends):
        if now.ends[tp] != left.ends[tp]:
            return f"{tp.topic}[{tp.partition}] was written ({left.ends[tp]} -> {now.ends[tp]})"
    return None


class WatermarkReader:
    """Reads a bucket's :class:`Watermarks` (one consumer for every bucket of a worker).

    :param consumer: an unstarted ``read_committed`` consumer with ``group_id``, never
        subscribed (:func:`~renkei.readers.committed_reader`); it joins nothing.
    :param group_id: the stage-2 group, whose committed offsets of ``hub.route`` count.
    :param route_topic: ``hub.route``.
    """

    def __init__(self, consumer: AIOKafkaConsumer, group_id: str, route_topic: str) -> None:
        self.group_id = group_id
        self.route_topic = route_topic
        self._consumer = consumer

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def read(self, bucket: int, watched: Sequence[TopicPartition]) -> Watermarks:
        """The current offsets of ``watched`` and of ``hub.route[bucket]``.

        A route partition the group has never committed counts as its beginning, which
        is where a consumer of the group starts (``auto_offset_reset="earliest"``).
        """
        route = TopicPartition(self.route_topic, bucket)
        ends = await self._consumer.end_offsets(list(watched))
        position = await self._consumer.committed(route)
        if position is None:
            position = (await self._consumer.beginning_offsets([route]))[route]
        return Watermarks({tp: int(ends[tp]) for tp in watched}, int(position))

    async def record(
        self, bucket: int, watched: Sequence[TopicPartition], writer: TransactionWriter
    ) -> Watermarks:
        """Read the offsets, then prove that the task's producer ``writer`` still owns the
        bucket by committing the route offset read, unchanged, in a transaction.

        :raises ProducerFenced: another producer took the bucket's id: the offsets read
            may hold its writes.
        :raises OwnershipUnprovenError: the transaction committed, but only after a retry.
        """
        marks = await self.read(bucket, watched)
        route = TopicPartition(self.route_topic, bucket)
        aborted = writer.aborted
        await writer.write([], {route: marks.position}, self.group_id)
        if writer.aborted != aborted:
            # It retried on a new producer epoch: its own InitProducerId, after the read,
            # would have fenced a writer it should have been fenced by.
            raise OwnershipUnprovenError(f"bucket {bucket}: the proving transaction was retried")
        return marks
