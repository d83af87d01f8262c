"""Messages of the hub's own operation: errors, audit, directory, dead letters."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from schemas import limits
from schemas.models._base import (
    AgencyId,
    AvroRecord,
    Int32,
    Int64,
    MessageId,
    Probability,
    TimestampMs,
)
from schemas.models._limited import (
    AgencyRef,
    AuditKeyText,
    Detail,
    Duty,
    ErrorCodeText,
    EventKinds,
    Hash,
    Id,
    Items,
    KafkaKey,
    KeyId,
    LegalBasis,
    Name,
    ParkedValue,
    ProofHashes,
    PublicKey,
    ScenarioId,
    SigningPublicKey,
    TopicAgency,
    TopicName,
)
from schemas.models.enums import AuditStep, ErrorCode
from schemas.models.records import Message

__all__ = [
    "AgencyEntry",
    "AuditCheckpoint",
    "AuditRecord",
    "AuditTreeHead",
    "DeadLetter",
    "HubError",
    "ScenarioEntry",
    "SignatureFailure",
    "SignatureVerdict",
]


class HubError(Message):
    """A typed refusal or failure, sent to the agency whose message caused it."""

    avro_name: ClassVar[str] = "jp.renkei.HubError"

    code: ErrorCode
    detail: Detail
    request_id: Id | None = None
    retriable: bool


class AuditRecord(Message):
    """One processing step, hash-chained per ``hub.audit`` partition; metadata, never values."""

    avro_name: ClassVar[str] = "jp.renkei.AuditRecord"

    audit_key: AuditKeyText | None = None
    step: AuditStep
    actor: TopicAgency
    requester: TopicAgency | None = None
    provider: TopicAgency | None = None
    scenario_id: ScenarioId | None = None
    legal_basis: LegalBasis | None = None
    items: Items
    request_id: Id | None = None
    hub_request_id: Id | None = None
    # a string, not ErrorCode, so that a newer code never makes an old record unreadable
    error_code: ErrorCodeText | None = None
    disclosable: bool = True
    occurred_at: TimestampMs
    # bulk linkage (renkei link enrol); before prev_hash, which stays last (auditchain)
    linkage_run: Id | None = None
    linkage_score: Probability | None = None
    reviewed_by: Id | None = None
    prev_hash: Hash


class AuditCheckpoint(Message):
    """The hub's signed statement of one audit partition's chain head."""

    avro_name: ClassVar[str] = "jp.renkei.AuditCheckpoint"

    partition: Int32
    first_offset: Int64
    last_offset: Int64
    record_count: Int64
    chain_hash: Hash
    key_id: KeyId


class AuditTreeHead(Message):
    """The hub's signed RFC 9162 tree head of one audit partition (:mod:`renkei.treehead`)."""

    avro_name: ClassVar[str] = "jp.renkei.AuditTreeHead"

    partition: Int32
    tree_size: Int64
    root_hash: Hash
    chain_hash: Hash
    previous_size: Int64
    consistency: ProofHashes
    key_id: KeyId


class AgencyEntry(Message):
    """Directory entry of one agency (or of 'hub', 'registry'): keys and entitlements."""

    avro_name: ClassVar[str] = "jp.renkei.AgencyEntry"

    agency_id: AgencyId
    name: Name
    name_ja: Name
    signing_public_key: SigningPublicKey
    sealing_public_key: PublicKey
    entitled_events: EventKinds
    active: bool


class ScenarioEntry(Message):
    """One row of the scenario table: who may ask whom for which items, for which duty."""

    avro_name: ClassVar[str] = "jp.renkei.ScenarioEntry"

    scenario_id: ScenarioId
    legal_basis: LegalBasis
    duty: Duty
    duty_ja: Duty
    requester: AgencyRef
    provider: AgencyRef
    items: Items
    active: bool


class DeadLetter(Message):
    """Input the hub could not process or would not apply, the input sealed to the operators."""

    avro_name: ClassVar[str] = "jp.renkei.DeadLetter"

    source_topic: TopicName
    source_partition: Int32
    source_offset: Int64
    reason: ErrorCode
    detail: Detail
    key: KafkaKey | None = None
    value: ParkedValue


class SignatureFailure(AvroRecord):
    """One input of a :class:`SignatureVerdict`'s range that did not verify."""

    avro_name: ClassVar[str] = "jp.renkei.SignatureFailure"

    offset: Int64
    message_id: MessageId | None = None
    sender: AgencyRef | None = None
    reason: ErrorCode
    detail: Detail


class SignatureVerdict(Message):
    """The signature verifier's account of a contiguous range of one agency ``.out``
    partition (``trust-acl``): inputs checked, and those that failed."""

    avro_name: ClassVar[str] = "jp.renkei.SignatureVerdict"

    source_topic: TopicName
    source_partition: Int32
    first_offset: Int64
    last_offset: Int64
    checked: Int32
    failures: Annotated[tuple[SignatureFailure, ...], Field(max_length=limits.VERDICT_FAILURES)]
