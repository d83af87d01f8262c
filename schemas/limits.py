"""The contract's size limits: one table that the models validate and the hub enforces.

Every string, bytes and array field of every message has a maximum, and every record the
hub reads has a maximum size as a whole. The hub checks the whole first, before it
decodes anything (``hub_stream/oversize.py``); the models check each field while the
codec decodes (``schemas/models``), so a message over a limit never reaches a flow. The
hub's own messages obey the same limits, which is what lets an agency's reader (the same
models) trust them: the hub clips the texts it writes (:func:`clip`).

Strings are counted in characters (Unicode code points, what pydantic's ``max_length``
counts), bytes and whole records in bytes, arrays in items. ``docs/contract.md``
("Limits") lists this table; a test keeps the two, and the models, in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ADDRESS",
    "AGENCY_ID",
    "AUDIT_KEY",
    "CAPACITY",
    "CIPHERTEXT",
    "DETAIL",
    "DUTY",
    "ENC",
    "ERROR_CODE",
    "EVENT_KINDS",
    "FIELD_LIMITS",
    "HASH",
    "ID",
    "ISSUED_MY_NUMBER",
    "ITEMS",
    "ITEM_CODE",
    "KEPT_BYTES",
    "KEY_BYTES",
    "KEY_ID",
    "LEGAL_BASIS",
    "LIMITS",
    "LINK_CODE",
    "MESSAGE_BYTES",
    "MESSAGE_ID",
    "MY_NUMBER",
    "NAME",
    "PARKED_BYTES",
    "PROOF_HASHES",
    "PUBLIC_KEY",
    "RESIDENT_CODE",
    "SCENARIO_ID",
    "SIGNATURE",
    "SIGNING_KEY",
    "TOPIC_NAME",
    "Limit",
    "clip",
]

Unit = Literal["bytes", "characters", "items"]


@dataclass(frozen=True, slots=True)
class Limit:
    """One row of the table: a maximum and the fields (``Record.field``) it bounds."""

    name: str
    maximum: int
    unit: Unit
    fields: tuple[str, ...]
    why: str


# -- whole records (checked before decoding) ------------------------------------------

MESSAGE_BYTES: Final = 65_536
"""A Kafka record value the hub reads, on any topic. The largest message the field limits
allow an agency (a ProviderResponse with a full ciphertext) stays under it."""

KEY_BYTES: Final = 512
"""A Kafka record key the hub reads: a link code, or a record_ref of 128 characters of up
to 4 UTF-8 bytes each."""

KEPT_BYTES: Final = 1_024
"""Of a record over those limits, the bytes of its value (and key) kept in its DeadLetter:
enough to name its writer schema and header, never the whole."""

PARKED_BYTES: Final = MESSAGE_BYTES + KEY_BYTES + 2_048
"""``DeadLetter.value``: an input's key and value sealed to the operators (HPKE adds its
encapsulated key, up to 1,120 bytes, a tag and a few bytes of framing)."""

# -- fields -----------------------------------------------------------------------------

MESSAGE_ID: Final = 32
ID: Final = 128
AGENCY_ID: Final = 64
TOPIC_NAME: Final = 249
LINK_CODE: Final = 64
SCENARIO_ID: Final = 64
ITEM_CODE: Final = 100
ITEMS: Final = 64
LEGAL_BASIS: Final = 256
NAME: Final = 200
ADDRESS: Final = 400
DUTY: Final = 400
DETAIL: Final = 1_000
CAPACITY: Final = 64
MY_NUMBER: Final = 32
ISSUED_MY_NUMBER: Final = 12
RESIDENT_CODE: Final = 11
SIGNATURE: Final = 64
SIGNING_KEY: Final = 32
PUBLIC_KEY: Final = 1_216
ENC: Final = 1_120
CIPHERTEXT: Final = 49_152
HASH: Final = 32
PROOF_HASHES: Final = 128
AUDIT_KEY: Final = 64
KEY_ID: Final = 64
ERROR_CODE: Final = 64
EVENT_KINDS: Final = 16
VERDICT_FAILURES: Final = 100

LIMITS: Final[tuple[Limit, ...]] = (
    Limit("MESSAGE_BYTES", MESSAGE_BYTES, "bytes", ("(record value)",),
          "a whole record the hub reads, checked before decoding"),
    Limit("KEY_BYTES", KEY_BYTES, "bytes", ("(record key)", "DeadLetter.key"),
          "a record key the hub reads, checked before decoding"),
    Limit("MESSAGE_ID", MESSAGE_ID, "characters", (
        "Header.message_id", "SignatureFailure.message_id",
    ),
          "32 lowercase hex digits"),
    Limit("ID", ID, "characters", (
        "Header.correlation_id", "EnrolmentRequest.record_ref", "EnrolmentResult.record_ref",
        "DeenrolmentRequest.record_ref", "AttributeRequest.request_id",
        "ForwardedRequest.hub_request_id", "ProviderResponse.hub_request_id",
        "AttributeResponse.request_id", "ForwardedRequest.request_id", "RegistryEvent.event_id",
        "RegistryEvent.corrects_event_id", "LifeEventNotice.event_id",
        "LifeEventNotice.corrects_event_id", "HubError.request_id", "AuditRecord.request_id",
        "AuditRecord.hub_request_id", "AuditRecord.linkage_run", "AuditRecord.reviewed_by",
    ), "a sender's own ids, echoed in answers; a linkage run, a reviewer"),
    Limit("AGENCY_ID", AGENCY_ID, "characters", (
        "Header.sender", "AttributeRequest.provider", "ForwardedRequest.requester",
        "AttributeResponse.provider", "AgencyEntry.agency_id", "ScenarioEntry.requester",
        "ScenarioEntry.provider", "SignatureFailure.sender",
    ), "an agency id (the directory allows 2 to 40)"),
    Limit("TOPIC_NAME", TOPIC_NAME, "characters", (
        "DeadLetter.source_topic", "AuditRecord.actor", "AuditRecord.requester",
        "AuditRecord.provider", "SignatureVerdict.source_topic",
    ), "Kafka's own limit; the audit trail names an agency by the topic it wrote to"),
    Limit("LINK_CODE", LINK_CODE, "characters", (
        "AttributeRequest.requester_link_code", "ForwardedRequest.provider_link_code",
        "ProviderResponse.provider_link_code", "AttributeResponse.requester_link_code",
        "EnrolmentResult.link_code", "DeenrolmentRequest.link_code", "LifeEventNotice.link_code",
        "LinkCodeRemap.old_link_code", "LinkCodeRemap.new_link_code",
    ), "a link code is 53 characters"),
    Limit("SCENARIO_ID", SCENARIO_ID, "characters", (
        "AttributeRequest.scenario_id", "ForwardedRequest.scenario_id",
        "AttributeResponse.scenario_id", "ScenarioEntry.scenario_id", "AuditRecord.scenario_id",
    ), "S and digits"),
    Limit("ITEM_CODE", ITEM_CODE, "characters", (
        "AttributeRequest.items[]", "ForwardedRequest.items[]", "ScenarioEntry.items[]",
        "AuditRecord.items[]",
    ), "each item code, as the directory file allows"),
    Limit("ITEMS", ITEMS, "items", (
        "AttributeRequest.items", "ForwardedRequest.items", "ScenarioEntry.items",
        "AuditRecord.items",
    ), "item codes in one request or scenario row"),
    Limit("LEGAL_BASIS", LEGAL_BASIS, "characters", (
        "ForwardedRequest.legal_basis", "ScenarioEntry.legal_basis", "AuditRecord.legal_basis",
    ), "a provision of law"),
    Limit("NAME", NAME, "characters", (
        "Basic4.name", "Basic4.name_kana", "PersonRenamed.name", "PersonRenamed.name_kana",
        "AgencyEntry.name", "AgencyEntry.name_ja",
    ), "a person's or an agency's name"),
    Limit("ADDRESS", ADDRESS, "characters", ("Basic4.address", "PersonMoved.address"),
          "an address, from the prefecture down"),
    Limit("DUTY", DUTY, "characters", ("ScenarioEntry.duty", "ScenarioEntry.duty_ja"),
          "the duty a scenario serves"),
    Limit("DETAIL", DETAIL, "characters", (
        "EnrolmentResult.detail", "ProviderResponse.detail", "AttributeResponse.detail",
        "HubError.detail", "DeadLetter.detail", "SignatureFailure.detail",
    ), "human-readable explanations; the hub clips its own"),
    Limit("CAPACITY", CAPACITY, "characters", ("EnrolmentRequest.capacity",),
          "e.g. pension_recipient"),
    Limit("MY_NUMBER", MY_NUMBER, "characters", ("EnrolmentRequest.my_number",),
          "as an agency holds it (the hub answers INVALID unless it is 12 valid digits); "
          "the registry's are exactly 12 digits"),
    Limit("ISSUED_MY_NUMBER", ISSUED_MY_NUMBER, "characters", (
        "PersonRegistered.my_number", "NumberReissued.my_number",
    ), "12 digits, as the registry issues it"),
    Limit("RESIDENT_CODE", RESIDENT_CODE, "characters", ("RegistryEvent.resident_code",),
          "11 digits"),
    Limit("SIGNATURE", SIGNATURE, "bytes", ("Header.signature",), "Ed25519"),
    Limit("SIGNING_KEY", SIGNING_KEY, "bytes", ("AgencyEntry.signing_public_key",),
          "Ed25519"),
    Limit("PUBLIC_KEY", PUBLIC_KEY, "bytes", (
        "AttributeRequest.reply_public_key", "ForwardedRequest.reply_public_key",
        "AgencyEntry.sealing_public_key",
    ), "the largest HPKE suite's public key (MLKEM768_X25519)"),
    Limit("ENC", ENC, "bytes", ("SealedPayload.enc",),
          "the largest HPKE suite's encapsulated key"),
    Limit("CIPHERTEXT", CIPHERTEXT, "bytes", ("SealedPayload.ciphertext",),
          "sealed attribute values, AEAD tag included"),
    Limit("HASH", HASH, "bytes", (
        "AuditRecord.prev_hash", "AuditCheckpoint.chain_hash", "AuditTreeHead.root_hash",
        "AuditTreeHead.chain_hash", "AuditTreeHead.consistency[]",
    ), "SHA-256"),
    Limit("PROOF_HASHES", PROOF_HASHES, "items", ("AuditTreeHead.consistency",),
          "an RFC 9162 consistency proof has at most 2 log2(tree size) + 1 hashes"),
    Limit("AUDIT_KEY", AUDIT_KEY, "characters", ("AuditRecord.audit_key",),
          "32 hex digits today"),
    Limit("KEY_ID", KEY_ID, "characters", ("AuditCheckpoint.key_id", "AuditTreeHead.key_id"),
          "audit- and 16 hex digits today"),
    Limit("ERROR_CODE", ERROR_CODE, "characters", ("AuditRecord.error_code",),
          "an ErrorCode or EnrolmentOutcome symbol"),
    Limit("EVENT_KINDS", EVENT_KINDS, "items", ("AgencyEntry.entitled_events",),
          "each EventKind at most once"),
    Limit("VERDICT_FAILURES", VERDICT_FAILURES, "items", ("SignatureVerdict.failures",),
          "the verifier starts a new verdict after this many failures"),
    Limit("PARKED_BYTES", PARKED_BYTES, "bytes", ("DeadLetter.value",),
          "an input parked: its key and value (a prefix of a larger one), sealed"),
)  # fmt: skip
"""Every limit, with the fields it bounds; ``[]`` marks each item of an array."""

FIELD_LIMITS: Final[dict[str, Limit]] = {
    field: limit for limit in LIMITS for field in limit.fields if not field.startswith("(")
}
"""The limit of each field, by ``Record.field`` (``Record.field[]`` for array items)."""


def clip(text: str, maximum: int = DETAIL) -> str:
    """``text`` cut to ``maximum`` characters, marked as cut, for texts the hub writes."""
    if len(text) <= maximum:
        return text
    mark = " […]"
    return text[: maximum - len(mark)] + mark
