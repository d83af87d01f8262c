"""Field types bounded by the contract's limits (:mod:`schemas.limits`).

One alias per kind of field, so a model says what a field is (``LinkCode``, ``Detail``)
and the table says how long it may be. Decoding a message with a field over its limit
fails validation, so the codec raises ``DecodeError`` and no flow ever sees it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from schemas import limits
from schemas.models.enums import EventKind

__all__ = [
    "Address",
    "AgencyRef",
    "AuditKeyText",
    "Capacity",
    "Ciphertext",
    "Detail",
    "Duty",
    "Enc",
    "ErrorCodeText",
    "EventKinds",
    "Hash",
    "Id",
    "ItemCode",
    "Items",
    "KafkaKey",
    "KeyId",
    "LegalBasis",
    "LinkCode",
    "LooseMyNumber",
    "Name",
    "ParkedValue",
    "PublicKey",
    "ScenarioId",
    "Signature",
    "SigningPublicKey",
    "TopicAgency",
    "TopicName",
]


def _text(maximum: int) -> StringConstraints:
    return StringConstraints(max_length=maximum)


Id = Annotated[str, _text(limits.ID)]
"""A sender's own id (record_ref, request_id, event_id, ...)."""
AgencyRef = Annotated[str, _text(limits.AGENCY_ID)]
"""An agency named in a field (provider, requester)."""
TopicAgency = Annotated[str, _text(limits.TOPIC_NAME)]
"""An agency as the audit trail names it: possibly taken from a topic name."""
TopicName = Annotated[str, _text(limits.TOPIC_NAME)]
"""A Kafka topic name."""
LinkCode = Annotated[str, _text(limits.LINK_CODE)]
"""A link code (53 characters when genuine)."""
ScenarioId = Annotated[str, _text(limits.SCENARIO_ID)]
"""A scenario id."""
ItemCode = Annotated[str, _text(limits.ITEM_CODE)]
"""One item code."""
Items = Annotated[tuple[ItemCode, ...], Field(max_length=limits.ITEMS)]
"""Item codes of one request, scenario or audit record."""
LegalBasis = Annotated[str, _text(limits.LEGAL_BASIS)]
"""A provision of law."""
Name = Annotated[str, _text(limits.NAME)]
"""A person's or an agency's name, or its reading."""
Address = Annotated[str, _text(limits.ADDRESS)]
"""An address."""
Duty = Annotated[str, _text(limits.DUTY)]
"""A scenario's duty."""
Detail = Annotated[str, _text(limits.DETAIL)]
"""A human-readable explanation."""
Capacity = Annotated[str, _text(limits.CAPACITY)]
"""The capacity an agency holds a person in."""
LooseMyNumber = Annotated[str, _text(limits.MY_NUMBER)]
"""A My Number as an agency sends it, not yet checked."""
AuditKeyText = Annotated[str, _text(limits.AUDIT_KEY)]
"""An audit key."""
KeyId = Annotated[str, _text(limits.KEY_ID)]
"""The id of an audit signing key."""
ErrorCodeText = Annotated[str, _text(limits.ERROR_CODE)]
"""An ErrorCode or EnrolmentOutcome symbol, as a string."""
Signature = Annotated[bytes, Field(max_length=limits.SIGNATURE)]
"""An Ed25519 signature, or empty before signing."""
SigningPublicKey = Annotated[bytes, Field(max_length=limits.SIGNING_KEY)]
"""An Ed25519 public key."""
PublicKey = Annotated[bytes, Field(max_length=limits.PUBLIC_KEY)]
"""An HPKE public key of any suite."""
Enc = Annotated[bytes, Field(max_length=limits.ENC)]
"""An HPKE encapsulated key."""
Ciphertext = Annotated[bytes, Field(max_length=limits.CIPHERTEXT)]
"""Sealed attribute values."""
Hash = Annotated[bytes, Field(max_length=limits.HASH)]
"""A SHA-256 digest."""
ProofHashes = Annotated[tuple[Hash, ...], Field(max_length=limits.PROOF_HASHES)]
"""The hashes of a Merkle proof, in the order RFC 9162 gives them."""
KafkaKey = Annotated[bytes, Field(max_length=limits.KEY_BYTES)]
"""A Kafka record key as read."""
ParkedValue = Annotated[bytes, Field(max_length=limits.PARKED_BYTES)]
"""A Kafka record's key and value parked (sealed) in a dead letter."""
EventKinds = Annotated[tuple[EventKind, ...], Field(max_length=limits.EVENT_KINDS)]
"""Event kinds an agency is entitled to."""
