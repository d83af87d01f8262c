"""What an inbox does with its records: decode once, verify, de-duplicate, route by type.

:class:`Dispatcher` is :class:`consumers.inbox.InboxReader` without Kafka: it turns a
poll's records into handler calls and says which offsets are safe to commit. Each
record is decoded once; its message goes to the one handler routed for its type (or the
handler of the rest), after the hub's signature (required unless ``verify_hub=False``:
:mod:`consumers.trust`) and the de-duplication by message id (:mod:`consumers.dedup`)
let it through. A message counts as handled when its handler returned; only then is its
id remembered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from consumers.dedup import DEFAULT_CAPACITY, Deduplicator
from consumers.trust import HubKey, hub_verification_key
from renkei.envelope import verify_bytes, verify_message
from renkei.errors import ConfigurationError, DecodeError, RenkeiError, SignatureError
from schemas.codec import Codec, default_codec
from schemas.models import Message

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
_Handler = Callable[[Message], Awaitable[bool]]
_Marks = dict[Any, list[tuple[int, "asyncio.Task[bool] | None"]]]
"""Per partition, each record's offset and its running task (None: handled)."""


@dataclass(frozen=True, slots=True)
class _Route:
    handler: _Handler
    ordered: bool


class Dispatcher:
    """Hands each decoded message of one topic to the handler routed for its type.

    :param topic: the topic read (for messages and logs).
    :param codec: the codec; the process-wide one by default.
    :param hub_public_key: the hub's verification key (raw, its public keys, or the path
        of its bundle); by default from ``RENKEI_HUB_PUBLIC_BUNDLE``
        (:mod:`consumers.trust`). Messages it did not sign are refused.
    :param verify_hub: ``False`` reads without verifying: only for tests and benchmarks
        that say so. Otherwise a reader without the hub's key is not built.
    :param dedup_capacity: message ids remembered for de-duplication.
    :param on_rejected: called with a :class:`~renkei.errors.DecodeError` or
        :class:`~renkei.errors.SignatureError` for every record refused; they are
        logged and counted either way.
    :raises ConfigurationError: ``verify_hub`` and no usable hub key.
    """

    def __init__(
        self,
        topic: str,
        *,
        codec: Codec | None = None,
        hub_public_key: HubKey | None = None,
        verify_hub: bool = True,
        dedup_capacity: int = DEFAULT_CAPACITY,
        on_rejected: Callable[[RenkeiError], object] | None = None,
    ) -> None:
        self.topic = topic
        self.codec = codec if codec is not None else default_codec()
        self.hub_public_key = hub_verification_key(
            hub_public_key, verify_hub=verify_hub, reader=f"inbox {topic}"
        )
        """The key every message must be signed with; ``None`` only with ``verify_hub=False``."""
        self.on_rejected = on_rejected
        self.undecodable = 0
        """Records that did not decode."""
        self.bad_signatures = 0
        """Messages refused because the hub's signature did not verify."""
        self.duplicates = 0
        """Messages dropped because one with their id had been handled (or was being)."""
        self.ignored = 0
        """Messages of a type no handler is routed for."""
        self._routes: dict[type[Message], _Route] = {}
        self._rest: _Route | None = None
        self._dedup = Deduplicator(dedup_capacity)
        self._in_flight: set[str] = set()

    # -- routing ----------------------------------------------------------------------

    def route(
        self,
        kinds: type[M] | tuple[type[M], ...],
        handler: Callable[[M], Awaitable[bool]],
        *,
        ordered: bool = True,
    ) -> None:
        """Hand messages of ``kinds`` to ``handler`` (which returns True if it acted).

        :param ordered: run one at a time in offset order; ``False`` runs the batch's
            messages concurrently (a provider's lookups) and commits when all returned.
        :raises ConfigurationError: a kind already has a handler on this reader.
        """
        for kind in kinds if isinstance(kinds, tuple) else (kinds,):
            if kind in self._routes:
                raise ConfigurationError(f"{kind.__name__} on {self.topic} already has a handler")
            self._routes[kind] = _Route(cast(_Handler, handler), ordered)

    def route_rest(self, handler: Callable[[Message], Awaitable[bool]]) -> None:
        """Hand every message of a type no :meth:`route` names to ``handler``.

        :raises ConfigurationError: another handler takes the rest already.
        """
        if self._rest is not None:
            raise ConfigurationError(f"the rest of {self.topic} already has a handler")
        self._rest = _Route(handler, ordered=True)

    # -- one message (no Kafka) -------------------------------------------------------

    def decode(self, value: bytes | None) -> Message | None:
        """The message in a record's value; None (refused, counted) if it does not decode."""
        try:
            if value is None:
                raise DecodeError("a record without a value")
            return self.codec.decode(value)
        except DecodeError as exc:
            self.undecodable += 1
            self._reject(exc)
            return None

    def admit(self, message: Message, value: bytes | None = None) -> bool:
        """True unless ``message`` is badly signed (refused) or a duplicate (dropped).

        :param value: the bytes ``message`` was decoded from; the signature is checked
            over them, as sent. Without them (a message built in this process) over its
            encoding by this codec, which differs for a writer of another schema version.
        """
        message_id = message.header.message_id
        if self.hub_public_key is not None:
            try:
                if value is not None:
                    verify_bytes(value, self.hub_public_key, self.codec)
                else:
                    verify_message(message, self.hub_public_key, self.codec)
            except SignatureError as exc:
                self.bad_signatures += 1
                how = "is signed by another key" if message.header.signature else "is unsigned"
                refused = SignatureError(
                    f"{type(message).__name__} {message_id} from {message.header.sender!r} "
                    f"{how}: not the hub's signature"
                )
                refused.__cause__ = exc
                self._reject(refused)
                return False
        if message_id in self._dedup or message_id in self._in_flight:
            self.duplicates += 1
            return False
        return True

    def remember(self, message: Message) -> None:
        """Record ``message`` as handled: its id is a duplicate from now on."""
        self._dedup.add(message.header.message_id)

    async def dispatch(self, message: Message) -> bool:
        """Hand one decoded message to its handler; True if the handler acted on it."""
        route = self._route_of(message)
        if route is None or not self.admit(message):
            return False
        return await self._start(route, message)

    def _route_of(self, message: Message) -> _Route | None:
        route = self._routes.get(type(message), self._rest)
        if route is None:
            self.ignored += 1
        return route

    def _start(self, route: _Route, message: Message) -> Coroutine[Any, Any, bool]:
        # In flight from now, not from when the handler's task first runs: a copy later
        # in the same batch is a duplicate even while the first waits to be scheduled.
        self._in_flight.add(message.header.message_id)
        return self._deliver(route, message)

    async def _deliver(self, route: _Route, message: Message) -> bool:
        message_id = message.header.message_id
        try:
            acted = await route.handler(message)
        finally:
            self._in_flight.discard(message_id)
        self._dedup.add(message_id)  # only now: a handler that raised gets it again
        return acted

    def _reject(self, error: RenkeiError) -> None:
        log.warning("inbox %s: refused a record: %s", self.topic, error)
        if self.on_rejected is not None:
            self.on_rejected(error)

    # -- a batch ----------------------------------------------------------------------

    async def handle_batch(self, batches: Mapping[Any, Sequence[Any]]) -> dict[Any, int]:
        """Handle one poll's records (each decoded once) and commit what was handled.

        :returns: the offsets committed (or, without a group, that could be).
        :raises Exception: the first handler error, after committing what came before.
        """
        marks: _Marks = {}
        errors: list[BaseException | None] = []
        try:
            for tp, records in batches.items():
                for record in records:
                    marks.setdefault(tp, []).append((record.offset, await self._take(record)))
        except asyncio.CancelledError:
            for task in _tasks(marks):
                task.cancel()
            raise
        finally:
            # Also when an ordered handler raised or stop() cancelled the batch: what was
            # handled stays handled.
            if pending := _tasks(marks):
                await asyncio.wait(pending)
                errors = [task.exception() for task in pending if not task.cancelled()]
            offsets = _handled_offsets(marks)
            await self._commit(offsets)
        if failed := next((e for e in errors if e is not None), None):
            raise failed
        return offsets

    async def _take(self, record: Any) -> asyncio.Task[bool] | None:
        """Hand one record on: None once it is handled (or dropped), else its running task."""
        message = self.decode(record.value)
        if message is None:
            return None
        route = self._route_of(message)
        if route is None or not self.admit(message, record.value):
            return None
        if route.ordered:
            await self._start(route, message)
            return None
        return asyncio.create_task(self._start(route, message))

    async def _commit(self, offsets: dict[Any, int]) -> None:
        """Make ``offsets`` durable (the reader commits them to its group); here: nothing."""


def _tasks(marks: _Marks) -> list[asyncio.Task[bool]]:
    return [task for entries in marks.values() for _, task in entries if task is not None]


def _handled_offsets(marks: _Marks) -> dict[Any, int]:
    """Per partition, the offset after its last record handled with none unhandled before."""
    offsets: dict[Any, int] = {}
    for tp, entries in marks.items():
        for offset, task in entries:
            if task is not None and (task.cancelled() or task.exception() is not None):
                break
            offsets[tp] = offset + 1
    return offsets
