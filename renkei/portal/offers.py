"""Passkey registration offers: what the registry signs, and what the hub side signs back.

At the registry's counter a citizen is handed a one-time *registration code*; the registry
publishes an :class:`Offer` on ``registry.portal`` — the resident code, a hash of the code
(never the code), when it was issued and until when it may be used — signed with the
registry's key. The hub side (:mod:`.registrar`, with the master secret) checks the
signature against the registry's pinned key, adds the person's audit key and signs the
result, a :class:`Registration`, with the audit signing key, on
``hub.portal.registrations``. The portal believes a registration only when a pinned audit
key verifies it (the same keys it checks the trail with), so whoever can write to Kafka
cannot register a passkey for someone else.

Both are UTF-8 JSON objects. The signature covers not the JSON but a line-based message
(:meth:`Offer.signed_bytes`, :meth:`Registration.signed_bytes`), so no JSON
canonicalisation is needed to check it. ``docs/contract.md`` specifies every byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from renkei.auditchain import AuditSigner, TrustedKeys
from renkei.crypto import SigningKey, verify
from renkei.errors import ContractError, RegistrationError, SignatureError

__all__ = [
    "OFFER_FORMAT",
    "REGISTRATION_FORMAT",
    "Offer",
    "Registration",
    "code_hash",
    "make_offer",
    "normalize_code",
    "read_offer",
    "read_registration",
    "sign_registration",
]

OFFER_FORMAT: Final = "renkei-portal-offer/1"
REGISTRATION_FORMAT: Final = "renkei-portal-registration/1"
_CODE_BYTES = 15  # 120 random bits: 24 base32 characters; a hash of it cannot be guessed
_HEX32 = r"^[0-9a-f]{32}$"
_HEX64 = r"^[0-9a-f]{64}$"


def normalize_code(text: str) -> str:
    """A registration code as typed (any case, with hyphens or spaces) → 24 characters."""
    return re.sub(r"[\s-]", "", text).upper()


def code_hash(offer_id: str, code: str) -> str:
    """What an offer carries instead of the code: hex SHA-256 of
    ``renkei-portal-code/1\\n<offer_id>\\n<code>`` (the offer id salts it)."""
    message = f"renkei-portal-code/1\n{offer_id}\n{normalize_code(code)}"
    return hashlib.sha256(message.encode()).hexdigest()


class Offer(BaseModel):
    """The registry's offer: this resident may register one passkey with this code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-portal-offer/1"] = OFFER_FORMAT
    offer_id: str = Field(pattern=_HEX32)
    resident_code: str = Field(pattern=r"^[0-9]{11}$")
    code_hash: str = Field(pattern=_HEX64)
    issued_at_ms: int = Field(ge=0)
    expires_at_ms: int = Field(ge=0)
    signature: str = Field(default="", max_length=128)

    def signed_bytes(self) -> bytes:
        """The bytes the registry signs."""
        return (
            f"{OFFER_FORMAT}\n{self.offer_id}\n{self.resident_code}\n{self.code_hash}\n"
            f"{self.issued_at_ms}\n{self.expires_at_ms}"
        ).encode()

    def matches(self, code: str) -> bool:
        """Whether ``code`` (as typed) is this offer's registration code."""
        return hmac.compare_digest(code_hash(self.offer_id, code), self.code_hash)


class Registration(BaseModel):
    """An offer with the person's audit key, signed by the hub side's audit key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-portal-registration/1"] = REGISTRATION_FORMAT
    offer_id: str = Field(pattern=_HEX32)
    resident_code: str = Field(pattern=r"^[0-9]{11}$")
    code_hash: str = Field(pattern=_HEX64)
    issued_at_ms: int = Field(ge=0)
    expires_at_ms: int = Field(ge=0)
    audit_key: str = Field(min_length=1, max_length=128)
    key_id: str = Field(min_length=1, max_length=64)
    signature: str = Field(default="", max_length=128)

    def signed_bytes(self) -> bytes:
        """The bytes the audit signing key signs."""
        return (
            f"{REGISTRATION_FORMAT}\n{self.offer_id}\n{self.resident_code}\n{self.code_hash}\n"
            f"{self.issued_at_ms}\n{self.expires_at_ms}\n{self.audit_key}\n{self.key_id}"
        ).encode()

    def matches(self, code: str) -> bool:
        """Whether ``code`` (as typed) is the registration code of the offer."""
        return hmac.compare_digest(code_hash(self.offer_id, code), self.code_hash)


def make_offer(
    registry: SigningKey, resident_code: str, *, ttl_s: int = 7 * 86400, now_ms: int | None = None
) -> tuple[Offer, str]:
    """A new signed offer and its registration code (to hand to the citizen, never stored).

    :returns: the offer (``.model_dump_json()`` is the record's value) and the code.
    """
    code = base64.b32encode(secrets.token_bytes(_CODE_BYTES)).decode()
    issued = int(time.time() * 1000) if now_ms is None else now_ms
    offer_id = secrets.token_hex(16)
    unsigned = Offer(
        offer_id=offer_id, resident_code=resident_code, code_hash=code_hash(offer_id, code),
        issued_at_ms=issued, expires_at_ms=issued + ttl_s * 1000,
    )  # fmt: skip
    signature = base64.b64encode(registry.sign(unsigned.signed_bytes())).decode()
    return unsigned.model_copy(update={"signature": signature}), code


def read_offer(value: bytes, registry_key: bytes, now_ms: int) -> Offer:
    """The offer in ``value``, if the registry's pinned key signed it and it is current.

    :raises ContractError: not an offer.
    :raises SignatureError: not signed by ``registry_key``.
    :raises RegistrationError: expired.
    """
    try:
        offer = Offer.model_validate_json(value)
    except ValidationError as exc:
        raise ContractError(f"not a portal offer ({exc.error_count()} problems)") from None
    _check(registry_key, offer.signed_bytes(), offer.signature)
    if offer.expires_at_ms <= now_ms:
        raise RegistrationError(f"offer {offer.offer_id} expired")
    return offer


def sign_registration(signer: AuditSigner, offer: Offer, audit_key: str) -> Registration:
    """The registration the portal will believe: ``offer`` with the person's audit key."""
    unsigned = Registration(
        offer_id=offer.offer_id, resident_code=offer.resident_code,
        code_hash=offer.code_hash, issued_at_ms=offer.issued_at_ms,
        expires_at_ms=offer.expires_at_ms, audit_key=audit_key, key_id=signer.key_id,
    )  # fmt: skip
    signature = base64.b64encode(signer.sign(unsigned.signed_bytes())).decode()
    return unsigned.model_copy(update={"signature": signature})


def read_registration(value: bytes, trusted: TrustedKeys) -> Registration:
    """The registration in ``value``, if a pinned audit key signed it.

    :raises ContractError: not a registration.
    :raises SignatureError: an unknown key, or a signature that does not verify.
    """
    try:
        registration = Registration.model_validate_json(value)
    except ValidationError as exc:
        raise ContractError(f"not a portal registration ({exc.error_count()} problems)") from None
    public_key = trusted.get(registration.key_id)
    if public_key is None:
        raise SignatureError(f"registration signed by unpinned key {registration.key_id}")
    _check(public_key, registration.signed_bytes(), registration.signature)
    return registration


def _check(public_key: bytes, message: bytes, signature: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature is not base64") from None
    verify(public_key, message, raw)
