"""The resident registry's side: publish life events to ``registry.events``.

Each event is signed by the registry and keyed by resident code, written by an
idempotent ``acks=all`` producer, so the events of one person stay in order on one
partition even when the producer retries. The message id is derived from the event id,
so publishing the same event id again (after a crash, say) sends the same message.

The ``publish`` methods return once the event is handed to the producer; :meth:`flush`
waits until Kafka has acknowledged everything and raises if anything failed. Events of
the same person are acknowledged in the order they were published.
:meth:`~RegistryPublisher.wait_applied` goes further: it waits until the hub has applied
(or refused) them, from its audit trail (:mod:`producers.registry_wait`).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date
from typing import Any

from aiokafka.errors import KafkaError

from consumers.running import Service
from producers.registry_wait import APPLIED, audit_mark, wait_applied
from renkei.crypto import AgencyKeys
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError, PublishError
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import (
    BODY_FOR_KIND,
    Basic4,
    EventAction,
    EventBody,
    EventKind,
    Header,
    RegistryEvent,
    new_message_id,
)

__all__ = ["APPLIED", "REGISTRY_ID", "RegistryPublisher", "event_message_id"]

REGISTRY_ID = "registry"
"""The sender id of every registry event."""


def event_message_id(event_id: str) -> str:
    """The message id of the event ``event_id``: the same on every re-publication."""
    return hashlib.blake2b(event_id.encode(), digest_size=16, person=b"renkei-registry").hexdigest()


class RegistryPublisher(Service):
    """Publishes signed registry events. Use as ``async with RegistryPublisher(...)``.

    :param keys: the registry's keys (agency id ``"registry"``).
    :param kafka: aiokafka connection keyword arguments.
    :param topics: topic names (and prefix).
    :param codec: the codec; the process-wide one by default.
    """

    def __init__(
        self, keys: AgencyKeys, kafka: dict[str, Any], topics: Topics, codec: Codec | None = None
    ) -> None:
        if keys.agency_id != REGISTRY_ID:
            raise ConfigurationError(
                f"registry events need the registry's keys, not {keys.agency_id!r}"
            )
        self.keys = keys
        self.topics = topics
        self.codec = codec if codec is not None else default_codec()
        self.published = 0
        """Events handed to the producer."""
        self._kafka = dict(kafka)
        self._producer: Any = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._errors: list[BaseException] = []
        self._sent: dict[str, str] = {}  # event id → message id, for wait_applied
        self._mark: dict[Any, int] | None = None

    async def start(self) -> None:
        """Connect the producer, and note where the hub's audit trail ends now."""
        from aiokafka import AIOKafkaProducer

        try:  # before the first event: every verdict on ours lies after this mark
            self._mark = await audit_mark(self._kafka, self.topics)
        except (KafkaError, OSError):
            self._mark = None  # not allowed to read it: wait_applied reads from the start
        producer = AIOKafkaProducer(**self._kafka, acks="all", enable_idempotence=True)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        """Flush and close (errors of the flush are raised after closing)."""
        producer = self._producer
        if producer is None:
            return
        try:
            await self.flush()
        finally:
            self._producer = None
            await producer.stop()

    async def flush(self) -> None:
        """Wait until Kafka has acknowledged every event published so far.

        :raises PublishError: some events were not acknowledged (the first cause chained).
        """
        if self._producer is not None:
            await self._producer.flush()
        if self._pending:
            await asyncio.wait(set(self._pending))
        if self._errors:
            errors, self._errors = self._errors, []
            raise PublishError(f"{len(errors)} registry events were not acknowledged") from errors[
                0
            ]

    async def wait_applied(
        self, event_ids: list[str] | None = None, timeout_s: float = 60
    ) -> dict[str, str]:
        """Wait until the hub has committed its verdict on events published here.

        :param event_ids: the events to wait for; every event published since
            :meth:`start` by default.
        :returns: ``{event id: outcome}``: :data:`APPLIED`, or the refusal's error code.
        :raises RequestTimeoutError: some events got no verdict in time.
        :raises PublishError: some events were not even acknowledged by Kafka.
        """
        await self.flush()
        wanted = event_ids if event_ids is not None else list(self._sent)
        messages = {e: self._sent.get(e) or event_message_id(e) for e in wanted}
        return await wait_applied(
            self._kafka, self.topics, messages, since=self._mark, timeout_s=timeout_s,
            codec=self.codec,
        )  # fmt: skip

    # -- events -----------------------------------------------------------------------
    # A first report names its kind and facts; _original makes the body the contract pairs
    # with that kind (BODY_FOR_KIND), so no shorthand restates the pairing. Corrections and
    # annulments carry their body (or none) as given, straight to publish.

    # fmt: off
    async def register(self, resident_code: str, my_number: str, basic4: Basic4,
                       effective_date: date, event_id: str | None = None) -> str:
        """A person enters the register (birth, immigration). Returns the event id."""
        facts = {"my_number": my_number, "basic4": basic4}
        return await self._original(
            EventKind.REGISTERED, resident_code, effective_date, event_id, facts
        )

    async def move(
        self, resident_code: str, address: str, effective_date: date, event_id: str | None = None
    ) -> str:
        """The person moved to ``address``. Returns the event id."""
        facts = {"address": address}
        return await self._original(EventKind.MOVED, resident_code, effective_date, event_id, facts)

    async def rename(self, resident_code: str, name: str, name_kana: str, effective_date: date,
                     event_id: str | None = None) -> str:
        """The person's name changed. Returns the event id."""
        facts = {"name": name, "name_kana": name_kana}
        return await self._original(
            EventKind.RENAMED, resident_code, effective_date, event_id, facts
        )

    async def die(self, resident_code: str, date_of_death: date,
                  effective_date: date | None = None, event_id: str | None = None) -> str:
        """The person died; ``effective_date`` defaults to the date of death. Returns the id."""
        when = effective_date if effective_date is not None else date_of_death
        facts = {"date_of_death": date_of_death}
        return await self._original(EventKind.DIED, resident_code, when, event_id, facts)

    async def reissue_number(
        self, resident_code: str, my_number: str, effective_date: date, event_id: str | None = None
    ) -> str:
        """The person got a new My Number (ID and link codes stay). Returns the event id."""
        facts = {"my_number": my_number}
        return await self._original(
            EventKind.NUMBER_REISSUED, resident_code, effective_date, event_id, facts
        )

    async def _original(
        self,
        kind: EventKind,
        resident_code: str,
        effective_date: date,
        event_id: str | None,
        facts: dict[str, Any],
    ) -> str:
        """Publish a first report of ``kind``: its body holds ``facts``."""
        body = BODY_FOR_KIND[kind](**facts)
        return await self.publish(resident_code, kind, body, effective_date, event_id=event_id)

    async def correct(self, resident_code: str, corrects_event_id: str, kind: EventKind,
                      body: EventBody, effective_date: date, event_id: str | None = None) -> str:
        """Replace the facts of event ``corrects_event_id`` (of ``kind``) with ``body``."""
        return await self._amend(EventAction.CORRECTION, resident_code, corrects_event_id, kind,
                                 body, effective_date, event_id)

    async def annul(self, resident_code: str, corrects_event_id: str, kind: EventKind,
                    effective_date: date, event_id: str | None = None) -> str:
        """Event ``corrects_event_id`` (of ``kind``) was registered in error: undo it."""
        return await self._amend(EventAction.ANNULMENT, resident_code, corrects_event_id, kind,
                                 None, effective_date, event_id)

    async def _amend(self, action: EventAction, resident_code: str, corrects_event_id: str,
                     kind: EventKind, body: EventBody | None, effective_date: date,
                     event_id: str | None) -> str:
        return await self.publish(resident_code, kind, body, effective_date, action=action,
                                  corrects_event_id=corrects_event_id, event_id=event_id)
    # fmt: on

    async def publish(
        self,
        resident_code: str,
        kind: EventKind,
        body: EventBody | None,
        effective_date: date,
        *,
        action: EventAction = EventAction.ORIGINAL,
        corrects_event_id: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Sign and send any registry event; the methods above are shorthands. Returns its id.

        :raises pydantic.ValidationError: the parts contradict (e.g. a body for an annulment).
        :raises PublishError: not started.
        """
        if self._producer is None:
            raise PublishError("the registry publisher is not started")
        event_id = event_id if event_id is not None else new_message_id()
        event = RegistryEvent(
            header=Header.new(REGISTRY_ID, message_id=event_message_id(event_id)),
            event_id=event_id,
            resident_code=resident_code,
            kind=kind,
            action=action,
            corrects_event_id=corrects_event_id,
            effective_date=effective_date,
            body=body,
        )
        signed = sign_message(event, self.keys.signing, self.codec)
        future = await self._producer.send(
            self.topics.registry_events, self.codec.encode(signed), key=resident_code.encode()
        )
        self._pending.add(future)
        future.add_done_callback(self._settled)
        self.published += 1
        self._sent[event_id] = event.header.message_id
        return event_id

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        error = None if future.cancelled() else future.exception()
        if error is not None:
            self._errors.append(error)
