"""What the client, the provider and the subscriber share: an inbox to read, an outbox to write.

:class:`InboxService` is the base of :class:`producers.AgencyClient`,
:class:`consumers.ProviderService` and :class:`consumers.LifecycleSubscriber`. Each routes
the message types it handles on an :class:`~consumers.inbox.InboxReader` (its
:attr:`~InboxService.reader`): one it makes from the reader settings it was given, or
one shared with the agency's other services (``inbox=``), which the reader's owner starts
and stops. What the reader drops (undecodable, badly signed, duplicate, of a type nobody
handles) is counted by the reader, once.

The classes are dataclasses so that the parameters they share are declared once, here:
each subclass adds its own after them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Self, overload

from consumers.inbox import InboxReader
from consumers.running import BackgroundService
from consumers.trust import HubKey
from consumers.witness import AlarmListener
from renkei.crypto import AgencyKeys
from renkei.envelope import encode_signed
from renkei.errors import ConfigurationError, PublishError
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import Message

__all__ = ["InboxService"]

_READER_SETTINGS = (
    "codec", "group_id", "hub_public_key", "verify_hub", "max_batch", "dedup_capacity",
    "metadata_timeout_s", "witness", "on_witness_alarm",
)  # fmt: skip


class _ReaderCount:
    """A read-only counter of the service's reader, e.g. ``service.undecodable``."""

    def __init__(self, counter: str, doc: str) -> None:
        self.counter = counter
        self.__doc__ = doc

    @overload
    def __get__(self, service: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, service: InboxService, owner: type[Any]) -> int: ...
    def __get__(self, service: InboxService | None, owner: type[Any]) -> Self | int:
        if service is None:
            return self  # on the class: the descriptor itself (for docs and introspection)
        count: int = getattr(service.reader, self.counter)
        return count


# eq=False: services compare by identity; repr=False: a repr would print the keys.
@dataclass(eq=False, repr=False)
class InboxService(BackgroundService):
    """One part of an agency: handles some message types of ``agency.<id>.in``.

    :param agency_id: this agency; its topics are ``agency.<id>.in`` and ``.out``.
    :param keys: its keys (checked to be this agency's); what it writes is signed with
        ``keys.signing``.
    :param kafka: aiokafka connection keyword arguments (``bootstrap_servers``, security
        settings), for the producer and a reader of its own.
    :param topics: topic names (and prefix).
    :param inbox: a reader shared with the agency's other services; ``None`` (default)
        makes one of its own from the settings below and the service's defaults.
    :param codec: the codec; the process-wide one by default.
    :param group_id: the reader's consumer group (each service has a default).
    :param hub_public_key: the hub's verification key (raw, its public keys, or the path
        of ``hub.public.json``); by default ``RENKEI_HUB_PUBLIC_BUNDLE``
        (:mod:`consumers.trust`). Messages the hub did not sign are refused (counted in
        :attr:`bad_signatures`); without a key the service is not built.
    :param verify_hub: ``False`` reads unverified: only for tests and benchmarks that
        say so.
    :param max_batch: records per poll, and so at most per offset commit.
    :param dedup_capacity: message ids remembered for de-duplication.
    :param metadata_timeout_s: how long a reader of every partition waits at start for
        ``agency.<id>.in`` to appear in the metadata (a topic created just before).
    :param witness: run the agency's witness of the audit trail's tree heads
        (:mod:`consumers.witness`): ``None`` when ``RENKEI_AGENCY_AUDIT_TRUST`` is set,
        ``True`` always, ``False`` never; ``service.reader.witness`` is it.
    :param on_witness_alarm: called with every alarm the witness raises.

    The reader settings are refused with ``inbox``: a shared reader has its own.
    """

    agency_id: str
    keys: AgencyKeys
    kafka: dict[str, Any]
    topics: Topics
    _: KW_ONLY
    inbox: InboxReader | None = None
    codec: Codec | None = None
    group_id: str | None = None
    hub_public_key: HubKey | None = None
    verify_hub: bool | None = None
    max_batch: int | None = None
    dedup_capacity: int | None = None
    metadata_timeout_s: float | None = None
    witness: bool | None = None
    on_witness_alarm: AlarmListener | None = None

    writes: ClassVar[bool] = False
    """Whether the service writes to ``agency.<id>.out`` (and so has a producer)."""

    def __post_init__(self) -> None:
        if self.keys.agency_id != self.agency_id:
            raise ConfigurationError(
                f"keys of {self.keys.agency_id!r} given to agency {self.agency_id!r}"
            )
        given = {name: getattr(self, name) for name in _READER_SETTINGS}
        given = {name: value for name, value in given.items() if value is not None}
        if self.inbox is None:
            settings = {**self._reader_defaults(), **given}
            self.reader = InboxReader(self.agency_id, self.kafka, self.topics, **settings)
            """The reader this service's messages come from."""
        elif given:
            raise ConfigurationError(
                f"{', '.join(sorted(given))}: settings of a reader of its own, "
                f"but {type(self).__name__} was given a shared inbox"
            )
        elif self.inbox.agency_id != self.agency_id:
            raise ConfigurationError(
                f"{self.inbox.agency_id}'s inbox given to agency {self.agency_id!r}"
            )
        else:
            self.reader = self.inbox
        self.owns_reader = self.inbox is None
        """Whether the reader is this service's own (started and stopped with it)."""
        self._producer: Any = None

    def _reader_defaults(self) -> dict[str, Any]:
        """The settings of a reader of its own that the caller did not give."""
        return {}

    # -- what the reader counts (the reader's own counters, under the services' names) --

    duplicates_dropped = _ReaderCount(
        "duplicates", "Messages the reader dropped because their message id had been handled."
    )
    undecodable = _ReaderCount("undecodable", "Records on the inbox that did not decode.")
    bad_signatures = _ReaderCount(
        "bad_signatures", "Messages the reader refused: the hub's signature did not verify."
    )
    ignored = _ReaderCount("ignored", "Messages of a type no service on the reader handles.")

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer (if the service writes) and start a reader of its own."""
        from aiokafka import AIOKafkaProducer

        try:
            if self.writes:
                self._producer = AIOKafkaProducer(**self.kafka, acks="all", enable_idempotence=True)
                await self._producer.start()
            if self.owns_reader:
                await self.reader.start()
        except BaseException:
            await self.stop()
            raise

    def run_in_background(self) -> None:
        """Read the inbox in the background, if the reader is this service's own."""
        if self.owns_reader:
            self.reader.run_in_background()

    async def run(self) -> None:
        """Read the inbox until cancelled or a handler raises (call :meth:`start` first).

        :raises ConfigurationError: not started, or the inbox is shared (run it instead).
        """
        name = type(self).__name__
        if not self.owns_reader:
            raise ConfigurationError(f"{name} shares its inbox: run the InboxReader")
        if not self.reader.started:
            raise ConfigurationError(f"{name}.run() before start()")
        await self.reader.run()

    async def stop(self) -> None:
        """Stop a reader of its own (raising the error that stopped it) and the producer."""
        try:
            if self.owns_reader:
                await self.reader.stop()
        finally:
            producer, self._producer = self._producer, None
            if producer is not None:
                await producer.stop()

    async def _publish(self, message: Message, key: str) -> None:
        """Write a signed ``message`` to ``agency.<id>.out``; return once Kafka has it.

        :raises PublishError: Kafka did not take it.
        """
        await self._send_bytes(self.reader.codec.encode(message), key, message)

    async def _publish_signed(self, message: Message, key: str) -> None:
        """Sign ``message`` with this agency's key and write it, as :meth:`_publish` does.

        The bytes of ``_publish(sign_message(message, ...))``, encoded once: a signed
        model is never built only to be encoded again (``encode_signed``).

        :raises PublishError: Kafka did not take it.
        """
        value = encode_signed(message, self.keys.signing, self.reader.codec)
        await self._send_bytes(value, key, message)

    async def _send_bytes(self, value: bytes, key: str, message: Message) -> None:
        try:
            await self._producer.send_and_wait(
                self.topics.agency_out(self.agency_id), value, key=key.encode()
            )
        except Exception as exc:  # aiokafka's KafkaError and its kin
            raise PublishError(f"could not send {type(message).__name__}: {exc}") from exc
