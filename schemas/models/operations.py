"""Messages of the hub's own operation: errors, audit, directory, dead letters."""

from __future__ import annotations

from typing import ClassVar

from schemas.models._base import AgencyId, Int32, Int64, TimestampMs
from schemas.models.enums import AuditStep, ErrorCode, EventKind
from schemas.models.records import Message

__all__ = [
    "AgencyEntry",
    "AuditCheckpoint",
    "AuditRecord",
    "DeadLetter",
    "HubError",
    "ScenarioEntry",
]


class HubError(Message):
    """A typed refusal or failure, sent to the agency whose message caused it."""

    avro_name: ClassVar[str] = "jp.renkei.HubError"

    code: ErrorCode
    detail: str
    request_id: str | None = None
    retriable: bool


class AuditRecord(Message):
    """One processing step, hash-chained per ``hub.audit`` partition; metadata, never values."""

    avro_name: ClassVar[str] = "jp.renkei.AuditRecord"

    audit_key: str | None = None
    step: AuditStep
    actor: str
    requester: str | None = None
    provider: str | None = None
    scenario_id: str | None = None
    legal_basis: str | None = None
    items: tuple[str, ...]
    request_id: str | None = None
    hub_request_id: str | None = None
    # a string, not ErrorCode, so that a newer code never makes an old record unreadable
    error_code: str | None = None
    disclosable: bool = True
    occurred_at: TimestampMs
    prev_hash: bytes


class AuditCheckpoint(Message):
    """The hub's signed statement of one audit partition's chain head."""

    avro_name: ClassVar[str] = "jp.renkei.AuditCheckpoint"

    partition: Int32
    first_offset: Int64
    last_offset: Int64
    record_count: Int64
    chain_hash: bytes
    key_id: str


class AgencyEntry(Message):
    """Directory entry of one agency (or of 'hub', 'registry'): keys and entitlements."""

    avro_name: ClassVar[str] = "jp.renkei.AgencyEntry"

    agency_id: AgencyId
    name: str
    name_ja: str
    signing_public_key: bytes
    sealing_public_key: bytes
    entitled_events: tuple[EventKind, ...]
    active: bool


class ScenarioEntry(Message):
    """One row of the scenario table: who may ask whom for which items, for which duty."""

    avro_name: ClassVar[str] = "jp.renkei.ScenarioEntry"

    scenario_id: str
    legal_basis: str
    duty: str
    duty_ja: str
    requester: str
    provider: str
    items: tuple[str, ...]
    active: bool


class DeadLetter(Message):
    """Input the hub could not process, kept byte for byte with the reason."""

    avro_name: ClassVar[str] = "jp.renkei.DeadLetter"

    source_topic: str
    source_partition: Int32
    source_offset: Int64
    reason: ErrorCode
    detail: str
    key: bytes | None = None
    value: bytes
