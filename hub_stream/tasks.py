"""Stage 2 of the partitioned hub: one task per bucket this worker owns.

Which worker owns bucket *p* is decided by an ordinary consumer group, ``<group>-tasks``:
a :class:`TaskManager` subscribes to ``hub.route`` with a rebalance listener and never
reads from it. When the group assigns it ``hub.route[p]`` it starts a
:class:`BucketTask` for *p*; when the group takes *p* away it stops that task's loop —
the batch under way finishes or aborts — before the revocation completes, so two workers
never run the same bucket's batches at once.

A task's life — fence, restore its bucket, run its own loop and transactions — and why in
that order: :mod:`.bucket_task`.

**Kept across a rebalance.** aiokafka revokes every bucket at each rebalance and then
assigns the new set. A revoked task is *paused*: its loop stops exactly as a stop does
(the batch under way commits or aborts, producer and consumer close), but it keeps its
state and records the bucket's :class:`~.watermarks.Watermarks`. If the next assignment
gives the bucket back, the task initialises the bucket's producer again (fencing anyone
else), reads the offsets again and, if nothing moved (:func:`~.watermarks.why_restore`),
goes on from the committed offset without a restore; otherwise it is stopped and a new
task restores the bucket. A paused task the assignment does not give back is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from renkei.readers import committed_reader
from renkei.topics import Topics

from .bucket_task import BucketTask
from .buckets import route_topic
from .watermarks import WatermarkReader, Watermarks, why_restore

__all__ = ["TaskManager"]

log = logging.getLogger(__name__)


class TaskManager(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Runs a :class:`BucketTask` for each partition of ``hub.route`` the group assigns.

    :param kafka: aiokafka connection keyword arguments.
    :param topics: topic names.
    :param group_id: the stage-2 consumer group (``<group>-tasks``).
    :param new_task: builds the (unstarted) task of a bucket.
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        topics: Topics,
        group_id: str,
        new_task: Callable[[int], BucketTask],
    ) -> None:
        self.topics = topics
        self.group_id = group_id
        self._new_task = new_task
        self.tasks: dict[int, BucketTask] = {}
        self.assignments = 0
        """Rebalances that gave this worker its buckets."""
        self.restores: Counter[int] = Counter()
        """Tasks started with a restore, by bucket."""
        self.kept: Counter[int] = Counter()
        """Rebalances a bucket's task went on through without a restore, by bucket."""
        self._paused: dict[int, tuple[BucketTask, Watermarks]] = {}
        self._consumer = committed_reader(kafka, group_id=group_id)
        self.marks = WatermarkReader(
            committed_reader(kafka, group_id=group_id), group_id, route_topic(topics)
        )
        self._running = False

    async def start(self) -> None:
        await self.marks.start()
        await self._consumer.start()
        self._consumer.subscribe([route_topic(self.topics)], listener=self)
        self._running = True

    async def run(self, check: Callable[[], None] = lambda: None) -> None:
        """Stay in the group until stopped (the partitions stay paused: tasks read them).

        :param check: called twice a second; what it raises halts the worker.

        :raises Exception: what stopped a task other than fencing (state it cannot
            restore, an output Kafka refuses even as a stand-in): the worker halts, as a
            single-topology worker does, and the group gives its buckets to the others.
        """
        while self._running:
            await self._consumer.getmany(timeout_ms=500)
            check()
            for bucket, task in list(self.tasks.items()):
                if isinstance(task.failure, ProducerFenced):
                    await self._stop_tasks([bucket])  # its new owner has it
                elif task.failure is not None:
                    raise task.failure

    async def stop(self) -> None:
        self._running = False
        await self._stop_tasks(list(self.tasks))
        await self._consumer.stop()
        for task, _ in self._paused.values():
            task.drop()  # their loops are closed already
        self._paused.clear()
        await self.marks.stop()

    def owned(self) -> list[int]:
        """The buckets this worker runs now."""
        return sorted(self.tasks)

    # -- the group's decisions ---------------------------------------------------------

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        pausing = [self.tasks.pop(tp.partition) for tp in revoked if tp.partition in self.tasks]
        left = await asyncio.gather(
            *(task.pause(self.marks) for task in pausing), return_exceptions=True
        )
        for task, marks in zip(pausing, left, strict=True):
            if isinstance(marks, Watermarks):
                self._paused[task.bucket] = (task, marks)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self._consumer.pause(*assigned)  # membership only: each task has its own consumer
        self.assignments += 1
        buckets = sorted({tp.partition for tp in assigned})
        paused, self._paused = self._paused, {}
        dropped = sorted(set(paused) - set(buckets))
        for bucket in dropped:
            paused[bucket][0].drop()
        if dropped:
            log.info("hub tasks: buckets %s moved away, their state dropped", dropped)
        kept = await asyncio.gather(
            *(self._keep(*paused[b]) for b in buckets if b in paused), return_exceptions=True
        )
        for result in kept:
            if isinstance(result, BaseException):  # stopping it failed: a new one restores
                log.warning("a task given back could not be kept: %r", result)
            elif result is not None:
                self.tasks[result.bucket] = result
        for bucket in buckets:
            if bucket not in self.tasks:
                task = self._new_task(bucket)
                self.tasks[bucket] = task
                self.restores[bucket] += 1
                task.start()
        log.info("hub tasks: buckets %s", self.owned())

    async def _keep(self, task: BucketTask, left: Watermarks) -> BucketTask | None:
        """Resume a paused task given back if nobody wrote its bucket meanwhile."""
        try:
            await task.reopen()
            why = why_restore(left, await self.marks.read(task.bucket, task.watched()))
        except Exception as exc:  # the producer or the offsets: restore instead
            why = f"the offsets could not be compared: {exc!r}"
        if why is not None:
            log.info("bucket %d given back, restored: %s", task.bucket, why)
            await task.stop()
            return None
        log.info("bucket %d given back, kept (hub.route@%d)", task.bucket, left.position)
        self.kept[task.bucket] += 1
        task.resume()
        return task

    async def _stop_tasks(self, buckets: list[int]) -> None:
        stopping = [self.tasks.pop(b) for b in buckets]
        await asyncio.gather(*(task.stop() for task in stopping), return_exceptions=True)
