"""What comes back to a requester: an answer on its way, and the values in it.

:class:`PendingRequest` is an attribute request that has been sent
(:meth:`producers.AgencyClient.send_request`); :func:`open_response` opens the values in
its answer, or raises the typed error the answer carries; :func:`waiting_for_values`
turns a call that sends into one that returns the values.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from renkei.crypto import SealingKeyPair, decode_attributes
from renkei.crypto.context import attributes_aad
from renkei.errors import ExchangeError, HubRefusedError, ProviderDeclinedError, SealingError
from schemas.models import AttributeRequest, AttributeResponse, HubError, Message, ResponseStatus

__all__ = ["PendingRequest", "open_response", "waiting_for_values"]

P = ParamSpec("P")
Wait = Callable[[str, "asyncio.Future[Message]", float], Awaitable[Message]]
"""How a client waits for the answer to one call: ``wait(call id, future, timeout_s)``."""


class PendingRequest:
    """An attribute request that has been sent; ``await pending.result()`` for its answer.

    Returned by :meth:`AgencyClient.send_request`; :meth:`AgencyClient.request` is
    ``send_request`` followed by ``result``. It keeps the request as sent: the values
    open only for exactly that request (:func:`open_response`).
    """

    __slots__ = ("_future", "_reply_key", "_wait", "request", "timeout_s")

    def __init__(
        self,
        wait: Wait,
        request: AttributeRequest,
        future: asyncio.Future[Message],
        *,
        reply_key: SealingKeyPair,
        timeout_s: float,
    ) -> None:
        self._wait = wait
        self._future = future
        self._reply_key = reply_key
        self.request = request
        """The request as sent (signature aside)."""
        self.timeout_s = timeout_s

    @property
    def request_id(self) -> str:
        """The request's id, which its answer or refusal names."""
        return self.request.request_id

    @property
    def requester(self) -> str:
        """This agency."""
        return self.request.header.sender

    @property
    def provider(self) -> str:
        """The agency asked."""
        return self.request.provider

    @property
    def scenario_id(self) -> str:
        """The scenario asked under."""
        return self.request.scenario_id

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
        message = await self._wait(self.request_id, self._future, self.timeout_s)
        return open_response(message, self.request, self._reply_key)


def open_response(
    message: Message, request: AttributeRequest, reply_key: SealingKeyPair
) -> dict[str, Any]:
    """The attribute values in the answer to ``request``, or the typed error it carries.

    The ``aad`` is built from the requester's own request (never from the answer):
    scenario, requester, provider, request id, items and reply key. A payload sealed for
    any other exchange — another request under the same scenario and reply key, about
    another person or the same one, earlier or later — does not open.

    :param request: the request as this agency sent it.
    :param reply_key: the key pair whose public half ``request.reply_public_key`` is.
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
    if reply_key.public_bytes != request.reply_public_key:
        raise SealingError("the reply key given is not the one the request named")
    aad = attributes_aad(
        scenario_id=request.scenario_id,
        requester=request.header.sender,
        provider=request.provider,
        request_id=request.request_id,
        items=request.items,
        reply_public_key=request.reply_public_key,
    )
    return decode_attributes(reply_key.open(sealed.enc, sealed.ciphertext, aad=aad))


def waiting_for_values(
    send: Callable[P, Awaitable[PendingRequest]], doc: str
) -> Callable[P, Awaitable[dict[str, Any]]]:
    """A call that takes ``send``'s arguments, sends, and returns the answer's values."""

    @functools.wraps(send)
    async def call(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        return await (await send(*args, **kwargs)).result()

    call.__doc__ = doc
    return call
