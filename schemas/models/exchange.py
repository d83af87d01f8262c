"""Messages of enrolment (紐付け) and of the attribute exchange."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from schemas.models._base import TimestampMs
from schemas.models._limited import (
    AgencyRef,
    Capacity,
    Detail,
    Id,
    Items,
    LegalBasis,
    LinkCode,
    LooseMyNumber,
    PublicKey,
    ScenarioId,
)
from schemas.models.enums import EnrolmentOutcome, HpkeSuite, ResponseStatus
from schemas.models.records import Basic4, Message, SealedPayload

__all__ = [
    "AttributeRequest",
    "AttributeResponse",
    "DeenrolmentRequest",
    "EnrolmentRequest",
    "EnrolmentResult",
    "ForwardedRequest",
    "ProviderResponse",
]


def _check_sealed(status: ResponseStatus, sealed: SealedPayload | None) -> None:
    # UNKNOWN is a newer writer's status; whether it carries values is not ours to say
    if status is not ResponseStatus.UNKNOWN and (status is ResponseStatus.PROVIDED) != (
        sealed is not None
    ):
        raise ValueError("sealed must be set exactly when status is PROVIDED")


class EnrolmentRequest(Message):
    """An agency asks to link its record to a person, by My Number or basic-4.

    Deliberately loose: a request without identifiers or with a bad check digit is
    well-formed on the wire, and the hub answers it with outcome INVALID.
    """

    avro_name: ClassVar[str] = "jp.renkei.EnrolmentRequest"

    record_ref: Id
    my_number: LooseMyNumber | None = None
    basic4: Basic4 | None = None
    capacity: Capacity


class EnrolmentResult(Message):
    """The hub's answer to an :class:`EnrolmentRequest` (and to a :class:`DeenrolmentRequest`)."""

    avro_name: ClassVar[str] = "jp.renkei.EnrolmentResult"

    record_ref: Id
    outcome: EnrolmentOutcome
    link_code: LinkCode | None = None
    detail: Detail

    @model_validator(mode="after")
    def _check(self) -> Self:
        # not the converse: a de-enrolment acknowledgement echoes the ended link code
        if self.outcome is EnrolmentOutcome.LINKED and self.link_code is None:
            raise ValueError("link_code must be set when outcome is LINKED")
        return self


class DeenrolmentRequest(Message):
    """An agency no longer holds a record: drop it from the reference directory."""

    avro_name: ClassVar[str] = "jp.renkei.DeenrolmentRequest"

    link_code: LinkCode
    record_ref: Id


class AttributeRequest(Message):
    """A requester asks, through the hub, for a provider's attributes about a person."""

    avro_name: ClassVar[str] = "jp.renkei.AttributeRequest"

    request_id: Id
    requester_link_code: LinkCode
    provider: AgencyRef
    scenario_id: ScenarioId
    items: Items
    reply_public_key: PublicKey
    hpke_suite: HpkeSuite
    deadline: TimestampMs


class ForwardedRequest(Message):
    """An allowed request, forwarded to the provider under the provider's link code."""

    avro_name: ClassVar[str] = "jp.renkei.ForwardedRequest"

    hub_request_id: Id
    provider_link_code: LinkCode
    requester: AgencyRef
    scenario_id: ScenarioId
    legal_basis: LegalBasis
    items: Items
    reply_public_key: PublicKey
    hpke_suite: HpkeSuite
    deadline: TimestampMs
    request_id: Id = ""
    """The requester's ``AttributeRequest.request_id``: the sealed answer is bound to it."""


class ProviderResponse(Message):
    """The provider's answer to a :class:`ForwardedRequest`."""

    avro_name: ClassVar[str] = "jp.renkei.ProviderResponse"

    hub_request_id: Id
    provider_link_code: LinkCode
    status: ResponseStatus
    sealed: SealedPayload | None = None
    detail: Detail

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_sealed(self.status, self.sealed)
        return self


class AttributeResponse(Message):
    """A provider's answer, routed back to the requester under its request id."""

    avro_name: ClassVar[str] = "jp.renkei.AttributeResponse"

    request_id: Id
    requester_link_code: LinkCode
    provider: AgencyRef
    scenario_id: ScenarioId
    status: ResponseStatus
    sealed: SealedPayload | None = None
    detail: Detail

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_sealed(self.status, self.sealed)
        return self
