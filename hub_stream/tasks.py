"""Stage 2 of the partitioned hub: one task per bucket this worker owns.

Which worker owns bucket *p* is decided by an ordinary consumer group, ``<group>-tasks``:
a :class:`TaskManager` subscribes to ``hub.route`` with a rebalance listener and never
reads from it. When the group assigns it ``hub.route[p]`` it starts a
:class:`BucketTask` for *p*; when the group takes *p* away it stops that task — the batch
under way finishes or aborts — before the revocation completes, so two workers never run
the same bucket's batches at once.

A task's life, in the order that makes a move safe (``docs/architecture.md``):

1. its transactional producer ``<group>-task-<p>`` initialises, which fences a zombie
   owner of *p* and aborts the transaction it left open;
2. it restores partition *p* of every ``hub.state.*`` topic to its end (``read_committed``:
   nothing of the aborted transaction), into a :class:`~.bucket_hub.BucketHub`;
3. it runs a :class:`~.pipeline.TransactionalLoop` over ``hub.route[p]``, assigned by hand,
   from the group's committed offset: each batch's outputs, state and offset commit in one
   transaction of its own, overlapping with the other tasks' commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from renkei.readers import committed_reader
from renkei.topics import Topics

from .bucket_hub import BucketHub
from .buckets import route_topic
from .pipeline import TransactionalLoop
from .state import restore_tables
from .unwritable import Replacer

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
        self.loop = TransactionalLoop(
            kafka=kafka, group_id=group_id, transactional_id=transactional_id,
            pattern="", partitions=[TopicPartition(route_topic(hub.topics), hub.bucket)],
            handler=hub, replace=replace, max_batch=max_batch, poll_ms=poll_ms,
        )  # fmt: skip
        self._life: asyncio.Task[None] | None = None
        self.restored = -1
        """State records restored (-1 until the restore is complete)."""
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Start the task's life in the background (the rebalance must not wait for it)."""
        self._life = asyncio.create_task(self._live(), name=f"hub-task-{self.bucket}")

    async def _live(self) -> None:
        try:
            await self.loop.start()  # the producer first: it fences a zombie owner
            self.restored = await restore_tables(self._kafka, self.hub.tables, only=[self.bucket])
            log.info(
                "bucket %d restored: %d records, %d persons, %d holdings, %d pending",
                self.bucket, self.restored, len(self.hub.persons), len(self.hub.holdings),
                len(self.hub.pending),
            )  # fmt: skip
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
        self._consumer = committed_reader(kafka, group_id=group_id)
        self._running = False

    async def start(self) -> None:
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

    def owned(self) -> list[int]:
        """The buckets this worker runs now."""
        return sorted(self.tasks)

    # -- the group's decisions ---------------------------------------------------------

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._stop_tasks([tp.partition for tp in revoked if tp.partition in self.tasks])

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self._consumer.pause(*assigned)  # membership only: each task has its own consumer
        self.assignments += 1
        for tp in sorted(assigned, key=lambda tp: tp.partition):
            if tp.partition not in self.tasks:
                task = self._new_task(tp.partition)
                self.tasks[tp.partition] = task
                task.start()
        log.info("hub tasks: buckets %s", self.owned())

    async def _stop_tasks(self, buckets: list[int]) -> None:
        stopping = [self.tasks.pop(b) for b in buckets]
        await asyncio.gather(*(task.stop() for task in stopping), return_exceptions=True)
