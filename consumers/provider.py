"""A provider's side of the hub: answer forwarded requests with sealed values.

:class:`ProviderService` reads ``agency.<id>.in`` in a consumer group, calls the
agency's handler for each :class:`~schemas.models.ForwardedRequest`, seals what it
returns to the requester's reply key and answers with a signed
:class:`~schemas.models.ProviderResponse` on ``agency.<id>.out``.

**Delivery.** Offsets are committed only after every answer of the batch is
acknowledged by Kafka, so a crash re-reads and re-answers; the answer's message id is
derived from the forwarded message's id, so the re-answer is the *same* message and the
hub treats it as a late duplicate. Forwarded requests the hub re-sent are dropped by
message id (:mod:`consumers.dedup`) before the handler sees them.

**Minimisation.** Only the items the hub forwarded (those the scenario permits) are
sealed; anything else the handler returns is dropped and counted, never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from renkei.crypto import AgencyKeys, SuiteName, encode_attributes, seal
from renkei.crypto.context import attributes_aad
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError, DecodeError, SealingError
from renkei.readers import committed_reader
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import (
    ForwardedRequest,
    Header,
    HpkeSuite,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
    now_ms,
)

from .dedup import DEFAULT_CAPACITY, Deduplicator

__all__ = ["Handler", "ProviderService", "build_response", "response_id"]

log = logging.getLogger(__name__)

Handler = Callable[[ForwardedRequest], Awaitable[Mapping[str, Any] | None]]
"""The agency's lookup: the values for a forwarded request, or ``None`` for NO_DATA."""

_SUITES: dict[HpkeSuite, SuiteName] = {
    HpkeSuite.X25519: "X25519",
    HpkeSuite.MLKEM768_X25519: "MLKEM768_X25519",
}


def response_id(provider: str, forwarded_message_id: str) -> str:
    """The message id of the answer to one forwarded message: the same on every re-answer."""
    digest = hashlib.blake2b(digest_size=16, person=b"renkei-provider")
    digest.update(f"{provider}\x1f{forwarded_message_id}".encode())
    return digest.hexdigest()


def build_response(
    provider: str,
    request: ForwardedRequest,
    attributes: Mapping[str, Any] | None,
    *,
    status: ResponseStatus | None = None,
    detail: str = "",
) -> ProviderResponse:
    """The (unsigned) answer to ``request``: ``attributes`` sealed to its reply key.

    Only the requested items are sealed. ``None`` answers NO_DATA; ``status=REFUSED``
    answers without values whatever ``attributes`` holds.

    :raises SealingError: the reply key or suite is unusable, or a value is not JSON.
    """
    header = Header.new(
        provider,
        request.header.message_id,
        message_id=response_id(provider, request.header.message_id),
    )
    if status is None:
        status = ResponseStatus.NO_DATA if attributes is None else ResponseStatus.PROVIDED
    sealed: SealedPayload | None = None
    if status is ResponseStatus.PROVIDED:
        if attributes is None:
            raise ValueError("PROVIDED needs attributes")
        suite = _SUITES.get(request.hpke_suite)
        if suite is None:
            raise SealingError(f"cannot seal with suite {request.hpke_suite}")
        wanted = set(request.items)
        values = {k: v for k, v in attributes.items() if k in wanted}
        aad = attributes_aad(
            request.scenario_id, request.requester, provider, request.reply_public_key
        )
        enc, ciphertext = seal(
            suite,
            request.reply_public_key,
            encode_attributes(values),
            aad=aad,
        )
        sealed = SealedPayload(suite=request.hpke_suite, enc=enc, ciphertext=ciphertext)
    elif not detail:
        detail = "no data for this person" if status is ResponseStatus.NO_DATA else "refused"
    return ProviderResponse(
        header=header,
        hub_request_id=request.hub_request_id,
        provider_link_code=request.provider_link_code,
        status=status,
        sealed=sealed,
        detail=detail,
    )


class ProviderService:
    """Answers the forwarded requests on ``agency.<id>.in`` with the agency's ``handler``.

    Use as ``async with ProviderService(...)`` (reads in the background) or ``await
    service.run()`` after :meth:`start`.

    :param agency_id: this (providing) agency.
    :param keys: its keys; answers are signed with ``keys.signing``.
    :param kafka: aiokafka connection keyword arguments for the producer and consumer.
    :param topics: topic names (and prefix).
    :param handler: looks the values up; ``None`` means NO_DATA. An exception answers
        REFUSED with a fixed detail (never the exception's text, which may hold data).
    :param codec: the codec; the process-wide one by default.
    :param group_id: consumer group, ``"<agency_id>-provider"`` by default.
    :param max_batch: records per poll; their answers are sent, acknowledged and then
        committed together, and their handlers run concurrently.
    :param dedup_capacity: message ids remembered for de-duplication.
    """

    def __init__(
        self,
        agency_id: str,
        keys: AgencyKeys,
        kafka: dict[str, Any],
        topics: Topics,
        handler: Handler,
        codec: Codec | None = None,
        group_id: str | None = None,
        *,
        max_batch: int = 500,
        dedup_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        if keys.agency_id != agency_id:
            raise ConfigurationError(f"keys of {keys.agency_id!r} given to agency {agency_id!r}")
        self.agency_id = agency_id
        self.keys = keys
        self.topics = topics
        self.handler = handler
        self.codec = codec if codec is not None else default_codec()
        self.group_id = group_id if group_id is not None else f"{agency_id}-provider"
        self.max_batch = max_batch
        self.handled = 0
        """Forwarded requests answered (any status)."""
        self.refused = 0
        """Answers with status REFUSED (handler failed, deadline passed, unusable key)."""
        self.ignored = 0
        """Other messages on ``agency.<id>.in`` (notices, answers to our own requests)."""
        self.undecodable = 0
        """Records that did not decode."""
        self.extra_items_dropped = 0
        """Values the handler returned for items nobody asked for, not sent."""
        self._kafka = dict(kafka)
        self._dedup = Deduplicator(dedup_capacity)
        self._producer: Any = None
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def duplicates_dropped(self) -> int:
        """Forwarded requests dropped because their message id had been seen already."""
        return self._dedup.duplicates

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer and join the consumer group."""
        from aiokafka import AIOKafkaProducer

        try:
            self._producer = AIOKafkaProducer(**self._kafka, acks="all", enable_idempotence=True)
            await self._producer.start()
            self._consumer = committed_reader(
                self._kafka, self.topics.agency_in(self.agency_id), group_id=self.group_id
            )
            await self._consumer.start()
        except BaseException:
            await self.stop()
            raise

    async def run(self) -> None:
        """Answer forwarded requests until cancelled (call :meth:`start` first)."""
        from aiokafka.errors import CommitFailedError

        if self._consumer is None:
            raise ConfigurationError("ProviderService.run() before start()")
        try:
            await self._loop(CommitFailedError)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("provider %s stopped on an error", self.agency_id)
            raise

    async def _loop(self, commit_failed: type[Exception]) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self.max_batch)
            if not batches:
                continue
            requests = [
                request
                for records in batches.values()
                for record in records
                if (request := self._accept(record.value)) is not None
            ]
            answers = await asyncio.gather(*(self.answer(r) for r in requests))
            sent = [
                await self._producer.send(
                    self.topics.agency_out(self.agency_id),
                    self.codec.encode(answer),
                    key=answer.provider_link_code.encode(),
                )
                for answer in answers
            ]
            await asyncio.gather(*sent)  # acknowledged (acks=all) before the commit
            try:
                await self._consumer.commit()
            except commit_failed as exc:
                # A rebalance took the partitions: their new owner re-reads and re-answers
                # with the same message ids, which the hub drops as late duplicates.
                log.warning(
                    "provider %s: commit failed (%s); re-answers follow", self.agency_id, exc
                )

    async def stop(self) -> None:
        """Stop reading and close the clients (uncommitted requests are re-read later)."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # an error that ended run() surfaces here, after the cleanup
        finally:
            consumer, self._consumer = self._consumer, None
            producer, self._producer = self._producer, None
            if consumer is not None:
                await consumer.stop()
            if producer is not None:
                await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        self._task = asyncio.create_task(self.run(), name=f"renkei-provider-{self.agency_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- one request (no Kafka) -------------------------------------------------------

    async def answer(self, request: ForwardedRequest) -> ProviderResponse:
        """The signed answer to one forwarded request: the handler's values, sealed."""
        self.handled += 1
        if request.deadline <= now_ms():
            # The hub has answered TIMEOUT already; do not look the person up for nobody.
            return self._refuse(request, "the deadline had passed")
        try:
            attributes = await self.handler(request)
        except Exception as exc:
            log.error(
                "provider %s: handler failed for hub request %s (%s)",
                self.agency_id,
                request.hub_request_id,
                type(exc).__name__,
            )
            log.debug("handler traceback", exc_info=True)
            return self._refuse(request, "the provider could not answer")
        if attributes is not None:
            self.extra_items_dropped += len(set(attributes) - set(request.items))
        try:
            response = build_response(self.agency_id, request, attributes)
        except SealingError as exc:
            log.warning(
                "provider %s: cannot seal for hub request %s: %s",
                self.agency_id,
                request.hub_request_id,
                exc,
            )
            return self._refuse(request, "the values could not be sealed to the reply key")
        return sign_message(response, self.keys.signing, self.codec)

    def _refuse(self, request: ForwardedRequest, detail: str) -> ProviderResponse:
        self.refused += 1
        response = build_response(
            self.agency_id, request, None, status=ResponseStatus.REFUSED, detail=detail
        )
        return sign_message(response, self.keys.signing, self.codec)

    def _accept(self, value: bytes | None) -> ForwardedRequest | None:
        """The forwarded request in a record, unless it is something else or a duplicate."""
        if value is None:
            self.undecodable += 1
            return None
        try:
            message = self.codec.decode(value)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("provider %s: undecodable record: %s", self.agency_id, exc)
            return None
        if not isinstance(message, ForwardedRequest):
            self.ignored += 1
            return None
        if self._dedup.seen(message.header.message_id):
            return None
        return message
