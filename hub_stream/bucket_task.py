"""One bucket's task in the partitioned hub: its state and its loop, from restore to stop.

A task's life, in the order that makes a move safe (``docs/architecture.md``):

1. its transactional producer ``<group>-task-<p>`` initialises, which fences a zombie
   owner of *p* and aborts the transaction it left open;
2. it restores partition *p* of every ``hub.state.*`` topic to its end (``read_committed``:
   nothing of the aborted transaction), into a :class:`~.bucket_hub.BucketHub`;
3. it runs a :class:`~.pipeline.TransactionalLoop` over ``hub.route[p]``, assigned by hand,
   from the group's committed offset: each batch's outputs, state and offset commit in one
   transaction of its own, overlapping with the other tasks' commits.

A paused task (:meth:`BucketTask.pause`) keeps its state and the bucket's watermarks;
the :class:`~.tasks.TaskManager` decides whether it resumes or restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from .batch_handler import BatchTrace
from .bucket_hub import BucketHub
from .buckets import route_topic
from .heap import settle as settle_heap
from .pipeline import TransactionalLoop
from .restore import RestoreProgress, restore_tables
from .treeheads import rebuild_trees
from .unwritable import Replacer
from .watermarks import WatermarkReader, Watermarks

__all__ = ["BucketTask"]

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
    :param on_committed: each loop's committed batches (the worker's metrics).
    :param on_aborted: each loop's aborted transactions.
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
        on_committed: Callable[[BatchTrace], None] | None = None,
        on_aborted: Callable[[int], None] | None = None,
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
            on_committed=on_committed, on_aborted=on_aborted,
        )  # fmt: skip
        self.loop = self._new_loop()
        self._life: asyncio.Task[None] | None = None
        self.restored = -1
        """State records restored (-1 until the restore is complete)."""
        self.progress = RestoreProgress()
        """How far its restore has come (the metrics)."""
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
                    self._kafka, self.hub.tables, only=[self.bucket], progress=self.progress
                )
                log.info(
                    "bucket %d restored: %d records, %d persons, %d holdings, %d pending",
                    self.bucket, self.restored, len(self.hub.persons),
                    len(self.hub.holdings), len(self.hub.pending),
                )  # fmt: skip
                await rebuild_trees(  # chain heads from before tree heads (.treeheads)
                    self._kafka, self.hub.topics.audit, self.hub.chain, self.hub.codec,
                    only=[self.bucket],
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
