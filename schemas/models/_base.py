"""What every Renkei model shares: the frozen record base, timestamps, ids.

Avro ``timestamp-millis`` holds milliseconds, Python ``datetime`` microseconds; a model
keeps only what the wire keeps (UTC, whole milliseconds), so ``decode(encode(m)) == m``
holds for every model, not just for those built with :func:`now_ms`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from schemas import limits

__all__ = [
    "AGENCY_ID_PATTERN",
    "MESSAGE_ID_PATTERN",
    "NAMESPACE",
    "AgencyId",
    "AvroRecord",
    "Int32",
    "Int64",
    "MessageId",
    "MyNumber",
    "Probability",
    "ResidentCode",
    "TimestampMs",
    "new_message_id",
    "now_ms",
]

NAMESPACE = "jp.renkei"
"""Avro namespace of every Renkei type."""

MESSAGE_ID_PATTERN = r"^[0-9a-f]{32}$"
"""A message id: 32 lowercase hex digits."""

AGENCY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""An agency id (also 'hub', 'registry', 'operator'): 1 to 64 characters, as the key ring
allows (``docs/security.md``); no dots, because it names the topics ``agency.<id>.in``."""


def _utc_ms(value: datetime) -> datetime:
    """Reject naive datetimes; normalise to UTC and whole milliseconds, as the wire does."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (UTC)")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    extra_us = value.microsecond % 1000
    if extra_us:
        value = value.replace(microsecond=value.microsecond - extra_us)
    return value


TimestampMs = Annotated[datetime, AfterValidator(_utc_ms)]
"""Avro ``timestamp-millis``: an aware datetime, normalised to UTC and whole milliseconds."""

# max_length as well as the pattern: the limit is checked first, and the table
# (schemas.limits) names every field's maximum
MessageId = Annotated[
    str, StringConstraints(max_length=limits.MESSAGE_ID, pattern=MESSAGE_ID_PATTERN)
]
"""A message id: 32 lowercase hex digits."""

AgencyId = Annotated[str, StringConstraints(max_length=limits.AGENCY_ID, pattern=AGENCY_ID_PATTERN)]
"""An agency id, or 'hub', 'registry', 'operator'."""

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""Avro ``int``: 32-bit signed, checked here so an overflow is a validation error, not a
failure deep inside the encoder."""

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""Avro ``long``: 64-bit signed."""

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""Avro ``double`` holding a probability: finite, from 0 to 1."""

ResidentCode = Annotated[
    str, StringConstraints(max_length=limits.RESIDENT_CODE, pattern=r"^[0-9]{11}$")
]
"""A resident code (住民票コード): 11 digits."""

MyNumber = Annotated[
    str, StringConstraints(max_length=limits.ISSUED_MY_NUMBER, pattern=r"^[0-9]{12}$")
]
"""A My Number as the registry issues it: 12 digits. The check digit is the registry's
to guarantee; agencies' numbers are checked by the hub, which answers INVALID."""


def now_ms() -> datetime:
    """The current time in UTC, truncated to whole milliseconds as Avro carries it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def new_message_id() -> str:
    """A fresh random message id: a UUID4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


class AvroRecord(BaseModel):
    """Base of every model that mirrors an Avro record: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    avro_name: ClassVar[str]
    """Full Avro name of the record this model mirrors, e.g. ``jp.renkei.Header``."""
