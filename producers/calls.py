"""The calls of one agency client waiting for their answers, and which answer is whose.

An enrolment or de-enrolment is answered under the correlation id (its message id), an
attribute request under its request id — also when the hub refuses it with a
:class:`~schemas.models.HubError`, which names the request id where it has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container

from renkei.errors import ExchangeError, RequestTimeoutError
from schemas.models import AttributeResponse, EnrolmentResult, HubError, Message

__all__ = ["WaitingCalls", "answered_call"]


class WaitingCalls:
    """Futures of the calls waiting for an answer, by call id."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Message]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def register(self, key: str) -> asyncio.Future[Message]:
        """A future for the answer to call ``key``.

        :raises ExchangeError: a call with that id is waiting already.
        """
        if key in self._waiting:
            raise ExchangeError(f"a call with id {key} is already waiting")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def forget(self, key: str) -> None:
        """Stop waiting for call ``key`` (its message was never sent)."""
        self._waiting.pop(key, None)

    def resolve(self, message: Message) -> bool:
        """Hand ``message`` to the call it answers; False if no call waits for it."""
        future = self._waiting.pop(answered_call(message, self._waiting) or "", None)
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    async def wait(self, key: str, future: asyncio.Future[Message], timeout_s: float) -> Message:
        """The answer to call ``key``.

        :raises RequestTimeoutError: none within ``timeout_s``.
        """
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise RequestTimeoutError(f"no answer to {key} within {timeout_s:g} s") from None
        finally:
            self._waiting.pop(key, None)

    def fail_all(self, error: BaseException) -> None:
        """Fail every waiting call with ``error``."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)


def answered_call(message: Message, waiting: Container[str]) -> str | None:
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
