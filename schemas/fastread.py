"""Read the hub's hottest inbound messages straight off the bytes, checking as it reads.

Every exchange brings the hub an ``AttributeRequest`` and a ``ProviderResponse``. Reading
one through fastavro into a dict and validating that with pydantic costs ≈ 20 µs; most of
it is generic machinery (logical-type hooks, union tuples, a second pass over every value).
A reader written for one schema walks the Avro body once and checks each field against the
contract as it goes (:mod:`schemas.limits`, the id and agency patterns, the enum ranges,
the sealed-iff-provided rule): ≈ 5 µs. It builds the same model the codec would
(:func:`schemas.trusted.trusted`), so no code after it can tell the difference.

**It only ever says yes or "ask the codec".** A reader returns ``None`` for anything
unusual — a value over a limit, bytes that end early, a bad UTF-8 sequence, an enum index
out of range, trailing bytes, a timestamp outside the years 1970–9999 — and the codec then
reads the message the general way, which either raises the typed
:class:`~renkei.errors.DecodeError` it always raised or returns the model. A reader is
stricter than the contract, never looser; ``tests/unit/test_fastread.py`` checks that on
every sample and on mutated and random bytes.

Each reader is bound to one schema by its fingerprint (:data:`READERS`): bytes written with
another version, and a schema changed since the reader was written, go the general way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, TypeVar

from schemas import limits
from schemas.models import (
    AttributeRequest,
    Header,
    HpkeSuite,
    Message,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
)
from schemas.models._base import AGENCY_ID_PATTERN, MESSAGE_ID_PATTERN
from schemas.trusted import trusted

__all__ = ["READERS", "Reader"]

E = TypeVar("E", bound=StrEnum)

Reader = Callable[[bytes, int], Message | None]
"""Reads the Avro body that starts at the offset; ``None``: let the codec decide."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, datetime's last millisecond
_MESSAGE_ID = re.compile(MESSAGE_ID_PATTERN.removeprefix("^").removesuffix("$"))
_AGENCY_ID = re.compile(AGENCY_ID_PATTERN.removeprefix("^").removesuffix("$"))
_SUITES: Final = tuple(HpkeSuite)
_STATUSES: Final = tuple(ResponseStatus)
_known_senders: set[str] = set()  # senders that matched the pattern (a handful of agencies)
_TIMES: dict[int, datetime] = {}  # a burst's messages share their milliseconds (immutable)


class _Unusual(Exception):  # control flow inside this module: "ask the codec"
    pass


def _long(data: bytes, at: int) -> tuple[int, int]:
    """Zig-zag varint at ``at``: (value, next offset); at most 10 bytes."""
    byte = data[at]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), at + 1
    n = byte & 0x7F
    shift = 7
    for i in range(at + 1, at + 10):
        byte = data[i]
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), i + 1
        shift += 7
    raise _Unusual


def _bytes(data: bytes, at: int, maximum: int) -> tuple[bytes, int]:
    size = data[at]
    if size < 0x80 and not size & 1:  # most lengths fit one varint byte: inline
        size >>= 1
        at += 1
    else:
        size, at = _long(data, at)
    end = at + size
    if size < 0 or size > maximum or end > len(data):
        raise _Unusual
    return data[at:end], end


def _text(data: bytes, at: int, maximum: int) -> tuple[str, int]:
    size = data[at]
    if size < 0x80 and not size & 1:
        size >>= 1
        at += 1
    else:
        size, at = _long(data, at)
    end = at + size
    # Limits count characters; a UTF-8 character is 1-4 bytes, so a value of over 4 x the
    # limit in bytes is over it in characters too and is not decoded at all.
    if size < 0 or size > 4 * maximum or end > len(data):
        raise _Unusual
    text = data[at:end].decode()  # strict, as fastavro decodes: UnicodeDecodeError is unusual
    if size > maximum and len(text) > maximum:
        raise _Unusual
    return text, end


def _time(data: bytes, at: int) -> tuple[datetime, int]:
    ms, at = _long(data, at)
    known = _TIMES.get(ms)
    if known is not None:
        return known, at
    if not 0 <= ms <= _MAX_MS:
        raise _Unusual
    if len(_TIMES) >= 4096:
        _TIMES.clear()
    _TIMES[ms] = moment = _EPOCH + timedelta(milliseconds=ms)  # as fastavro builds it
    return moment, at


def _enum(data: bytes, at: int, symbols: tuple[E, ...]) -> tuple[E, int]:
    index, at = _long(data, at)
    if not 0 <= index < len(symbols):
        raise _Unusual
    return symbols[index], at


def _header(data: bytes, at: int) -> tuple[Header, int]:
    message_id, at = _text(data, at, limits.MESSAGE_ID)
    if _MESSAGE_ID.fullmatch(message_id) is None:
        raise _Unusual
    branch, at = _long(data, at)
    if branch == 0:
        correlation_id = None
    elif branch == 1:
        correlation_id, at = _text(data, at, limits.ID)
    else:
        raise _Unusual
    sender, at = _text(data, at, limits.AGENCY_ID)
    if sender not in _known_senders:
        if _AGENCY_ID.fullmatch(sender) is None:
            raise _Unusual
        if len(_known_senders) < 4096:
            _known_senders.add(sender)
    sent_at, at = _time(data, at)
    signature, at = _bytes(data, at, limits.SIGNATURE)
    values = {"message_id": message_id, "correlation_id": correlation_id, "sender": sender,
              "sent_at": sent_at, "signature": signature}  # fmt: skip
    return trusted(Header, values), at


def _items(data: bytes, at: int) -> tuple[tuple[str, ...], int]:
    items: list[str] = []
    while True:
        count, at = _long(data, at)
        if count == 0:
            break
        if count < 0 or len(items) + count > limits.ITEMS:
            raise _Unusual  # a negative count (a sized block) is legal Avro, but rare
        for _ in range(count):
            item, at = _text(data, at, limits.ITEM_CODE)
            items.append(item)
    return tuple(items), at


def _attribute_request(data: bytes, at: int) -> AttributeRequest:
    header, at = _header(data, at)
    request_id, at = _text(data, at, limits.ID)
    link_code, at = _text(data, at, limits.LINK_CODE)
    provider, at = _text(data, at, limits.AGENCY_ID)
    scenario_id, at = _text(data, at, limits.SCENARIO_ID)
    items, at = _items(data, at)
    reply_key, at = _bytes(data, at, limits.PUBLIC_KEY)
    suite, at = _enum(data, at, _SUITES)
    deadline, at = _time(data, at)
    if at != len(data):
        raise _Unusual
    values = {"header": header, "request_id": request_id, "requester_link_code": link_code,
              "provider": provider, "scenario_id": scenario_id, "items": items,
              "reply_public_key": reply_key, "hpke_suite": suite, "deadline": deadline}  # fmt: skip
    return trusted(AttributeRequest, values)


def _provider_response(data: bytes, at: int) -> ProviderResponse:
    header, at = _header(data, at)
    hub_request_id, at = _text(data, at, limits.ID)
    link_code, at = _text(data, at, limits.LINK_CODE)
    status, at = _enum(data, at, _STATUSES)
    branch, at = _long(data, at)
    sealed: SealedPayload | None = None
    if branch == 1:
        suite, at = _enum(data, at, _SUITES)
        enc, at = _bytes(data, at, limits.ENC)
        ciphertext, at = _bytes(data, at, limits.CIPHERTEXT)
        sealed = trusted(SealedPayload, {"suite": suite, "enc": enc, "ciphertext": ciphertext})
    elif branch != 0:
        raise _Unusual
    detail, at = _text(data, at, limits.DETAIL)
    if at != len(data):
        raise _Unusual
    # The model's rule (schemas.models.exchange): sealed exactly when PROVIDED, unless a
    # newer writer's status (UNKNOWN) leaves it open.
    if status is not ResponseStatus.UNKNOWN and (status is ResponseStatus.PROVIDED) != (
        sealed is not None
    ):
        raise _Unusual
    values = {"header": header, "hub_request_id": hub_request_id,
              "provider_link_code": link_code, "status": status, "sealed": sealed,
              "detail": detail}  # fmt: skip
    return trusted(ProviderResponse, values)


def _guarded(read: Callable[[bytes, int], Message]) -> Reader:
    def reader(data: bytes, at: int) -> Message | None:
        try:
            return read(data, at)
        except (_Unusual, IndexError, UnicodeDecodeError):
            return None

    reader.__doc__ = read.__doc__
    return reader


READERS: Final[dict[str, tuple[str, Reader]]] = {
    AttributeRequest.avro_name: ("ebed88a194ad0127", _guarded(_attribute_request)),
    ProviderResponse.avro_name: ("30d69ce5a0b89e97", _guarded(_provider_response)),
}
"""Avro name → (hex fingerprint of the schema the reader was written for, the reader)."""
