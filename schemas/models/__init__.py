"""Pydantic models mirroring the Avro schemas in ``schemas/avro/`` one to one.

Same field names in the same order, enums as :class:`enum.StrEnum`, ``date`` for Avro
``date``, aware UTC ``datetime`` (whole milliseconds) for ``timestamp-millis``, ``X | None``
for ``["null", X]``, tuples for arrays. ``tests/unit/test_models_match_schemas.py`` fails
when a model and its schema drift apart. Every model is frozen and forbids unknown fields.
"""

from __future__ import annotations

from schemas.models._base import (
    AGENCY_ID_PATTERN,
    MESSAGE_ID_PATTERN,
    NAMESPACE,
    AvroRecord,
    TimestampMs,
    new_message_id,
    now_ms,
)
from schemas.models.enums import (
    RETRIABLE_CODES,
    AuditStep,
    EnrolmentOutcome,
    ErrorCode,
    EventAction,
    EventKind,
    HpkeSuite,
    ResponseStatus,
    Sex,
)
from schemas.models.exchange import (
    AttributeRequest,
    AttributeResponse,
    DeenrolmentRequest,
    EnrolmentRequest,
    EnrolmentResult,
    ForwardedRequest,
    ProviderResponse,
)
from schemas.models.operations import (
    AgencyEntry,
    AuditCheckpoint,
    AuditRecord,
    AuditTreeHead,
    DeadLetter,
    HubError,
    ScenarioEntry,
    SignatureFailure,
    SignatureVerdict,
)
from schemas.models.records import (
    BODY_FOR_KIND,
    Basic4,
    EventBody,
    Header,
    Message,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    SealedPayload,
)
from schemas.models.registry import LifeEventNotice, LinkCodeRemap, RegistryEvent

__all__ = [
    "AGENCY_ID_PATTERN",
    "BODY_FOR_KIND",
    "ENUM_TYPES",
    "MESSAGE_ID_PATTERN",
    "MESSAGE_TYPES",
    "NAMESPACE",
    "RECORD_TYPES",
    "RETRIABLE_CODES",
    "AgencyEntry",
    "AnyMessage",
    "AttributeRequest",
    "AttributeResponse",
    "AuditCheckpoint",
    "AuditRecord",
    "AuditStep",
    "AuditTreeHead",
    "AvroRecord",
    "Basic4",
    "DeadLetter",
    "DeenrolmentRequest",
    "EnrolmentOutcome",
    "EnrolmentRequest",
    "EnrolmentResult",
    "ErrorCode",
    "EventAction",
    "EventBody",
    "EventKind",
    "ForwardedRequest",
    "Header",
    "HpkeSuite",
    "HubError",
    "LifeEventNotice",
    "LinkCodeRemap",
    "Message",
    "NumberReissued",
    "PersonDied",
    "PersonMoved",
    "PersonRegistered",
    "PersonRenamed",
    "ProviderResponse",
    "RegistryEvent",
    "ResponseStatus",
    "ScenarioEntry",
    "SealedPayload",
    "Sex",
    "SignatureFailure",
    "SignatureVerdict",
    "TimestampMs",
    "new_message_id",
    "now_ms",
]

AnyMessage = (
    RegistryEvent
    | EnrolmentRequest
    | EnrolmentResult
    | DeenrolmentRequest
    | AttributeRequest
    | ForwardedRequest
    | ProviderResponse
    | AttributeResponse
    | LifeEventNotice
    | LinkCodeRemap
    | HubError
    | AuditRecord
    | AuditCheckpoint
    | AuditTreeHead
    | AgencyEntry
    | ScenarioEntry
    | DeadLetter
    | SignatureVerdict
)
"""Every top-level message, as a union for exhaustive ``match`` statements."""

MESSAGE_TYPES: tuple[type[Message], ...] = (
    RegistryEvent,
    EnrolmentRequest,
    EnrolmentResult,
    DeenrolmentRequest,
    AttributeRequest,
    ForwardedRequest,
    ProviderResponse,
    AttributeResponse,
    LifeEventNotice,
    LinkCodeRemap,
    HubError,
    AuditRecord,
    AuditCheckpoint,
    AuditTreeHead,
    AgencyEntry,
    ScenarioEntry,
    DeadLetter,
    SignatureVerdict,
)
"""Every top-level message type: the ones a :class:`schemas.codec.Codec` encodes."""

RECORD_TYPES: tuple[type[AvroRecord], ...] = (
    Header,
    Basic4,
    SealedPayload,
    PersonRegistered,
    PersonMoved,
    PersonRenamed,
    PersonDied,
    NumberReissued,
    SignatureFailure,
    *MESSAGE_TYPES,
)
"""Every model of an Avro record, nested ones included."""

ENUM_TYPES = (
    Sex,
    EventKind,
    EventAction,
    EnrolmentOutcome,
    HpkeSuite,
    ResponseStatus,
    ErrorCode,
    AuditStep,
)
"""Every Avro enum, as its StrEnum (the class name is the Avro name)."""
