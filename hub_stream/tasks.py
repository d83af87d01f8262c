"""Stage 2 of the partitioned hub: one task per bucket this worker owns.

Which worker owns bucket *p* is decided by an ordinary consumer group, ``<group>-tasks``:
a :class:`TaskManager` subscribes to ``hub.route`` with a rebalance listener and never
reads from it. When the group assigns it ``hub.route[p]`` it starts a
:class:`BucketTask` for *p*; when the group takes *p* away it stops that task's loop —
the batch under way finishes or aborts — before the revocation completes, so two workers
never run the same bucket's batches at once.

A task's life, in the order that makes a move safe (``docs/architecture.md``):

1. its transactional producer ``<group>-task-<p>`` initialises, which fences a zombie
   owner of *p* and aborts the transaction it left open;
2. it restores partition *p* of every ``hub.state.*`` topic to its end (``read_committed``:
   nothing of the aborted transaction), into a :class:`~.bucket_hub.BucketHub`;
3. it runs a :class:`~.pipeline.TransactionalLoop` over ``hub.route[p]``, assigned by hand,
   from the group's committed offset: each batch's outputs, state and offset commit in one
   transaction of its own, overlapping with the other tasks' commits.

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
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from renkei.readers import committed_reader
from renkei.topics import Topics

from .bucket_hub import BucketHub
from .buckets import route_topic
from .heap import settle as settle_heap
from .pipeline import TransactionalLoop
from .restore import restore_tables
from .unwritable import Replacer
from .watermarks import WatermarkReader, Watermarks, why_restore

__all__ = ["BucketTask", "TaskManager"]

log = logging.getLogger(__name__)


class BucketTask:
    """Bucket ``hub.bucket``'s state and loop, from restore to stop.

    :param hub: the bucket's hub (empty: the task restores it).
    :param kafka: aiokafka connection keyword arguments.
    :param group_id: the stage-2 group, whose committed offsets of ``hub.route`` it uses.
    :param transactional_id: the bucket's own (``<group>-task-<p>``), the same whichever
        worker runs it, so that a new owner fences the old one.
    :param replace: stand-ins for records Kafka refuses (:mod:`.unwritable`).
    :param max_batch: most records in one transaction.
    :param poll_ms: longest wait for input (the deadlines' resolution).
    """

    def __init__(
        self,
        hub: BucketHub,
        kafka: dict[str, Any],
        group_id: str,
        transactional_id: str,
        replace: Replacer,
        max_batch: int,
        poll_ms: int,
    ) -> None:
        self.hub = hub
        self.bucket = hub.bucket
        self._kafka = kafka
        # A loop cannot start twice (aiokafka clients do not), so a resumed task has a new one.
        self._new_loop: Callable[[], TransactionalLoop] = functools.partial(
            TransactionalLoop, kafka=kafka, group_id=group_id,
            transactional_id=transactional_id, pattern="",
            partitions=[TopicPartition(route_topic(hub.topics), hub.bucket)], handler=hub,
            replace=replace, max_batch=max_batch, poll_ms=poll_ms,
        )  # fmt: skip
        self.loop = self._new_loop()
        self._life: asyncio.Task[None] | None = None
        self.restored = -1
        """State records restored (-1 until the restore is complete)."""
        self.failure: BaseException | None = None

    def watched(self) -> list[TopicPartition]:
        """The partitions only this bucket's task writes and its state comes from."""
        topics = sorted({t.topic for t in self.hub.tables} | {self.hub.topics.audit})
        return [TopicPartition(topic, self.bucket) for topic in topics]

    def start(self) -> None:
        """Start the task's life in the background (the rebalance must not wait for it)."""
        self._life = asyncio.create_task(self._live(), name=f"hub-task-{self.bucket}")

    def resume(self) -> None:
        """Start again on the state held, without a restore (after :meth:`reopen`)."""
        held, self.restored = self.restored, -1  # until the loop runs: stop() cancels
        self._life = asyncio.create_task(self._live(held), name=f"hub-task-{self.bucket}")

    async def _live(self, held: int | None = None) -> None:
        try:
            await self.loop.start()  # the producer first: it fences a zombie owner
            if held is not None:
                self.restored = held
            else:
                self.restored = await restore_tables(
                    self._kafka, self.hub.tables, only=[self.bucket]
                )
                log.info(
                    "bucket %d restored: %d records, %d persons, %d holdings, %d pending",
                    self.bucket, self.restored, len(self.hub.persons),
                    len(self.hub.holdings), len(self.hub.pending),
                )  # fmt: skip
                settle_heap()  # the bucket's rows frozen out of the GC's walks (.heap: why)
            await self.loop.run()
        except asyncio.CancelledError:
            raise
        except ProducerFenced as exc:
            # Another worker owns the bucket now (we lost the group without noticing).
            log.warning("bucket %d: fenced by its new owner, stopping: %s", self.bucket, exc)
            self.failure = exc
        except Exception as exc:
            log.exception("bucket %d stopped", self.bucket)
            self.failure = exc

    @property
    def running(self) -> bool:
        """Restored and processing."""
        return self.restored >= 0 and self._life is not None and not self._life.done()

    async def stop(self) -> None:
        """Finish or abort the batch under way, then let go of the bucket."""
        self.loop.halt()
        if self._life is not None:
            if self.restored < 0:
                self._life.cancel()  # restoring: nothing written yet
            with contextlib.suppress(asyncio.CancelledError):
                await self._life
        await self.loop.stop()
        self.hub.close()  # its state store goes (RENKEI_HUB_STORE): the next owner restores

    async def pause(self, marks: WatermarkReader) -> Watermarks | None:
        """Let go of the bucket as :meth:`stop` does, but keep the state and return the
        bucket's watermarks, proven to be this task's own (``None``: not keepable —
        restoring, failed, or the proof failed)."""
        if not self.running or self.failure is not None:
            await self.stop()
            return None
        self.loop.halt()
        if self._life is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._life  # the batch under way commits or aborts
        left = None
        if self.failure is None:
            try:
                left = await marks.record(self.bucket, self.watched(), self.loop.writer)
            except Exception as exc:  # fenced, or the broker did not answer: restore later
                log.warning("bucket %d: offsets not recorded, not kept: %r", self.bucket, exc)
        await self.loop.stop()
        return left

    def drop(self) -> None:
        """Forget a paused task's state: the bucket went to another worker."""
        self.hub.close()

    async def reopen(self) -> None:
        """A new loop for a paused task; initialise its producer, which fences every
        other producer of the bucket, before anyone compares the offsets."""
        self.loop = self._new_loop()
        await self.loop.start_writers()


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
