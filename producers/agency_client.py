"""An agency's side of the hub: enrol records, ask other agencies, get typed answers.

:class:`AgencyClient` writes signed messages to ``agency.<id>.out`` and reads the hub's
answers from ``agency.<id>.in``. Each call waits for *its* answer: enrolment results by
the correlation id (the request's message id), attribute answers and refusals by the
request id. Calls are safe to run by the thousand with :func:`asyncio.gather`.

**Reading the answers.** Answers come through an :class:`~consumers.inbox.InboxReader`
that reads every partition of the inbox (one client's answers may be on any), committed
data only, refusing what the hub did not sign (given ``hub_public_key``) and dropping
duplicates by message id. A reader of its own has no group and is positioned at the end
*inside* :meth:`~AgencyClient.start`, before any request can be sent, so no answer can
slip in between (a group with ``auto_offset_reset="latest"`` would lose answers written
before its first assignment). With ``group_id`` it resumes from that group's committed
offsets instead, committing after each batch it has dispatched. Messages no call waits
for (life-event notices, forwarded requests, late answers) go to ``on_unmatched`` or to
:attr:`AgencyClient.unmatched` — unless another service on a shared reader (``inbox=``)
handles their type: a :class:`~consumers.LifecycleSubscriber` takes the notices, a
:class:`~consumers.ProviderService` the forwarded requests.

**Reply keys.** Values come back HPKE-sealed to a reply key the request names. By
default one ephemeral key pair per client and suite, made at first use, never stored:
a fresh X25519 pair costs ≈ 65 µs and an ML-KEM-768+X25519 pair ≈ 210 µs on the
project's machine, which at 20,000 requests/s would be most of a core, and a new key per
request also defeats the provider's key-parsing cache. ``reply_keys="per_request"``
trades that for a key that dies with its one exchange. One key for many requests is safe
because each answer is bound to its request id (and scenario, provider and items) as
well as to the key: it opens for its own request only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import Any, Literal

from consumers.service import InboxService
from producers.answers import PendingRequest, open_response, waiting_for_values
from producers.calls import WaitingCalls
from renkei.crypto import SealingKeyPair, SuiteName
from renkei.errors import (
    ConfigurationError,
    ExchangeError,
    HubRefusedError,
    PublishError,
)
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
    new_message_id,
)

# PendingRequest and open_response are re-exported: callers import them from here.
__all__ = ["AgencyClient", "PendingRequest", "ReplyKeys", "open_response"]

ReplyKeys = Literal["per_client", "per_request"]
"""One ephemeral reply key pair per client and suite, or a fresh one per request."""


@dataclass(eq=False, repr=False)
class AgencyClient(InboxService):
    """One agency's connection to the hub: enrolment, de-enrolment, attribute requests.

    Use as ``async with AgencyClient(...) as client:`` or call :meth:`start` and
    :meth:`stop`. The parameters and reader settings not listed here are
    :class:`~consumers.service.InboxService`'s. A reader of its own reads every
    partition; with ``group_id`` it resumes from that group's committed offsets
    (committed after each dispatched batch), without one it starts at the end. A shared
    ``inbox`` must read every partition too (``share_partitions=False``).

    :param on_unmatched: called with every message no call waits for; must not block.
        Without it such messages go to :attr:`unmatched`.
    :param reply_keys: ephemeral reply key pair per client (default) or per request.
    :param grace_s: how long past a request's deadline to wait for the hub's TIMEOUT
        before giving up with :class:`RequestTimeoutError`.
    :param unmatched_maxsize: bound of :attr:`unmatched`; beyond it messages are dropped
        and counted in :attr:`unmatched_dropped`.
    """

    _: KW_ONLY
    on_unmatched: Callable[[Message], object] | None = None
    reply_keys: ReplyKeys = "per_client"
    grace_s: float = 5.0
    unmatched_maxsize: int = 10_000
    writes = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reader.share_partitions:
            raise ConfigurationError(
                "an AgencyClient needs every partition of its inbox (its answers may be on "
                "any): give it a reader with share_partitions=False"
            )
        self.unmatched: asyncio.Queue[Message] = asyncio.Queue(maxsize=self.unmatched_maxsize)
        """Messages nobody waits for, when no ``on_unmatched`` is given."""
        self.unmatched_count = 0
        """Messages that matched no waiting call (notices, forwarded requests, late answers)."""
        self.unmatched_dropped = 0
        """Unmatched messages dropped because :attr:`unmatched` was full."""
        self._calls = WaitingCalls()
        self._reply_pairs: dict[SuiteName, SealingKeyPair] = {}
        self._failure: BaseException | None = None
        self.reader.route((EnrolmentResult, AttributeResponse, HubError), self._on_message)
        self.reader.route_rest(self._on_message)
        self.reader.on_stop(self._inbox_stopped)

    def _reader_defaults(self) -> dict[str, Any]:
        return {"start_at": "latest"}

    @property
    def waiting(self) -> int:
        """Calls waiting for an answer."""
        return len(self._calls)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, and position a reader of its own at the end before anything is sent.

        :raises ConfigurationError: ``agency.<id>.in`` does not exist.
        """
        await super().start()
        self._failure = None
        self.run_in_background()

    async def stop(self) -> None:
        """Stop reading and writing; calls still waiting fail with :class:`ExchangeError`."""
        self._calls.fail_all(ExchangeError("the agency client stopped"))
        await super().stop()

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
        request = EnrolmentRequest(
            header=Header.new(self.agency_id), record_ref=record_ref, my_number=my_number,
            basic4=basic4, capacity=capacity,
        )  # fmt: skip
        return await self._call(request, record_ref, timeout_s)

    async def deenrol(
        self, link_code: str, record_ref: str, *, timeout_s: float = 30.0
    ) -> EnrolmentResult:
        """Tell the hub this agency no longer holds the record; returns the hub's acknowledgement.

        :raises HubRefusedError: e.g. NOT_ENROLLED or INVALID_LINK_CODE.
        :raises RequestTimeoutError: no answer within ``timeout_s``.
        """
        request = DeenrolmentRequest(
            header=Header.new(self.agency_id), link_code=link_code, record_ref=record_ref
        )
        return await self._call(request, link_code, timeout_s)

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

        :param request_id: this agency's id for the request; a fresh random one by
            default. The answer's values are sealed to it, so never reuse one: two
            requests under one id and reply key could have their answers swapped.
        :raises ExchangeError: ``request_id`` is empty.
        :raises PublishError: Kafka did not take the request.
        """
        self._check_running()
        request_id = request_id if request_id is not None else new_message_id()
        if not request_id:
            raise ExchangeError("a request id must not be empty: the answer is bound to it")
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
        future = self._calls.register(request_id)
        await self._send(request, link_code, request_id)
        return PendingRequest(
            self._calls.wait,
            request,
            future,
            reply_key=reply_key,
            timeout_s=deadline_s + self.grace_s,
        )

    request = waiting_for_values(
        send_request,
        """Ask ``provider`` for ``items`` about the person this agency knows as ``link_code``.

        :meth:`send_request`'s arguments; waits for the answer.

        :returns: the attribute values, opened.
        :raises HubRefusedError: refused by the hub (``code``), including its TIMEOUT.
        :raises ProviderDeclinedError: the provider answered NO_DATA or REFUSED.
        :raises RequestTimeoutError: no answer by the deadline plus ``grace_s``.
        :raises SealingError: the values do not open for this exchange.
        """,
    )

    # -- dispatch (pure: no Kafka) ----------------------------------------------------

    def dispatch(self, message: Message, value: bytes | None = None) -> bool:
        """Route one decoded message from ``agency.<id>.in``; True if a call was waiting for it.

        Drops it (False) if the inbox reader refuses its signature (over ``value``, the
        bytes it was decoded from, when given) or has seen its id.
        """
        if not self.reader.admit(message, value):
            return False
        self.reader.remember(message)
        return self._match(message)

    def dispatch_bytes(self, value: bytes | None) -> bool:
        """Decode one record's value and :meth:`dispatch` it; undecodable bytes are counted."""
        message = self.reader.decode(value)
        return message is not None and self.dispatch(message, value)

    async def _on_message(self, message: Message) -> bool:
        return self._match(message)  # the reader has verified and de-duplicated it

    def _match(self, message: Message) -> bool:
        if self._calls.resolve(message):
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
        if not self.owns_reader and not self.reader.started:
            # Positions are set at the reader's start: an answer before it could be lost.
            raise ExchangeError("the agency client's shared inbox reader is not started")

    async def _send(self, message: Message, key: str, waiter: str) -> None:
        try:
            await self._publish_signed(message, key)
        except PublishError:
            self._calls.forget(waiter)
            raise

    async def _call(self, message: Message, key: str, timeout_s: float) -> EnrolmentResult:
        """Send ``message`` and wait for the enrolment result that answers its id."""
        message_id = message.header.message_id
        self._check_running()
        future = self._calls.register(message_id)
        await self._send(message, key, message_id)
        answer = await self._calls.wait(message_id, future, timeout_s)
        if isinstance(answer, HubError):
            raise HubRefusedError(answer.code, answer.detail, retriable=answer.retriable)
        if not isinstance(answer, EnrolmentResult):
            raise ExchangeError(f"a {type(answer).__name__} answered a {type(message).__name__}")
        return answer

    def _inbox_stopped(self, error: BaseException | None) -> None:
        if error is None:
            self._calls.fail_all(ExchangeError("the agency client's inbox reader stopped"))
            return
        self._failure = error
        self._calls.fail_all(ExchangeError(f"the agency client's reader failed: {error}"))
