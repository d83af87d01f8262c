"""The one reader of an agency's inbox, ``agency.<id>.in``, for everything the agency runs.

:class:`InboxReader` consumes the inbox ``read_committed``, decodes each record once,
verifies the hub's signature (required by default: :mod:`consumers.trust`), drops a
message whose id it has handled already (:mod:`consumers.dedup`), hands the message to
the handler routed for its type, and commits a partition's offset only once the handlers
of every record before it have returned. The client (:class:`producers.AgencyClient`),
the provider (:class:`consumers.ProviderService`) and the life-event subscriber
(:class:`consumers.LifecycleSubscriber`) route the types they handle to it. Each makes a
reader of its own unless given one as ``inbox=``; an agency that is all three passes one
reader to each and has one consumer (see ``docs/architecture.md``, "The agency side").

**What an agency sees, and sees again.**

* A message is *handled* when its handler returned. Records dropped (undecodable, badly
  signed, duplicate, of a type nobody routed) are handled by being dropped.
* Within a running reader a handled message id is not handed over again (the last
  ``dedup_capacity`` ids at least). A handler that raised leaves its message unhandled:
  the reader commits what was handled before it and stops with that error.
* With a ``group_id``, after every batch, and when stopped or failing, each partition's
  offset is committed up to its first record not handled; once every record returned is
  handled, up to the consumer's position, past the hub's transaction markers, so a
  caught-up agency's committed offset is the partition's end (its lag reads 0).
* **After a crash** (the process killed, a commit lost in a rebalance) the next reader of
  the group starts at the committed offsets with an *empty* de-duplication memory: it
  hands over again exactly the records after the last commit — at most the one batch
  (``max_batch`` records) that was being handled, some of whose handlers may already
  have run. Across a crash delivery is at least once; nothing handled and committed is
  seen again, nothing is lost. A handler whose effect must not happen twice keys it on
  ``header.message_id``, which is the same on every delivery.
* Without a ``group_id`` nothing is committed and a new reader starts at ``start_at``.

**The witness.** Between :meth:`~InboxReader.start` and :meth:`~InboxReader.stop` a
reader also runs its agency's witness of the audit trail's tree heads
(:mod:`consumers.witness`), shared with the agency's other readers in the process, when
``RENKEI_AGENCY_AUDIT_TRUST`` is set: :attr:`InboxReader.witness`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from consumers.dedup import DEFAULT_CAPACITY
from consumers.dispatch import Dispatcher
from consumers.running import BackgroundService
from consumers.trust import HubKey
from consumers.witness import AlarmListener, HeadWitness, acquire, release
from renkei.errors import ConfigurationError, RenkeiError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import Codec

__all__ = ["InboxReader", "StartAt"]

log = logging.getLogger(__name__)

StartAt = Literal["earliest", "latest"]
"""Where a reader starts on a partition its group has no committed offset for."""


class InboxReader(Dispatcher, BackgroundService):
    """Reads ``agency.<id>.in`` and hands each message to the handler of its type.

    Routing, verification and de-duplication are :class:`~consumers.dispatch.Dispatcher`'s;
    this class owns the consumer, its positions and its commits.

    :param agency_id: whose inbox.
    :param kafka: aiokafka connection keyword arguments.
    :param topics: topic names (and prefix).
    :param group_id: the consumer group whose committed offsets say where to resume;
        ``None`` commits nothing.
    :param share_partitions: join the group and split the partitions with its other
        members (providers and subscribers that scale out). ``False`` reads every
        partition, which an :class:`~producers.AgencyClient` needs: its answers may be
        on any of them.
    :param start_at: where to start on a partition without a committed offset.
    :param codec: the codec; the process-wide one by default.
    :param hub_public_key: the hub's verification key (raw, its public keys, or the path
        of ``hub.public.json``); by default ``RENKEI_HUB_PUBLIC_BUNDLE``. Messages the
        hub did not sign are refused, counted and passed to ``on_rejected``.
    :param verify_hub: ``False`` reads unverified, only for tests and benchmarks that
        say so; otherwise a reader without the hub's key is not built.
    :param max_batch: records per poll, and so at most per commit.
    :param dedup_capacity: message ids remembered for de-duplication.
    :param on_rejected: called with a :class:`~renkei.errors.DecodeError` or
        :class:`~renkei.errors.SignatureError` for every record refused.
    :param metadata_timeout_s: how long :meth:`start` waits for a topic created moments
        ago to appear (when reading every partition).
    :param witness: run the agency's witness of ``hub.audit.heads`` (:mod:`consumers.witness`):
        ``None`` (default) when ``RENKEI_AGENCY_AUDIT_TRUST`` is set, ``True`` always
        (:meth:`start` fails without it), ``False`` never.
    :param on_witness_alarm: called with every :class:`~renkei.errors.WitnessAlarm` the
        witness raises (they are logged at ERROR and counted either way).
    """

    def __init__(
        self,
        agency_id: str,
        kafka: dict[str, Any],
        topics: Topics,
        *,
        group_id: str | None = None,
        share_partitions: bool = False,
        start_at: StartAt = "earliest",
        codec: Codec | None = None,
        hub_public_key: HubKey | None = None,
        verify_hub: bool = True,
        max_batch: int = 1000,
        dedup_capacity: int = DEFAULT_CAPACITY,
        on_rejected: Callable[[RenkeiError], object] | None = None,
        metadata_timeout_s: float = 10.0,
        witness: bool | None = None,
        on_witness_alarm: AlarmListener | None = None,
    ) -> None:
        if share_partitions and group_id is None:
            raise ConfigurationError("sharing partitions needs a group_id")
        if max_batch < 1:
            raise ConfigurationError(f"max_batch must be at least 1, not {max_batch}")
        super().__init__(
            topics.agency_in(agency_id),
            codec=codec,
            hub_public_key=hub_public_key,
            verify_hub=verify_hub,
            dedup_capacity=dedup_capacity,
            on_rejected=on_rejected,
        )
        self.agency_id = agency_id
        self.group_id = group_id
        self.share_partitions = share_partitions
        self.start_at: StartAt = start_at
        self.max_batch = max_batch
        self.metadata_timeout_s = metadata_timeout_s
        self.run_witness = witness
        self.on_witness_alarm = on_witness_alarm
        self.witness: HeadWitness | None = None
        """The agency's running witness while started (``None``: off); its ``raised``
        alarms and ``failure`` are the application's to check."""
        self._topics = topics
        self.failure: BaseException | None = None
        """The error that stopped :meth:`run`, if one did."""
        self._kafka = dict(kafka)
        self._listeners: list[Callable[[BaseException | None], None]] = []
        self._consumer: Any = None
        self._committed: dict[Any, int] = {}  # the last offset committed, per partition
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`: every partition's position is set."""
        return self._consumer is not None

    async def _commit_skipped(self) -> None:
        """Commit each partition's position where it is past the last commit.

        Called when every record returned so far is handled, so the gap can only be what
        the consumer skips: the marker of each transaction and aborted records. Only the
        hub writes an inbox, always in transactions, so without this the marker of its
        last commit would stay between a caught-up agency and the partition's end, and the
        agency's lag (the hub's ``renkei_agency_inbox_lag_records``, and Kafka's own
        tools) would never read 0.
        """
        if self.group_id is None or self._consumer is None:
            return
        ahead: dict[Any, int] = {}
        for tp in self._consumer.assignment():
            position = await self._consumer.position(tp)
            if position > self._committed.get(tp, -1):
                ahead[tp] = position
        await self._commit(ahead)

    def on_stop(self, listener: Callable[[BaseException | None], None]) -> None:
        """Call ``listener`` when :meth:`run` ends, with the error that ended it or None."""
        self._listeners.append(listener)

    async def _commit(self, offsets: dict[Any, int]) -> None:
        if not offsets or self.group_id is None or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
            self._committed.update(offsets)
        except CommitFailedError as exc:
            # A rebalance moved the partitions: their new owner resumes from the last
            # commit and hands over again what this batch handled (at least once).
            log.warning("inbox %s: commit failed (%s)", self.topic, exc)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and set every partition's position (a no-op if started).

        :raises ConfigurationError: ``agency.<id>.in`` does not exist.
        """
        if self._consumer is not None:
            return
        topics = (self.topic,) if self.share_partitions else ()
        consumer = committed_reader(self._kafka, *topics, group_id=self.group_id,
                                    auto_offset_reset=self.start_at,
                                    max_poll_records=self.max_batch)  # fmt: skip
        try:
            await consumer.start()
            if not self.share_partitions:
                await self._assign_every_partition(consumer)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._committed = {}
        self.failure = None
        if self.run_witness is not False:
            try:
                self.witness = await acquire(
                    self.agency_id,
                    self._kafka,
                    self._topics,
                    required=self.run_witness is True,
                    on_alarm=self.on_witness_alarm,
                    codec=self.codec,
                )
            except BaseException:
                await self.stop()
                raise

    async def _assign_every_partition(self, consumer: Any) -> None:
        # Positions are pinned here, before any request can be sent, so no answer slips
        # in between (a group with "latest" would skip answers written before it joined).
        partitions = await topic_partitions(consumer, self.topic, self.metadata_timeout_s)
        if not partitions:
            raise ConfigurationError(f"topic {self.topic} does not exist")
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(assigned)
        for tp in assigned:
            committed = await consumer.committed(tp) if self.group_id is not None else None
            if committed is not None:
                consumer.seek(tp, committed)
            elif self.start_at == "latest":
                await consumer.seek_to_end(tp)
            else:
                await consumer.seek_to_beginning(tp)
            await consumer.position(tp)

    async def run(self) -> None:
        """Hand messages over until cancelled or a handler raises (call :meth:`start` first)."""
        if self._consumer is None:
            raise ConfigurationError("InboxReader.run() before start()")
        error: BaseException | None = None
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self.max_batch)
                if batches:
                    await self.handle_batch(batches)
                await self._commit_skipped()
        except Exception as exc:
            error = self.failure = exc
            log.exception("inbox %s: stopped on an error", self.topic)
            raise
        finally:
            for listener in self._listeners:
                listener(error)

    def run_in_background(self) -> None:
        """:meth:`run` in a task of its own (a no-op if one runs); :meth:`stop` ends it."""
        if self._consumer is None:
            raise ConfigurationError("InboxReader.run_in_background() before start()")
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"renkei-inbox-{self.agency_id}")

    async def stop(self) -> None:
        """Stop reading and close the consumer; raise the error that stopped :meth:`run`."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # a handler's error surfaces here, after the cleanup
        finally:
            consumer, self._consumer = self._consumer, None
            witness, self.witness = self.witness, None
            if witness is not None:
                await release(witness, self.on_witness_alarm)
            if consumer is not None:
                await consumer.stop()
