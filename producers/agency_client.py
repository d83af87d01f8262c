"""An agency's side of the hub: enrol records, ask other agencies, get typed answers.

:class:`AgencyClient` writes signed messages to ``agency.<id>.out`` and reads the hub's
answers from ``agency.<id>.in``. Each call waits for *its* answer: enrolment results by
the correlation id (the request's message id), attribute answers and refusals by the
request id. Calls are safe to run by the thousand with :func:`asyncio.gather`.

**Reading the answers.** The consumer has no group: it is assigned every partition of
``agency.<id>.in`` and seeks to the end *inside* :meth:`~AgencyClient.start`, before any
request can be sent, so no answer can slip in between (a group with
``auto_offset_reset="latest"`` would lose answers written before its first assignment).
It reads committed data only, drops duplicates by message id (:mod:`consumers.dedup`;
the hub re-sends after a crash with the same ids) and hands messages nobody waits for
(life-event notices, forwarded requests, late answers) to ``on_unmatched`` or to
:attr:`AgencyClient.unmatched`. With ``group_id`` it resumes from that group's committed
offsets instead, committing after each batch it has dispatched.

**Reply keys.** Values come back HPKE-sealed to a reply key the request names. By
default one ephemeral key pair per client and suite, made at first use, never stored:
a fresh X25519 pair costs ≈ 65 µs and an ML-KEM-768+X25519 pair ≈ 210 µs on the
project's machine, which at 20,000 requests/s would be most of a core, and a new key per
request also defeats the provider's key-parsing cache. ``reply_keys="per_request"``
trades that for a key that dies with its one exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal, Self

from consumers.dedup import DEFAULT_CAPACITY, Deduplicator
from renkei.crypto import AgencyKeys, SealingKeyPair, SuiteName, decode_attributes
from renkei.crypto.context import attributes_aad
from renkei.envelope import sign_message, verify_message
from renkei.errors import (
    ConfigurationError,
    DecodeError,
    ExchangeError,
    HubRefusedError,
    ProviderDeclinedError,
    PublishError,
    RequestTimeoutError,
    SealingError,
    SignatureError,
)
from renkei.readers import committed_reader
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    Basic4,
    DeenrolmentRequest,
    EnrolmentRequest,
    EnrolmentResult,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ResponseStatus,
    new_message_id,
)

__all__ = ["AgencyClient", "PendingRequest", "open_response"]

log = logging.getLogger(__name__)

ReplyKeys = Literal["per_client", "per_request"]


class PendingRequest:
    """An attribute request that has been sent; ``await pending.result()`` for its answer.

    Returned by :meth:`AgencyClient.send_request`; :meth:`AgencyClient.request` is
    ``send_request`` followed by ``result``.
    """

    __slots__ = (
        "_client",
        "_future",
        "_reply_key",
        "provider",
        "request_id",
        "scenario_id",
        "timeout_s",
    )

    def __init__(
        self,
        client: AgencyClient,
        request_id: str,
        future: asyncio.Future[Message],
        *,
        provider: str,
        scenario_id: str,
        reply_key: SealingKeyPair,
        timeout_s: float,
    ) -> None:
        self._client = client
        self._future = future
        self._reply_key = reply_key
        self.request_id = request_id
        self.provider = provider
        self.scenario_id = scenario_id
        self.timeout_s = timeout_s

    def peek(self) -> Message | None:
        """The answer if it has arrived (an ``AttributeResponse`` or ``HubError``), else None."""
        if self._future.done() and not self._future.cancelled() and not self._future.exception():
            return self._future.result()
        return None

    async def result(self) -> dict[str, Any]:
        """The provider's attribute values, opened.

        :raises HubRefusedError: the hub refused the request or timed it out (``code``).
        :raises ProviderDeclinedError: the provider answered NO_DATA or REFUSED.
        :raises RequestTimeoutError: no answer at all within the deadline plus the grace.
        :raises SealingError: the sealed values do not open for this exchange.
        """
        message = await self._client._wait(self.request_id, self._future, self.timeout_s)
        return open_response(
            message,
            requester=self._client.agency_id,
            provider=self.provider,
            scenario_id=self.scenario_id,
            reply_key=self._reply_key,
        )


def open_response(
    message: Message, *, requester: str, provider: str, scenario_id: str, reply_key: SealingKeyPair
) -> dict[str, Any]:
    """The attribute values in the answer to one request, or the typed error it carries.

    The ``aad`` is built from what the requester itself asked (never from the answer), so
    a payload from another exchange does not open.

    :raises HubRefusedError: ``message`` is a :class:`HubError`.
    :raises ProviderDeclinedError: an answer without values.
    :raises SealingError: the values do not open with ``reply_key`` for this exchange.
    :raises ExchangeError: ``message`` is no answer to an attribute request.
    """
    if isinstance(message, HubError):
        raise HubRefusedError(message.code, message.detail, retriable=message.retriable)
    if not isinstance(message, AttributeResponse):
        raise ExchangeError(f"a {type(message).__name__} answered an attribute request")
    if message.status is not ResponseStatus.PROVIDED or message.sealed is None:
        raise ProviderDeclinedError(message.status, message.detail)
    sealed = message.sealed
    if sealed.suite.value != reply_key.suite:
        raise SealingError(f"values sealed with {sealed.suite}, reply key is {reply_key.suite}")
    aad = attributes_aad(scenario_id, requester, provider, reply_key.public_bytes)
    return decode_attributes(reply_key.open(sealed.enc, sealed.ciphertext, aad=aad))


class AgencyClient:
    """One agency's connection to the hub: enrolment, de-enrolment, attribute requests.

    Use as ``async with AgencyClient(...) as client:`` or call :meth:`start` and
    :meth:`stop`.

    :param agency_id: this agency's id; its topics are ``agency.<id>.out`` / ``.in``.
    :param keys: this agency's keys; every message is signed with ``keys.signing``.
    :param kafka: aiokafka connection keyword arguments (``bootstrap_servers``, security
        settings), given to both the producer and the consumer.
    :param topics: topic names (and prefix).
    :param codec: the codec; the process-wide one by default.
    :param group_id: resume reading ``agency.<id>.in`` from this group's committed
        offsets (committed after each dispatched batch); ``None`` starts at the end.
    :param hub_public_key: if given, answers not signed by the hub are dropped (counted in
        :attr:`bad_signatures`).
    :param on_unmatched: called with every message no call waits for; must not block.
        Without it such messages go to :attr:`unmatched`.
    :param reply_keys: ephemeral reply key pair per client (default) or per request.
    :param grace_s: how long past a request's deadline to wait for the hub's TIMEOUT
        before giving up with :class:`RequestTimeoutError`.
    :param dedup_capacity: message ids remembered for de-duplication.
    :param unmatched_maxsize: bound of :attr:`unmatched`; beyond it messages are dropped
        and counted in :attr:`unmatched_dropped`.
    :param metadata_timeout_s: how long :meth:`start` waits for ``agency.<id>.in`` to
        appear in the cluster's metadata (a topic created just before).
    """

    def __init__(
        self,
        agency_id: str,
        keys: AgencyKeys,
        kafka: dict[str, Any],
        topics: Topics,
        codec: Codec | None = None,
        group_id: str | None = None,
        *,
        hub_public_key: bytes | None = None,
        on_unmatched: Callable[[Message], object] | None = None,
        reply_keys: ReplyKeys = "per_client",
        grace_s: float = 5.0,
        dedup_capacity: int = DEFAULT_CAPACITY,
        unmatched_maxsize: int = 10_000,
        metadata_timeout_s: float = 10.0,
    ) -> None:
        if keys.agency_id != agency_id:
            raise ConfigurationError(f"keys of {keys.agency_id!r} given to agency {agency_id!r}")
        self.agency_id = agency_id
        self.keys = keys
        self.topics = topics
        self.codec = codec if codec is not None else default_codec()
        self.group_id = group_id
        self.hub_public_key = hub_public_key
        self.on_unmatched = on_unmatched
        self.reply_keys = reply_keys
        self.grace_s = grace_s
        self.metadata_timeout_s = metadata_timeout_s
        self.unmatched: asyncio.Queue[Message] = asyncio.Queue(maxsize=unmatched_maxsize)
        """Messages nobody waits for, when no ``on_unmatched`` is given."""
        self.unmatched_count = 0
        """Messages that matched no waiting call (notices, forwarded requests, late answers)."""
        self.unmatched_dropped = 0
        """Unmatched messages dropped because :attr:`unmatched` was full."""
        self.undecodable = 0
        """Records on ``agency.<id>.in`` that did not decode."""
        self.bad_signatures = 0
        """Messages dropped because the hub's signature did not verify."""
        self._kafka = dict(kafka)
        self._dedup = Deduplicator(dedup_capacity)
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._reply_pairs: dict[SuiteName, SealingKeyPair] = {}
        self._producer: Any = None
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def duplicates_dropped(self) -> int:
        """Messages dropped because their message id had been seen already."""
        return self._dedup.duplicates

    @property
    def waiting(self) -> int:
        """Calls waiting for an answer."""
        return len(self._waiting)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, and position the reader at the end before anything is sent.

        :raises ConfigurationError: ``agency.<id>.in`` does not exist.
        """
        from aiokafka import AIOKafkaProducer, TopicPartition

        topic = self.topics.agency_in(self.agency_id)
        try:
            self._producer = AIOKafkaProducer(**self._kafka, acks="all", enable_idempotence=True)
            await self._producer.start()
            self._consumer = committed_reader(
                self._kafka, group_id=self.group_id, auto_offset_reset="latest"
            )
            await self._consumer.start()
            partitions = await self._partitions(topic)
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            self._consumer.assign(assigned)
            for tp in assigned:
                committed = await self._consumer.committed(tp) if self.group_id else None
                if committed is None:
                    await self._consumer.seek_to_end(tp)
                else:
                    self._consumer.seek(tp, committed)
                await self._consumer.position(tp)  # pins the offset now, not at first fetch
        except BaseException:
            await self.stop()
            raise
        self._failure = None
        self._task = asyncio.create_task(self._read(), name=f"renkei-client-{self.agency_id}")

    async def _partitions(self, topic: str) -> set[int]:
        # The producer's lookup waits for a topic created a moment ago to reach the
        # metadata; the consumer's would not (it fetches metadata into a throwaway copy).
        from aiokafka.errors import KafkaError

        try:
            async with asyncio.timeout(self.metadata_timeout_s):
                partitions: set[int] = await self._producer.partitions_for(topic)
        except (TimeoutError, KafkaError) as exc:
            raise ConfigurationError(f"topic {topic} does not exist") from exc
        return partitions

    async def stop(self) -> None:
        """Stop reading and writing; calls still waiting fail with :class:`ExchangeError`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_waiting(ExchangeError("the agency client stopped"))
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- calls ------------------------------------------------------------------------

    async def enrol(
        self,
        record_ref: str,
        *,
        my_number: str | None = None,
        basic4: Basic4 | None = None,
        capacity: str = "",
        timeout_s: float = 30.0,
    ) -> EnrolmentResult:
        """Link a record to a person; the result carries the link code or a typed outcome.

        A NO_MATCH, AMBIGUOUS or INVALID outcome is a result, not an error.

        :raises HubRefusedError: the hub refused the message (e.g. no identifiers).
        :raises RequestTimeoutError: no answer within ``timeout_s``.
        """
        message_id = new_message_id()
        request = EnrolmentRequest(
            header=Header.new(self.agency_id, message_id=message_id),
            record_ref=record_ref,
            my_number=my_number,
            basic4=basic4,
            capacity=capacity,
        )
        return await self._call(message_id, request, record_ref, timeout_s)

    async def deenrol(
        self, link_code: str, record_ref: str, *, timeout_s: float = 30.0
    ) -> EnrolmentResult:
        """Tell the hub this agency no longer holds the record; returns the hub's acknowledgement.

        :raises HubRefusedError: e.g. NOT_ENROLLED or INVALID_LINK_CODE.
        :raises RequestTimeoutError: no answer within ``timeout_s``.
        """
        message_id = new_message_id()
        request = DeenrolmentRequest(
            header=Header.new(self.agency_id, message_id=message_id),
            link_code=link_code,
            record_ref=record_ref,
        )
        return await self._call(message_id, request, link_code, timeout_s)

    async def request(
        self,
        *,
        link_code: str,
        provider: str,
        scenario_id: str,
        items: Iterable[str],
        deadline_s: float = 10.0,
        suite: SuiteName = "X25519",
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask ``provider`` for ``items`` about the person this agency knows as ``link_code``.

        :returns: the attribute values, opened.
        :raises HubRefusedError: refused by the hub (``code``), including its TIMEOUT.
        :raises ProviderDeclinedError: the provider answered NO_DATA or REFUSED.
        :raises RequestTimeoutError: no answer by the deadline plus ``grace_s``.
        :raises SealingError: the values do not open for this exchange.
        """
        pending = await self.send_request(
            link_code=link_code,
            provider=provider,
            scenario_id=scenario_id,
            items=items,
            deadline_s=deadline_s,
            suite=suite,
            request_id=request_id,
        )
        return await pending.result()

    async def send_request(
        self,
        *,
        link_code: str,
        provider: str,
        scenario_id: str,
        items: Iterable[str],
        deadline_s: float = 10.0,
        suite: SuiteName = "X25519",
        request_id: str | None = None,
    ) -> PendingRequest:
        """Send an attribute request and return at once; ``await pending.result()`` later.

        :raises PublishError: Kafka did not take the request.
        """
        self._check_running()
        request_id = request_id if request_id is not None else new_message_id()
        reply_key = self._reply_key(suite)
        header = Header.new(self.agency_id)
        request = AttributeRequest(
            header=header,
            request_id=request_id,
            requester_link_code=link_code,
            provider=provider,
            scenario_id=scenario_id,
            items=tuple(items),
            reply_public_key=reply_key.public_bytes,
            hpke_suite=HpkeSuite(suite),
            deadline=header.sent_at + timedelta(seconds=deadline_s),
        )
        future = self._register(request_id)
        await self._send(request, link_code, request_id)
        return PendingRequest(
            self,
            request_id,
            future,
            provider=provider,
            scenario_id=scenario_id,
            reply_key=reply_key,
            timeout_s=deadline_s + self.grace_s,
        )

    # -- dispatch (pure: no Kafka) ----------------------------------------------------

    def dispatch(self, message: Message) -> bool:
        """Route one decoded message from ``agency.<id>.in``; True if a call was waiting for it.

        Drops it (False) if its signature fails or its message id was seen before.
        """
        if self.hub_public_key is not None:
            try:
                verify_message(message, self.hub_public_key, self.codec)
            except SignatureError:
                self.bad_signatures += 1
                log.warning(
                    "dropped %s %s: bad hub signature",
                    type(message).__name__,
                    message.header.message_id,
                )
                return False
        if self._dedup.seen(message.header.message_id):
            return False
        future = self._waiting.pop(_waiter_key(message, self._waiting) or "", None)
        if future is not None and not future.done():
            future.set_result(message)
            return True
        self.unmatched_count += 1
        if self.on_unmatched is not None:
            self.on_unmatched(message)
        else:
            try:
                self.unmatched.put_nowait(message)
            except asyncio.QueueFull:
                self.unmatched_dropped += 1
        return False

    def dispatch_bytes(self, value: bytes | None) -> bool:
        """Decode one record's value and :meth:`dispatch` it; undecodable bytes are counted."""
        if value is None:
            self.undecodable += 1
            return False
        try:
            message = self.codec.decode(value)
        except DecodeError as exc:
            self.undecodable += 1
            log.warning("undecodable record on %s: %s", self.topics.agency_in(self.agency_id), exc)
            return False
        return self.dispatch(message)

    # -- internals --------------------------------------------------------------------

    def _reply_key(self, suite: SuiteName) -> SealingKeyPair:
        if self.reply_keys == "per_request":
            return SealingKeyPair.generate(suite)
        pair = self._reply_pairs.get(suite)
        if pair is None:
            pair = self._reply_pairs[suite] = SealingKeyPair.generate(suite)
        return pair

    def _check_running(self) -> None:
        if self._failure is not None:
            raise ExchangeError("the agency client's reader failed") from self._failure
        if self._producer is None:
            raise ExchangeError("the agency client is not started")

    def _register(self, key: str) -> asyncio.Future[Message]:
        if key in self._waiting:
            raise ExchangeError(f"a call with id {key} is already waiting")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    async def _send(self, message: Message, key: str, waiter: str) -> None:
        signed = sign_message(message, self.keys.signing, self.codec)
        try:
            await self._producer.send_and_wait(
                self.topics.agency_out(self.agency_id), self.codec.encode(signed), key=key.encode()
            )
        except Exception as exc:  # aiokafka's KafkaError and its kin
            self._waiting.pop(waiter, None)
            raise PublishError(f"could not send {type(message).__name__}: {exc}") from exc

    async def _call(
        self, message_id: str, message: Message, key: str, timeout_s: float
    ) -> EnrolmentResult:
        self._check_running()
        future = self._register(message_id)
        await self._send(message, key, message_id)
        answer = await self._wait(message_id, future, timeout_s)
        if isinstance(answer, HubError):
            raise HubRefusedError(answer.code, answer.detail, retriable=answer.retriable)
        if not isinstance(answer, EnrolmentResult):
            raise ExchangeError(f"a {type(answer).__name__} answered a {type(message).__name__}")
        return answer

    async def _wait(self, key: str, future: asyncio.Future[Message], timeout_s: float) -> Message:
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise RequestTimeoutError(f"no answer to {key} within {timeout_s:g} s") from None
        finally:
            self._waiting.pop(key, None)

    def _fail_waiting(self, error: BaseException) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)

    async def _read(self) -> None:
        consumer = self._consumer
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batches.values():
                    for record in records:
                        self.dispatch_bytes(record.value)
                if batches and self.group_id is not None:
                    await consumer.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("agency client %s: reader failed", self.agency_id)
            self._failure = exc
            self._fail_waiting(ExchangeError(f"the agency client's reader failed: {exc}"))


def _waiter_key(message: Message, waiting: dict[str, asyncio.Future[Message]]) -> str | None:
    """Which call a message answers: request id for attribute answers, else correlation id."""
    if isinstance(message, AttributeResponse):
        return message.request_id
    if isinstance(message, HubError):
        if message.request_id is not None and message.request_id in waiting:
            return message.request_id
        return message.header.correlation_id
    if isinstance(message, EnrolmentResult):
        return message.header.correlation_id
    return None
