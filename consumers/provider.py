"""A provider's side of the hub: answer forwarded requests with sealed values.

:class:`ProviderService` reads ``agency.<id>.in`` in a consumer group, calls the
agency's handler for each :class:`~schemas.models.ForwardedRequest`, seals what it
returns to the requester's reply key and answers with a signed
:class:`~schemas.models.ProviderResponse` on ``agency.<id>.out``.

**Delivery.** Requests come through an :class:`~consumers.inbox.InboxReader` (its own,
or one shared with the agency's client and subscriber), which drops a forwarded request
the hub re-sent by message id before the handler sees it. A request's offset is
committed only after its answer is acknowledged by Kafka, so a crash re-reads and
re-answers; the answer's message id is derived from the forwarded message's id, so the
re-answer is the *same* message and the hub treats it as a late duplicate.

**Minimisation.** Only the items the hub forwarded (those the scenario permits) are
sealed; anything else the handler returns is dropped and counted, never sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consumers.service import InboxService
from renkei.crypto import SuiteName, encode_attributes, seal
from renkei.crypto.context import attributes_aad
from renkei.envelope import sign_message
from renkei.errors import SealingError
from schemas.models import (
    ForwardedRequest,
    Header,
    HpkeSuite,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
    now_ms,
)

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

    Only the requested items are sealed, bound to the exchange
    (:func:`~renkei.crypto.context.attributes_aad`: scenario, requester, this provider,
    the requester's request id, the items, the reply key). ``None`` answers NO_DATA;
    ``status=REFUSED`` answers without values whatever ``attributes`` holds.

    :raises SealingError: the reply key or suite is unusable, the request names no
        request id, or a value is not JSON.
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
            scenario_id=request.scenario_id,
            requester=request.requester,
            provider=provider,
            request_id=request.request_id,
            items=request.items,
            reply_public_key=request.reply_public_key,
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


@dataclass(eq=False, repr=False)
class ProviderService(InboxService):
    """Answers the forwarded requests on ``agency.<id>.in`` with the agency's ``handler``.

    Use as ``async with ProviderService(...)`` (reads in the background) or ``await
    service.run()`` after :meth:`start`. The requests of one poll are answered
    concurrently; their offsets are committed once every answer is acknowledged.
    Parameters before ``handler`` and the keyword-only reader settings are
    :class:`~consumers.service.InboxService`'s; a reader of its own defaults to the
    group ``"<prefix>agency.<agency_id>.provider"`` (within the agency principal's ACLs),
    whose members share the partitions, and 500 records per poll.

    :param handler: looks the values up; ``None`` means NO_DATA. An exception answers
        REFUSED with a fixed detail (never the exception's text, which may hold data).
    """

    handler: Handler
    writes = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handled = 0
        """Forwarded requests answered (any status)."""
        self.refused = 0
        """Answers with status REFUSED (handler failed, deadline passed, unusable key, no
        request id)."""
        self.extra_items_dropped = 0
        """Values the handler returned for items nobody asked for, not sent."""
        self.reader.route(ForwardedRequest, self._on_forwarded, ordered=False)

    def _reader_defaults(self) -> dict[str, Any]:
        return {"group_id": f"{self.topics.prefix}agency.{self.agency_id}.provider",
                "share_partitions": True, "max_batch": 500}  # fmt: skip

    async def _on_forwarded(self, request: ForwardedRequest) -> bool:
        answer = await self._answer(request)
        # Acknowledged (acks=all) before the reader commits the request's offset.
        await self._publish_signed(answer, answer.provider_link_code)
        return True

    # -- one request (no Kafka) -------------------------------------------------------

    async def answer(self, request: ForwardedRequest) -> ProviderResponse:
        """The signed answer to one forwarded request: the handler's values, sealed."""
        return sign_message(await self._answer(request), self.keys.signing, self.reader.codec)

    async def _answer(self, request: ForwardedRequest) -> ProviderResponse:
        """:meth:`answer`, not yet signed (what is sent is signed as it is encoded)."""
        self.handled += 1
        if request.deadline <= now_ms():
            # The hub has answered TIMEOUT already; do not look the person up for nobody.
            return self._refuse(request, "the deadline had passed")
        if not request.request_id:
            # A hub older than ForwardedRequest.request_id: values sealed without it would
            # not open at the requester, so do not look the person up for nothing.
            return self._refuse(request, "the forwarded request names no request id")
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
        return response

    def _refuse(self, request: ForwardedRequest, detail: str) -> ProviderResponse:
        self.refused += 1
        return build_response(
            self.agency_id, request, None, status=ResponseStatus.REFUSED, detail=detail
        )
