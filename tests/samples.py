"""Realistic sample messages, one builder per top-level type, for any test to reuse.

Deterministic: the same call returns equal messages, so tests may compare bytes. The
people are invented; My Numbers carry a valid check digit, resident codes 11 digits.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime, timedelta

from schemas.models import (
    AgencyEntry,
    AttributeRequest,
    AttributeResponse,
    AuditCheckpoint,
    AuditRecord,
    AuditStep,
    AuditTreeHead,
    Basic4,
    DeadLetter,
    DeenrolmentRequest,
    EnrolmentOutcome,
    EnrolmentRequest,
    EnrolmentResult,
    ErrorCode,
    EventAction,
    EventKind,
    ForwardedRequest,
    Header,
    HpkeSuite,
    HubError,
    LifeEventNotice,
    LinkCodeRemap,
    Message,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    ProviderResponse,
    RegistryEvent,
    ResponseStatus,
    ScenarioEntry,
    SealedPayload,
    Sex,
    SignatureFailure,
    SignatureVerdict,
)

__all__ = [
    "NOW",
    "link_code",
    "my_number",
    "sample_messages",
    "sample_variants",
    "signed_header",
]

NOW = datetime(2025, 4, 1, 9, 30, 15, 123000, tzinfo=UTC)
"""The samples' clock: whole milliseconds, UTC."""


def _blob(label: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def my_number(body11: str) -> str:
    """``body11`` plus its My Number check digit (個人番号の検査用数字)."""
    assert len(body11) == 11
    assert body11.isdigit()
    total = 0
    for n in range(1, 12):
        p = int(body11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    remainder = total % 11
    return body11 + str(0 if remainder <= 1 else 11 - remainder)


def link_code(agency: str, person: str, version: int = 1) -> str:
    """A stand-in link code shaped like a real one: 33 bytes (version first) as 53
    lowercase base32 characters (``docs/security.md``)."""
    raw = bytes([version]) + _blob(f"link/{agency}/{person}", 32)
    return base64.b32encode(raw).decode().rstrip("=").lower()


def signed_header(
    sender: str, n: int, correlation_id: str | None = None, seconds: int = 0
) -> Header:
    """A header with a deterministic id, time and a 64-byte stand-in signature."""
    return Header(
        message_id=hashlib.md5(f"msg/{sender}/{n}".encode(), usedforsecurity=False).hexdigest(),
        correlation_id=correlation_id,
        sender=sender,
        sent_at=NOW + timedelta(seconds=seconds),
        signature=_blob(f"sig/{sender}/{n}", 64),
    )


_TARO = Basic4(
    name="山田 太郎",
    name_kana="ヤマダ タロウ",
    birth_date=date(1985, 4, 12),
    sex=Sex.MALE,
    address="東京都千代田区千代田1番1号",
)
_HANAKO = Basic4(
    name="佐藤 花子",
    name_kana="サトウ ハナコ",
    birth_date=date(1992, 11, 3),
    sex=Sex.FEMALE,
    address="大阪府大阪市北区中之島1丁目3番20号",
)
_SEALED = SealedPayload(suite=HpkeSuite.X25519, enc=_blob("enc", 32), ciphertext=_blob("ct", 141))
_SCENARIO_BASIS = "番号法第19条第8号 別表 項番42(児童手当法による児童手当の支給に関する事務)"
_ITEMS = ("income.2024.taxable", "household.members")
_REQUEST = signed_header("city-shinjuku", 10)
_FORWARD = signed_header("hub", 11, correlation_id=_REQUEST.message_id, seconds=1)
_ANSWER = signed_header("nta", 12, correlation_id=_FORWARD.message_id, seconds=2)


_OSAKA_REQUEST = signed_header("city-osaka", 35)


def sample_messages() -> list[Message]:
    """One realistic instance of every top-level message type, in ``MESSAGE_TYPES`` order."""
    return [
        RegistryEvent(
            header=signed_header("registry", 1),
            event_id="jk-2025-000000123",
            resident_code="12345678901",
            kind=EventKind.REGISTERED,
            action=EventAction.ORIGINAL,
            effective_date=date(2025, 3, 31),
            body=PersonRegistered(my_number=my_number("12345678901"), basic4=_TARO),
        ),
        EnrolmentRequest(
            header=signed_header("nenkin", 2),
            record_ref="KISO-0012-3456-7890",
            my_number=my_number("12345678901"),
            basic4=_TARO,
            capacity="pension_insured",
        ),
        EnrolmentResult(
            header=signed_header("hub", 3, correlation_id=signed_header("nenkin", 2).message_id),
            record_ref="KISO-0012-3456-7890",
            outcome=EnrolmentOutcome.LINKED,
            link_code=link_code("nenkin", "taro"),
            detail="linked by My Number",
        ),
        DeenrolmentRequest(
            header=signed_header("nenkin", 4),
            link_code=link_code("nenkin", "taro"),
            record_ref="KISO-0012-3456-7890",
        ),
        AttributeRequest(
            header=_REQUEST,
            request_id="shinjuku-jidou-2025-000042",
            requester_link_code=link_code("city-shinjuku", "hanako"),
            provider="nta",
            scenario_id="S-0042",
            items=_ITEMS,
            reply_public_key=_blob("reply-key", 32),
            hpke_suite=HpkeSuite.X25519,
            deadline=NOW + timedelta(seconds=30),
        ),
        ForwardedRequest(
            header=_FORWARD,
            hub_request_id="6f1c2a9e0b7d4c3e8a5f1b2c3d4e5f60",
            provider_link_code=link_code("nta", "hanako"),
            requester="city-shinjuku",
            scenario_id="S-0042",
            legal_basis=_SCENARIO_BASIS,
            items=_ITEMS,
            reply_public_key=_blob("reply-key", 32),
            hpke_suite=HpkeSuite.X25519,
            deadline=NOW + timedelta(seconds=30),
        ),
        ProviderResponse(
            header=_ANSWER,
            hub_request_id="6f1c2a9e0b7d4c3e8a5f1b2c3d4e5f60",
            provider_link_code=link_code("nta", "hanako"),
            status=ResponseStatus.PROVIDED,
            sealed=_SEALED,
            detail="",
        ),
        AttributeResponse(
            header=signed_header("hub", 13, correlation_id=_REQUEST.message_id, seconds=2),
            request_id="shinjuku-jidou-2025-000042",
            requester_link_code=link_code("city-shinjuku", "hanako"),
            provider="nta",
            scenario_id="S-0042",
            status=ResponseStatus.PROVIDED,
            sealed=_SEALED,
            detail="",
        ),
        LifeEventNotice(
            header=signed_header("hub", 14, correlation_id=signed_header("registry", 5).message_id),
            link_code=link_code("city-shinjuku", "hanako"),
            event_id="jk-2025-000000456",
            kind=EventKind.MOVED,
            action=EventAction.ORIGINAL,
            effective_date=date(2025, 3, 28),
            body=PersonMoved(address="東京都新宿区西新宿2丁目8番1号"),
        ),
        LinkCodeRemap(
            header=signed_header("hub", 15),
            old_link_code=link_code("city-shinjuku", "hanako"),
            new_link_code=link_code("city-shinjuku", "hanako", version=2),
            key_version=2,
            old_codes_valid_until=NOW + timedelta(days=30),
        ),
        HubError(
            header=signed_header("hub", 16, correlation_id=_REQUEST.message_id),
            code=ErrorCode.ITEM_NOT_PERMITTED,
            detail="item 'medical.history' is not covered by scenario S-0042",
            request_id="shinjuku-jidou-2025-000042",
            retriable=False,
        ),
        AuditRecord(
            header=signed_header("hub", 17),
            audit_key="k1:9c2f5d1e7a3b4c6d8e0f1a2b3c4d5e6f",
            step=AuditStep.FORWARDED,
            actor="hub",
            requester="city-shinjuku",
            provider="nta",
            scenario_id="S-0042",
            legal_basis=_SCENARIO_BASIS,
            items=_ITEMS,
            request_id="shinjuku-jidou-2025-000042",
            hub_request_id="6f1c2a9e0b7d4c3e8a5f1b2c3d4e5f60",
            error_code=None,
            disclosable=True,
            occurred_at=NOW + timedelta(seconds=1),
            prev_hash=hashlib.sha256(b"previous record").digest(),
        ),
        AuditCheckpoint(
            header=signed_header("hub", 18),
            partition=3,
            first_offset=1_000,
            last_offset=1_999,
            record_count=998,
            chain_hash=hashlib.sha256(b"record 1999").digest(),
            key_id="hub-signing-2025-04",
        ),
        AuditTreeHead(
            header=signed_header("hub", 18),
            partition=3,
            tree_size=2_000,
            root_hash=hashlib.sha256(b"root").digest(),
            chain_hash=hashlib.sha256(b"record 1999").digest(),
            previous_size=1_744,
            consistency=tuple(hashlib.sha256(bytes([i])).digest() for i in range(12)),
            key_id="audit-0123456789abcdef",
        ),
        AgencyEntry(
            header=signed_header("operator", 19),
            agency_id="city-shinjuku",
            name="Shinjuku City",
            name_ja="新宿区",
            signing_public_key=_blob("shinjuku-sign", 32),
            sealing_public_key=_blob("shinjuku-seal", 32),
            entitled_events=(EventKind.MOVED, EventKind.RENAMED, EventKind.DIED),
            active=True,
        ),
        ScenarioEntry(
            header=signed_header("operator", 20),
            scenario_id="S-0042",
            legal_basis=_SCENARIO_BASIS,
            duty="Payment of child allowance",
            duty_ja="児童手当の支給に関する事務",
            requester="city-shinjuku",
            provider="nta",
            items=_ITEMS,
            active=True,
        ),
        DeadLetter(
            header=signed_header("hub", 21),
            source_topic="agency.city-shinjuku.out",
            source_partition=2,
            source_offset=88_123,
            reason=ErrorCode.MALFORMED_MESSAGE,
            detail="no C3 01 single-object marker",
            key=link_code("city-shinjuku", "hanako").encode(),
            value=b'{"not": "avro"}',
        ),
        SignatureVerdict(
            header=signed_header("hub", 22),
            source_topic="agency.city-shinjuku.out",
            source_partition=1,
            first_offset=4_000,
            last_offset=4_999,
            checked=998,
            failures=(
                SignatureFailure(
                    offset=4_321,
                    message_id=_REQUEST.message_id,
                    sender="city-shinjuku",
                    reason=ErrorCode.BAD_SIGNATURE,
                    detail="the signature does not verify under city-shinjuku's key",
                ),
            ),
        ),
    ]


def sample_variants() -> list[Message]:
    """Further instances that exercise every union branch, enum default and null."""
    registry = signed_header("registry", 30)
    return [
        RegistryEvent(
            header=registry,
            event_id="jk-2025-000000457",
            resident_code="23456789012",
            kind=EventKind.RENAMED,
            action=EventAction.ORIGINAL,
            effective_date=date(2025, 2, 14),
            body=PersonRenamed(name="鈴木 花子", name_kana="スズキ ハナコ"),
        ),
        RegistryEvent(
            header=signed_header("registry", 31),
            event_id="jk-2025-000000458",
            resident_code="23456789012",
            kind=EventKind.DIED,
            action=EventAction.ORIGINAL,
            effective_date=date(2025, 3, 1),
            body=PersonDied(date_of_death=date(2025, 3, 1)),
        ),
        RegistryEvent(
            header=signed_header("registry", 32),
            event_id="jk-2025-000000459",
            resident_code="23456789012",
            kind=EventKind.DIED,
            action=EventAction.ANNULMENT,
            corrects_event_id="jk-2025-000000458",
            effective_date=date(2025, 3, 1),
        ),
        RegistryEvent(
            header=signed_header("registry", 33),
            event_id="jk-2025-000000460",
            resident_code="12345678901",
            kind=EventKind.NUMBER_REISSUED,
            action=EventAction.ORIGINAL,
            effective_date=date(2025, 3, 20),
            body=NumberReissued(my_number=my_number("98765432109")),
        ),
        RegistryEvent(
            header=signed_header("registry", 34),
            event_id="jk-2025-000000461",
            resident_code="34567890123",
            kind=EventKind.MOVED,
            action=EventAction.CORRECTION,
            corrects_event_id="jk-2025-000000400",
            effective_date=date(2025, 1, 10),
            body=PersonMoved(address="北海道札幌市中央区北1条西2丁目"),
        ),
        EnrolmentRequest(
            header=_OSAKA_REQUEST,
            record_ref="OSK-778899",
            basic4=_HANAKO,
            capacity="resident_tax_payer",
        ),
        EnrolmentRequest(
            header=signed_header("city-osaka", 36),
            record_ref="OSK-778900",
            basic4=_HANAKO.model_copy(update={"sex": Sex.UNSPECIFIED}),
            capacity="resident_tax_payer",
        ),
        EnrolmentResult(
            header=signed_header("hub", 37, correlation_id=_OSAKA_REQUEST.message_id),
            record_ref="OSK-778899",
            outcome=EnrolmentOutcome.AMBIGUOUS,
            detail="2 persons match the basic-4; nothing linked",
        ),
        ProviderResponse(
            header=signed_header("nta", 38),
            hub_request_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            provider_link_code=link_code("nta", "hanako"),
            status=ResponseStatus.NO_DATA,
            detail="no return filed for 2024",
        ),
        AttributeResponse(
            header=signed_header("hub", 39),
            request_id="shinjuku-jidou-2025-000043",
            requester_link_code=link_code("city-shinjuku", "hanako"),
            provider="nta",
            scenario_id="S-0042",
            status=ResponseStatus.REFUSED,
            detail="record under seal by court order",
        ),
        AttributeResponse(
            header=signed_header("hub", 40),
            request_id="shinjuku-jidou-2025-000044",
            requester_link_code=link_code("city-shinjuku", "hanako"),
            provider="nta",
            scenario_id="S-0042",
            status=ResponseStatus.PROVIDED,
            sealed=SealedPayload(
                suite=HpkeSuite.MLKEM768_X25519,
                enc=_blob("enc-pq", 1120),
                ciphertext=_blob("ct-pq", 300),
            ),
            detail="",
        ),
        LifeEventNotice(
            header=signed_header("hub", 41),
            link_code=link_code("nenkin", "jiro"),
            event_id="jk-2025-000000459",
            kind=EventKind.DIED,
            action=EventAction.ANNULMENT,
            corrects_event_id="jk-2025-000000458",
            effective_date=date(2025, 3, 1),
        ),
        HubError(
            header=signed_header("hub", 42),
            code=ErrorCode.TIMEOUT,
            detail="no answer from nta before the deadline",
            request_id="shinjuku-jidou-2025-000045",
            retriable=True,
        ),
        AuditRecord(
            header=signed_header("hub", 43),
            step=AuditStep.KEY_ROTATED,
            actor="operator",
            items=(),
            disclosable=False,
            occurred_at=NOW,
            prev_hash=bytes(32),
        ),
        DeadLetter(
            header=signed_header("hub", 44),
            source_topic="registry.events",
            source_partition=0,
            source_offset=0,
            reason=ErrorCode.UNKNOWN,
            detail="",
            value=b"",
        ),
        SignatureVerdict(  # every input verified; one that did not decode
            header=signed_header("hub", 90),
            source_topic="agency.nta.out",
            source_partition=0,
            first_offset=0,
            last_offset=0,
            checked=1,
            failures=(),
        ),
        SignatureVerdict(
            header=signed_header("hub", 91),
            source_topic="agency.nta.out",
            source_partition=0,
            first_offset=1,
            last_offset=2,
            checked=2,
            failures=(
                SignatureFailure(
                    offset=2, reason=ErrorCode.MALFORMED_MESSAGE, detail="no C3 01 marker"
                ),
            ),
        ),
        AuditRecord(  # bulk linkage: a run's link, and one a person confirmed
            header=signed_header("hub", 45),
            audit_key="k1:9c2f5d1e7a3b4c6d8e0f1a2b3c4d5e6f",
            step=AuditStep.ENROLLED,
            actor="nenkin",
            requester="nenkin",
            items=(),
            occurred_at=NOW,
            linkage_run="3f8a2c1d9e7b6a5f4c3d2e1f0a9b8c7d",
            linkage_score=0.9999987,
            prev_hash=bytes(32),
        ),
        AuditRecord(
            header=signed_header("hub", 46),
            audit_key="k1:9c2f5d1e7a3b4c6d8e0f1a2b3c4d5e6f",
            step=AuditStep.ENROLLED,
            actor="nenkin",
            requester="nenkin",
            items=(),
            occurred_at=NOW,
            linkage_run="3f8a2c1d9e7b6a5f4c3d2e1f0a9b8c7d",
            reviewed_by="nenkin-reviewer-0042",
            prev_hash=bytes(32),
        ),
    ]
