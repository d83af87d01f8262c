"""Records shared by several messages, and :class:`Message`, the base of every top-level one."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from schemas.models._base import (
    AgencyId,
    AvroRecord,
    MessageId,
    MyNumber,
    TimestampMs,
    new_message_id,
    now_ms,
)
from schemas.models._limited import Address, Ciphertext, Enc, Id, Name, Signature
from schemas.models.enums import EventKind, HpkeSuite, Sex

__all__ = [
    "BODY_FOR_KIND",
    "Basic4",
    "EventBody",
    "Header",
    "Message",
    "NumberReissued",
    "PersonDied",
    "PersonMoved",
    "PersonRegistered",
    "PersonRenamed",
    "SealedPayload",
]


class Header(AvroRecord):
    """Envelope every top-level message starts with: id, correlation, sender, time, signature."""

    avro_name: ClassVar[str] = "jp.renkei.Header"

    message_id: MessageId
    correlation_id: Id | None = None
    sender: AgencyId
    sent_at: TimestampMs
    signature: Signature

    @classmethod
    def new(
        cls,
        sender: str,
        correlation_id: str | None = None,
        *,
        message_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> Header:
        """A header for a message about to be sent, not yet signed (``signature=b""``).

        :param sender: agency id, or 'hub', 'registry', 'operator'.
        :param correlation_id: ``message_id`` of the message this one answers.
        :param message_id: a deterministic id (the hub derives output ids from its
            input so a re-sent output keeps its id); a random one if not given.
        :param sent_at: defaults to :func:`now_ms`.
        """
        return cls(
            message_id=message_id if message_id is not None else new_message_id(),
            correlation_id=correlation_id,
            sender=sender,
            sent_at=sent_at if sent_at is not None else now_ms(),
            signature=b"",
        )


class Basic4(AvroRecord):
    """The basic four facts (基本4情報): name, kana, birth date, sex, address."""

    avro_name: ClassVar[str] = "jp.renkei.Basic4"

    name: Name
    name_kana: Name
    birth_date: date
    sex: Sex = Sex.UNSPECIFIED
    address: Address


class SealedPayload(AvroRecord):
    """Attribute values HPKE-sealed to the requester; the hub routes it unopened."""

    avro_name: ClassVar[str] = "jp.renkei.SealedPayload"

    suite: HpkeSuite
    enc: Enc
    ciphertext: Ciphertext


class PersonRegistered(AvroRecord):
    """Body of a REGISTERED event."""

    avro_name: ClassVar[str] = "jp.renkei.PersonRegistered"

    my_number: MyNumber
    basic4: Basic4


class PersonMoved(AvroRecord):
    """Body of a MOVED event."""

    avro_name: ClassVar[str] = "jp.renkei.PersonMoved"

    address: Address


class PersonRenamed(AvroRecord):
    """Body of a RENAMED event."""

    avro_name: ClassVar[str] = "jp.renkei.PersonRenamed"

    name: Name
    name_kana: Name


class PersonDied(AvroRecord):
    """Body of a DIED event."""

    avro_name: ClassVar[str] = "jp.renkei.PersonDied"

    date_of_death: date


class NumberReissued(AvroRecord):
    """Body of a NUMBER_REISSUED event: the new My Number (ID and link codes stay)."""

    avro_name: ClassVar[str] = "jp.renkei.NumberReissued"

    my_number: MyNumber


EventBody = PersonRegistered | PersonMoved | PersonRenamed | PersonDied | NumberReissued
"""The body of a life event, in the order of the Avro union (after null)."""

BODY_FOR_KIND: dict[EventKind, type[EventBody]] = {
    EventKind.REGISTERED: PersonRegistered,
    EventKind.MOVED: PersonMoved,
    EventKind.RENAMED: PersonRenamed,
    EventKind.DIED: PersonDied,
    EventKind.NUMBER_REISSUED: NumberReissued,
}
"""Which body each event kind carries (``UNKNOWN`` has none we could know)."""


class Message(AvroRecord):
    """Base of every top-level message: each starts with a :class:`Header`."""

    header: Header
