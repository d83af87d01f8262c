"""An agency's life-event subscriber: notices and link-code remaps, at the agency's pace.

:class:`LifecycleSubscriber` reads ``agency.<id>.in`` in its own consumer group and calls
the agency's handler for each :class:`~schemas.models.LifeEventNotice` by event kind
(corrections and annulments go to the handler of the kind they correct: the notice's
``action`` says which it is), and ``on_remap`` for each
:class:`~schemas.models.LinkCodeRemap` after a key rotation.

**Delivery.** It reads committed data only, drops what it has already handled by message
id (:mod:`consumers.dedup`), and commits a partition's offset only after the handlers of
everything before it have returned. An agency offline for a day resumes from its
committed offsets and catches up, in order per person: the hub keys every notice by the
agency's link code, so one person's notices are in one partition, and a partition is
handled one message at a time. If a handler raises, the offsets of what was handled are
committed, the subscriber stops with that error, and the failed message is the first one
handled after a restart.

**Sharing the topic.** ``agency.<id>.in`` also carries enrolment results, forwarded
requests, attribute answers and errors; the agency's :class:`~producers.AgencyClient`
and :class:`~consumers.ProviderService` read those with their own consumer groups, and
this subscriber counts and skips them.

**Order across a rotation.** A remap is keyed by the *new* code, so it comes before every
later notice about the person; notices sent before it are keyed by the old code and may
sit in another partition. Keep the old code as an alias of the new one until
``old_codes_valid_until``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from consumers.dedup import DEFAULT_CAPACITY, Deduplicator
from renkei.crypto import AgencyKeys
from renkei.envelope import verify_message
from renkei.errors import ConfigurationError, DecodeError, SignatureError
from renkei.readers import committed_reader
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import EventKind, LifeEventNotice, LinkCodeRemap, Message

__all__ = ["LifecycleSubscriber", "NoticeHandler", "RemapHandler"]

log = logging.getLogger(__name__)

NoticeHandler = Callable[[LifeEventNotice], Awaitable[None]]
"""Applies one life-event notice (original, correction or annulment) to the agency's data."""
RemapHandler = Callable[[LinkCodeRemap], Awaitable[None]]
"""Replaces the agency's stored link code ``old_link_code`` by ``new_link_code``."""


class LifecycleSubscriber:
    """Hands an agency's life-event notices and link-code remaps to its handlers.

    Use as ``async with LifecycleSubscriber(...)`` (reads in the background; an error that
    stopped it is raised on exit) or call :meth:`start`, then ``await run()``.

    :param agency_id: this agency.
    :param keys: its keys (checked to be this agency's).
    :param kafka: aiokafka connection keyword arguments.
    :param topics: topic names (and prefix).
    :param handlers: a handler per event kind; notices of other kinds are counted in
        :attr:`unhandled` and skipped.
    :param on_remap: called for each ``LinkCodeRemap``; without it remaps are counted in
        :attr:`unhandled` and skipped (and the agency's old codes expire after the grace
        period).
    :param group_id: consumer group, ``"<prefix>agency.<id>.lifecycle"`` by default (the
        ACLs give an agency the groups ``agency.<id>.*``). Its committed offsets are where
        a restarted subscriber resumes; a new group starts at the oldest retained message.
    :param codec: the codec; the process-wide one by default.
    :param hub_public_key: if given, messages the hub did not sign are dropped and counted
        in :attr:`bad_signatures`.
    :param max_batch: records per poll, and so per offset commit.
    :param dedup_capacity: message ids remembered for de-duplication.
    """

    def __init__(
        self,
        agency_id: str,
        keys: AgencyKeys,
        kafka: dict[str, Any],
        topics: Topics,
        handlers: Mapping[EventKind, NoticeHandler],
        on_remap: RemapHandler | None = None,
        group_id: str | None = None,
        *,
        codec: Codec | None = None,
        hub_public_key: bytes | None = None,
        max_batch: int = 1000,
        dedup_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        if keys.agency_id != agency_id:
            raise ConfigurationError(f"keys of {keys.agency_id!r} given to agency {agency_id!r}")
        self.agency_id = agency_id
        self.keys = keys
        self.topics = topics
        self.handlers = dict(handlers)
        self.on_remap = on_remap
        self.group_id = group_id or f"{topics.prefix}agency.{agency_id}.lifecycle"
        self.codec = codec if codec is not None else default_codec()
        self.hub_public_key = hub_public_key
        self.max_batch = max_batch
        self.notices = 0
        """Notices handed to a handler."""
        self.remaps = 0
        """Remaps handed to ``on_remap``."""
        self.unhandled = 0
        """Notices of a kind with no handler, and remaps without ``on_remap``."""
        self.ignored = 0
        """Other messages on the topic (enrolment results, forwarded requests, answers)."""
        self.undecodable = 0
        """Records that did not decode."""
        self.bad_signatures = 0
        """Messages dropped because the hub's signature did not verify."""
        self._kafka = dict(kafka)
        self._dedup = Deduplicator(dedup_capacity)
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def duplicates_dropped(self) -> int:
        """Messages dropped because one with their message id had been handled already."""
        return self._dedup.duplicates

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Join the consumer group on ``agency.<id>.in``."""

        self._consumer = committed_reader(
            self._kafka,
            self.topics.agency_in(self.agency_id),
            group_id=self.group_id,
            max_poll_records=self.max_batch,
        )
        try:
            await self._consumer.start()
        except BaseException:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
            raise

    async def run(self) -> None:
        """Handle messages until cancelled or a handler raises (call :meth:`start` first)."""
        if self._consumer is None:
            raise ConfigurationError("LifecycleSubscriber.run() before start()")
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self.max_batch)
            if batches:
                await self._handle_batch(batches)

    async def stop(self) -> None:
        """Stop reading; what was handled is committed, the rest is read again next time."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # a handler's error surfaces here, after the cleanup
        finally:
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        self._task = asyncio.create_task(self.run(), name=f"renkei-lifecycle-{self.agency_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- handling ---------------------------------------------------------------------

    async def _handle_batch(self, batches: Mapping[Any, list[Any]]) -> None:
        done: dict[Any, int] = {}
        try:
            for tp, records in batches.items():
                for record in records:
                    await self.dispatch_bytes(record.value)
                    done[tp] = record.offset + 1
        finally:
            # Also when a handler failed: what was handled before it stays handled.
            if done:
                await self._commit(done)

    async def _commit(self, offsets: dict[Any, int]) -> None:
        from aiokafka.errors import CommitFailedError

        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # A rebalance moved the partitions: their new owner re-reads from the last
            # commit; within this process the de-duplication drops what was handled.
            log.warning("lifecycle %s: commit failed (%s)", self.agency_id, exc)

    async def dispatch_bytes(self, value: bytes | None) -> bool:
        """Decode one record's value and :meth:`dispatch` it; undecodable bytes are counted."""
        if value is None:
            self.undecodable += 1
            return False
        try:
            message = self.codec.decode(value)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("lifecycle %s: undecodable record: %s", self.agency_id, exc)
            return False
        return await self.dispatch(message)

    async def dispatch(self, message: Message) -> bool:
        """Hand one message to its handler; True if a handler ran.

        A message is remembered as handled only once its handler has returned, so a
        handler that raised gets the message again.
        """
        if not isinstance(message, LifeEventNotice | LinkCodeRemap):
            self.ignored += 1
            return False
        if self.hub_public_key is not None:
            try:
                verify_message(message, self.hub_public_key, self.codec)
            except SignatureError:
                self.bad_signatures += 1
                log.warning(
                    "lifecycle %s: dropped %s %s: bad hub signature",
                    self.agency_id, type(message).__name__, message.header.message_id,
                )  # fmt: skip
                return False
        message_id = message.header.message_id
        if message_id in self._dedup:
            self._dedup.seen(message_id)  # counts the duplicate
            return False
        if isinstance(message, LinkCodeRemap):
            if self.on_remap is None:
                self.unhandled += 1
                return False
            await self.on_remap(message)
            self.remaps += 1
        else:
            handler = self.handlers.get(message.kind)
            if handler is None:
                self.unhandled += 1
                return False
            await handler(message)
            self.notices += 1
        self._dedup.seen(message_id)
        return True
